"""price import-litellm / import-book: what is kept, how it is named, where it comes from."""
from __future__ import annotations

import json
import random

import pytest

from conftest import ROOT, load_json, shared_path, stage
from scripts.core.pricing_book import Book, book_problems
from scripts.core.pricing_import import import_legacy, import_litellm, litellm_name, merge_overrides
from scripts.shared_io import DataError

LITELLM = shared_path("data", "litellm-model-prices.json")

# What the seven sources commonly log: each must be priced by the committed book.
MUST_PRICE = [
    "claude-3-5-sonnet", "claude-3-5-haiku", "claude-3-7-sonnet", "claude-sonnet-4", "claude-opus-4", "claude-opus-4-1",
    "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5", "claude-sonnet-4-6", "claude-opus-4-6",
    "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-5-20251101",
    "gpt-5", "gpt-5-codex", "gpt-5-mini", "gpt-5.1", "gpt-5.1-codex", "gpt-5.1-codex-max", "gpt-5.1-codex-mini",
    "gpt-5.2", "gpt-5.2-codex", "gpt-5-2025-08-07", "o3", "o4-mini", "gpt-4.1", "gpt-4.1-mini",
    "gemini-2.5-pro", "gemini-2.5-flash", "gemini-3-pro-preview", "gemini-3-pro", "gemini-3-flash-preview",
    "grok-code-fast-1", "grok-4.3", "deepseek-chat", "deepseek-reasoner", "kimi-k2.5", "glm-4.6", "glm-4.5",
    "qwen-max", "minimax-m2", "composer-1",
    "claude-4.5-sonnet", "claude-4.5-sonnet-thinking", "claude-sonnet-4.5", "claude-4-sonnet", "claude-3.7-sonnet",
]


@pytest.fixture(scope="module")
def prices():
    return load_json(LITELLM)


@pytest.fixture(scope="module")
def plain(prices):
    return import_litellm(prices, source_date="2026-11-25")


def test_names_events_carry():
    assert litellm_name("anthropic.claude-opus-4-1-20250805-v1:0") == "claude-opus-4-1"
    assert litellm_name("vertex_ai/claude-haiku-4-5@20251001") == "claude-haiku-4-5"
    assert litellm_name("vertex_ai/claude-opus-4-6@default") == "claude-opus-4-6"
    assert litellm_name("gemini/gemini-2.5-pro") == "gemini-2.5-pro"
    assert litellm_name("minimax/MiniMax-M2") == "minimax-m2"


def test_plain_import_is_a_valid_book(plain):
    book, report = plain
    assert book_problems(book) == []
    Book(book)
    assert report["models"] == len(book["models"]) > 100
    assert "sample_spec" not in book["models"] and "fallback_generalizations" not in book["models"]


def test_first_party_rates_and_provenance(plain):
    book, report = plain
    sonnet = book["models"]["claude-sonnet-4-5"]
    assert (sonnet["input_usd_per_mtok"], sonnet["output_usd_per_mtok"], sonnet["cache_write_5m_usd_per_mtok"],
            sonnet["cache_write_1h_usd_per_mtok"], sonnet["cache_read_usd_per_mtok"]) == (3, 15, 3.75, 6, 0.3)
    assert sonnet["provenance"] == {"source": "litellm:claude-sonnet-4-5", "updated_at": "2026-11-25"}
    assert "tiers" not in sonnet  # this LiteLLM copy has none for the first-party entry
    codex = book["models"]["gpt-5-codex"]
    assert (codex["input_usd_per_mtok"], codex["output_usd_per_mtok"], codex["cache_read_usd_per_mtok"]) == (1.25, 10, 0.125)
    assert report["chosen"]["gemini-2.5-pro"] == "gemini/gemini-2.5-pro"  # the Gemini API over Vertex


def test_reseller_fallback_never_regional(plain):
    book, report = plain
    # no first-party entry: Bedrock's base-region id, at Anthropic's list price
    assert report["chosen"]["claude-opus-4-1"] == "anthropic.claude-opus-4-1-20250805-v1:0"
    opus = book["models"]["claude-opus-4-1"]
    assert opus["input_usd_per_mtok"] == 15 and opus["cache_write_1h_usd_per_mtok"] == 30
    assert any("2 x input" in d for d in opus["provenance"]["derived"])
    assert not any(k.startswith(("us.", "eu.", "au.", "jp.", "apac.", "global.", "bedrock/")) for k in report["chosen"].values())
    # Bedrock's Sonnet 4 carries the long-context tier; the missing 1-hour rate scales with input
    tier = book["models"]["claude-sonnet-4"]["tiers"][0]
    assert tier["above_prompt_tokens"] == 200_000 and tier["input_usd_per_mtok"] == 6
    assert Book(book).resolve("claude-sonnet-4").rates_for_class(200_000).cache_write_1h == 12


def test_aliases(plain):
    book, _ = plain
    aliases = book["aliases"]
    assert aliases["gpt-5-2025-08-07"] == "gpt-5"  # OpenAI dates are not stripped from event names
    assert aliases["claude-sonnet-4-5-20250929"] == "claude-sonnet-4-5"
    assert aliases["claude-4.5-sonnet"] == "claude-sonnet-4-5"  # Cursor's spelling
    assert aliases["claude-sonnet-4.5"] == "claude-sonnet-4-5"  # OpenCode's spelling
    assert aliases["claude-sonnet-latest"] in book["models"]  # LiteLLM's alias_of entries
    assert "gpt-4o-2024-05-13" in book["models"]  # a dated name with other rates stays a model
    assert not set(aliases) & set(book["models"])


def test_left_out_and_zero_rates(plain):
    book, report = plain
    assert report["skipped"]["zero input or output price (free tier or placeholder)"] >= 1
    assert all(m["output_usd_per_mtok"] > 0 and m["input_usd_per_mtok"] > 0 for m in book["models"].values())
    glm = book["models"]["glm-4.6"]
    assert "cache_write_5m_usd_per_mtok" not in glm  # LiteLLM's 0 dropped: the input rate applies
    assert any("LiteLLM lists 0" in d for d in glm["provenance"]["derived"])
    assert not any(n.endswith(("-tts", "-audio")) or "realtime" in n for n in book["models"])


def test_deterministic_whatever_the_key_order(prices, plain):
    keys = list(prices)
    random.Random(7).shuffle(keys)
    shuffled = {k: prices[k] for k in keys}
    assert json.dumps(import_litellm(shuffled, source_date="2026-11-25")[0], sort_keys=True) == json.dumps(plain[0], sort_keys=True)


def test_tolerates_later_copies():
    later = {
        "sample_spec": {"input_cost_per_token": 0.0, "litellm_provider": "one of ...", "mode": "one of: chat"},
        "claude-sonnet-9": {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 2e-06,
                            "output_cost_per_token": 1e-05, "brand_new_field": {"x": 1},
                            "input_cost_per_token_above_200k_tokens": 4e-06, "output_cost_per_token_above_200k_tokens": 1.5e-05,
                            "input_cost_per_token_above_128k_tokens": 3e-06},
        "claude-sonnet-9-latest": {"alias_of": "claude-sonnet-9"},
        "gpt-7": {"litellm_provider": "openai", "mode": "responses", "input_cost_per_token": "n/a"},
        "gpt-7-mini": {"litellm_provider": "openai"},
        "rules": {"rules": [1, 2]},
        "weird": [1, 2, 3],
    }
    book, report = import_litellm(later, source_date="2027-01-01")
    assert list(book["models"]) == ["claude-sonnet-9"]
    m = book["models"]["claude-sonnet-9"]
    assert m["tiers"] == [{"above_prompt_tokens": 200_000, "input_usd_per_mtok": 4, "output_usd_per_mtok": 15}]
    assert any("128k" in d for d in m["provenance"]["derived"])  # not representable: said, not hidden
    assert m["cache_write_1h_usd_per_mtok"] == 4 and m["cache_read_usd_per_mtok"] == 0.2
    assert book["aliases"]["claude-sonnet-9-latest"] == "claude-sonnet-9"
    assert report["skipped"] == {"no input/output price": 1}
    with pytest.raises(DataError):
        import_litellm([1, 2], source_date="2027-01-01")


def test_overrides_merge_and_need_a_source(plain):
    book, _ = plain
    overrides = load_json(ROOT / "pricing-overrides.json")
    merged = merge_overrides(book, overrides, "pricing-overrides.json")
    sonnet = merged["models"]["claude-sonnet-4-5"]
    assert sonnet["input_usd_per_mtok"] == 3  # untouched imported rates stay
    assert sonnet["tiers"][0]["input_usd_per_mtok"] == 6 and sonnet["tiers"][0]["output_usd_per_mtok"] == 22.5
    assert sonnet["provenance"]["based_on"] == "litellm:claude-sonnet-4-5"
    assert sonnet["provenance"]["source"].startswith("https://docs.anthropic.com/")
    assert merged["aliases"]["gemini-3-pro"] == "gemini-3-pro-preview"
    assert set(merged["providers"]) == {"claude", "codex", "cursor", "droid", "opencode", "gemini", "cliproxy"}
    assert all(p["subscription_usd_month"] == 0 and p["notes"] for p in merged["providers"].values())
    bad = {"schema_version": 1, "models": {"x-model": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 2}}}
    with pytest.raises(DataError, match=r"ov.json: models.x-model: every override needs provenance"):
        merge_overrides(book, bad, "ov.json")
    dangling = {"schema_version": 1, "aliases": {"foo": "no-such-model"}}
    with pytest.raises(DataError, match=r"ov.json: aliases.foo: points to unknown model"):
        merge_overrides(book, dangling, "ov.json")


def test_committed_book_is_the_generated_one(tmp_path):
    """pricing.json is exactly what `price import-litellm` makes from the shared copy."""
    committed = load_json(ROOT / "pricing.json")
    out = tmp_path / "book.json"
    stage("price", "import-litellm", LITELLM, "--overrides", ROOT / "pricing-overrides.json",
          "--source-date", committed["meta"]["updated_at"], "-o", out)
    assert out.read_bytes() == (ROOT / "pricing.json").read_bytes()


def test_committed_book_prices_what_sources_log():
    book = Book(load_json(ROOT / "pricing.json"))
    missing = [m for m in MUST_PRICE if book.resolve(m) is None]
    assert missing == []
    assert book.resolve("claude-sonnet-4-5").rates_for_class(200_000).input == 6
    assert book.resolve("claude-sonnet-4-5").rates_for_class(0).input == 3
    assert book.resolve("totally-unknown") is None


# ------------------------------------------------------------------ the older format
def test_import_book_makes_defaults_explicit():
    book = import_legacy(load_json(shared_path("data", "pricing.example.json")), "pricing.example.json")
    assert book_problems(book) == []
    cursor = book["models"]["cursor-codex-latest"]
    assert cursor["cache_write_5m_usd_per_mtok"] == 1.25 and cursor["cache_read_usd_per_mtok"] == 0.125
    assert cursor["tool_input_usd_per_mtok"] == 1.25 and cursor["tool_output_usd_per_mtok"] == 10
    assert book["aliases"] == {"droid-latest": "factory-droid-latest", "gpt-5-latest": "gpt-5", "sonnet": "claude-sonnet-4-5"}
    assert book["providers"]["claude"]["subscription_usd_month"] == 30 and book["providers"]["cursor"]["subscription_usd_month"] == 20
    assert book["provider_aliases"]["anthropic"] == "claude"
    b = Book(book)
    assert b.subscription("anthropic") == 30  # through the provider alias


def test_import_book_bad_input():
    doc = load_json(shared_path("data", "pricing.example.json"))
    doc["providers"]["codex"]["models"]["gpt-5"]["output_usd_per_mtok"] = "ten"
    with pytest.raises(DataError, match=r"old.json: providers.codex.models.gpt-5.output_usd_per_mtok: must be a number"):
        import_legacy(doc, "old.json")
    doc = load_json(shared_path("data", "pricing.example.json"))
    doc["providers"]["droid"]["models"]["claude-sonnet-4-5"] = {"input_usd_per_mtok": 9, "output_usd_per_mtok": 9}
    with pytest.raises(DataError, match="priced differently"):
        import_legacy(doc, "old.json")
    with pytest.raises(DataError, match="not the older pricing format"):
        import_legacy({"models": {}}, "old.json")


def test_overrides_file_is_valid_against_its_schema():
    import jsonschema
    from referencing import Registry, Resource

    from conftest import SCHEMAS

    schemas = {p.name: load_json(p) for p in SCHEMAS.glob("pricing-*.v1.schema.json")}
    registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in schemas.values()])
    validator = jsonschema.Draft202012Validator(schemas["pricing-overrides.v1.schema.json"], registry=registry)
    overrides = load_json(ROOT / "pricing-overrides.json")
    assert list(validator.iter_errors(overrides)) == []
    overrides["models"]["composer-1"].pop("provenance")
    assert list(validator.iter_errors(overrides))
