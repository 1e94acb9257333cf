"""Mapping rules: the issue's examples, every Claude/GPT/Gemini column of models.csv
mapped to a priced model or explained, logged names mapped exactly like the book prices
them, vendors, and rules-file errors."""
from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT, shared_path
from ledger_support import BOOK_MODELS, write_book
from scripts.core.ledger_bench import read_table
from scripts.core.ledger_rules import load_rules, slugify
from scripts.core.pricing_book import load_book
from scripts.shared_io import DataError, Diagnostics

MODELS_CSV = shared_path("data", "models.csv")
needs_shared = pytest.mark.skipif(not shared_path("data", "litellm-model-prices.json").exists(), reason="../shared/data not present")
VENDOR_COLUMN = re.compile(r"^(Claude|GPT|Gemini)\b")


@pytest.fixture(scope="module")
def rules():
    return load_rules(str(ROOT / "ledger-rules.json"))


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    return load_book(str(write_book(tmp_path_factory.mktemp("book") / "pricing.json")))


@pytest.fixture(scope="module")
def book_without_gemini_3_pro(tmp_path_factory):
    models = {k: v for k, v in BOOK_MODELS.items() if k != "gemini-3-pro-preview"}
    return load_book(str(write_book(tmp_path_factory.mktemp("book2") / "pricing.json", models)))


def mapped(rules, book, name):
    m = rules.map_display_name(name, book)
    return m.model, m.rule, m.confidence


@needs_shared
def test_the_issues_examples(rules, book, book_without_gemini_3_pro):
    assert mapped(rules, book, "Claude Sonnet 4.5") == ("claude-sonnet-4-5", "vendor-family-version", 95)
    assert mapped(rules, book, "GPT-5.2 Codex (High)") == ("gpt-5.2-codex", "strip-reasoning-effort", 90)
    assert mapped(rules, book, "Gemini 3 Pro (Thinking: High)") == ("gemini-3-pro-preview", "preview-suffix", 85)
    m = rules.map_display_name("Gemini 3 Pro (Thinking: High)", book_without_gemini_3_pro)
    assert m.model is None and m.rule == "unmapped" and m.confidence == 0
    assert "gemini-3-pro-preview" in m.reason and "gemini-3-pro-preview" in m.candidates


@needs_shared
@pytest.mark.parametrize(
    "name,expected",
    [
        ("Claude Opus 4.6 (Thinking: Max)", ("claude-opus-4-6", "strip-thinking-budget", 90)),
        ("GPT-5.2 (Fast)", ("gpt-5.2", "strip-service-tier", 70)),
        ("GPT-5.3 Codex Fast (xhigh)", ("gpt-5.3-codex", "strip-service-tier", 70)),
        ("Gemini 3.1 Pro (Thinking: High)", ("gemini-3.1-pro-preview", "preview-suffix", 85)),
        ("Gemini 2.5 Flash Thinking", ("gemini-2.5-flash", "strip-thinking-mode", 85)),
        ("GPT-5 Mini", ("gpt-5-mini", "slug", 95)),
        ("Grok 4.1 Fast Reasoning", ("xai/grok-4-1-fast-reasoning", "dots-as-dashes", 80)),
        ("Qwen 3 Base", (None, "base-checkpoint", 100)),
        ("Kimi K2 Thinking", (None, "unmapped", 0)),  # a model of its own: Thinking is not stripped
        ("GPT-5.3 Codex Spark (High)", (None, "unmapped", 0)),  # Spark is a different model
    ],
)
def test_more_mappings(rules, book, name, expected):
    assert mapped(rules, book, name) == expected


@needs_shared
def test_kimi_thinking_never_becomes_kimi_k2(rules, tmp_path):
    b = load_book(str(write_book(tmp_path / "p.json", {"moonshot/kimi-k2": "moonshot/kimi-k2.5"})))
    m = rules.map_display_name("Kimi K2 Thinking", b)
    assert m.model is None and "kimi-k2" not in m.candidates


@needs_shared
def test_an_alias_in_the_book_is_part_of_the_chain(rules, tmp_path):
    path = write_book(tmp_path / "p.json", {"gpt-5.2-codex": "gpt-5.2-codex"})
    doc = json.loads(path.read_text())
    doc["aliases"]["gpt-5.2-codex-high"] = "gpt-5.2-codex"
    path.write_text(json.dumps(doc))
    m = rules.map_display_name("GPT-5.2 Codex (High)", load_book(str(path)))
    assert (m.model, m.rule, m.rule_chain, m.confidence) == ("gpt-5.2-codex", "book-alias", "slug>book-alias", 95)


def _book_variants():
    out = [pytest.param("test-book", id="litellm-test-book")]
    if (ROOT / "pricing.json").exists():
        out.append(pytest.param("repo-book", id="repo-pricing.json"))
    return out


@needs_shared
@pytest.mark.skipif(not MODELS_CSV.exists(), reason="../shared/data/models.csv not present")
@pytest.mark.parametrize("which", _book_variants())
def test_every_claude_gpt_gemini_column_is_priced_or_explained(rules, book, which, capsys):
    b = book if which == "test-book" else load_book(str(ROOT / "pricing.json"))
    table = read_table(str(MODELS_CSV), MODELS_CSV.read_bytes(), Diagnostics())
    columns = [c for c in table.columns if VENDOR_COLUMN.match(c)]
    assert len(columns) == 37
    summary = {"mapped": 0, "unmapped": 0}
    for name in columns:
        m = rules.map_display_name(name, b)
        if m.model is not None:
            assert b.resolve(m.model) is not None and b.resolve(m.model).name == m.model
            assert 0 < m.confidence <= 100 and m.rule and m.rule_chain and m.reason is None
            summary["mapped"] += 1
        else:
            assert m.reason and m.rule in ("unmapped", "base-checkpoint") and m.confidence in (0, 100)
            summary["unmapped"] += 1
    if which == "test-book":
        # unmapped: the four Codex Spark columns (LiteLLM prices Spark only under chatgpt/) and GPT-OSS 120B (only third-party hosts)
        assert summary == {"mapped": 32, "unmapped": 5}
    with capsys.disabled():
        print(f"\n[{which}] Claude/GPT/Gemini columns: {summary}")


@needs_shared
def test_logged_names_map_exactly_as_the_book_resolves(rules, book):
    names = [
        ("claude-sonnet-4-5", None),
        ("claude-sonnet-4-5-20250929", None),
        ("anthropic/claude-opus-4-5", None),
        ("sonnet-latest", None),
        ("Claude-Sonnet-4-5", None),
        ("unknown", "claude-haiku-4-5-20251001"),
        ("gpt-5.2-codex", None),
        ("o9-experimental", None),
        ("claude-4.5-sonnet-thinking", None),
    ]
    for model, raw in names:
        m = rules.map_logged_name(model, raw, book)
        price = book.resolve(model, raw)
        assert m.model == (price.name if price else None), (model, raw)
        assert (m.reason is None) == (price is not None)
    assert rules.map_logged_name("claude-sonnet-4-5", None, book).rule == "book-exact"
    assert rules.map_logged_name("sonnet-latest", None, book).rule == "book-alias"
    assert rules.map_logged_name("claude-sonnet-4-5-20250929", None, book).rule == "book-canonical"
    assert rules.map_logged_name("o9-experimental", None, book).rule == "unpriced"


def test_vendor_rules(rules):
    assert rules.vendor_of_model("whatever", {"litellm_provider": "anthropic"}).rule == "book-provider"
    v = rules.vendor_of_model("claude-opus-4-5")
    assert (v.vendor, v.rule, v.confidence) == ("anthropic", "name-pattern", 95)
    assert rules.vendor_of_model("us.anthropic.claude-sonnet-4-6").vendor == "anthropic"
    assert rules.vendor_of_model("groq/openai/gpt-oss-120b").vendor == "openai"
    assert rules.vendor_of_model("mistral/deepseek-v4-1-flash").vendor == "deepseek"
    assert rules.vendor_of_model("o3-mini").vendor == "openai"
    v = rules.vendor_of_model("auto", cliproxy=["gemini-cli"])
    assert (v.vendor, v.rule, v.confidence) == ("google", "cliproxy-provider", 90)
    v = rules.vendor_of_model("auto", tools=["claude"])
    assert (v.vendor, v.rule, v.confidence) == ("anthropic", "source-tool", 60)
    v = rules.vendor_of_model("auto", tools=["claude", "codex"])
    assert v.vendor is None and v.rule == "unmapped" and "claude, codex" in v.reason
    v = rules.vendor_of_model("auto")
    assert v.vendor is None and v.reason == "no vendor rule matches 'auto'"


def test_slugify():
    assert slugify("Gemini 3 Pro (Thinking: High)") == "gemini-3-pro-thinking-high"
    assert slugify("  GPT-5.2 Codex  ") == "gpt-5.2-codex"
    assert slugify("Qwen 3.5 (397B)") == "qwen-3.5-397b"


def test_score_and_price_rows(rules):
    assert rules.score_column("SWE-bench Verified") == "swe_bench_verified"
    assert rules.score_column("Terminal-Bench 2.0 (Terminus)") == "terminal_bench"
    assert rules.score_column("SWE-bench Pro") == "swe_bench_pro"
    assert rules.score_column("GPQA Diamond") is None
    assert rules.price_row("Input Price") == "input" and rules.price_row("Output Price") == "output"


def _rules_with(tmp_path, edit):
    doc = json.loads((ROOT / "ledger-rules.json").read_text())
    edit(doc)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_a_bad_regex_names_its_key_path(tmp_path):
    path = _rules_with(tmp_path, lambda d: d["display_names"]["variants"][1].update(pattern="(unclosed"))
    with pytest.raises(DataError, match=r"rules.json: display_names.variants\[1\].pattern: bad regular expression"):
        load_rules(path)


def test_a_schema_violation_names_its_key_path(tmp_path):
    path = _rules_with(tmp_path, lambda d: d["display_names"]["names"][0].update(confidence=101))
    with pytest.raises(DataError, match=r"display_names.names\[0\].confidence: 101 is greater than the maximum of 100"):
        load_rules(path)
    path = _rules_with(tmp_path, lambda d: d["display_names"].update(varients=[]))
    with pytest.raises(DataError, match="varients"):
        load_rules(path)


def test_a_replacement_with_a_missing_group_is_an_error(tmp_path):
    path = _rules_with(tmp_path, lambda d: d["display_names"]["names"][0].update(replace="claude-\\7"))
    with pytest.raises(DataError, match=r"display_names.names\[0\].replace: replacement refers to group '7'"):
        load_rules(path)


def test_not_json(tmp_path):
    (tmp_path / "r.json").write_text("{")
    with pytest.raises(DataError, match="not valid JSON"):
        load_rules(str(tmp_path / "r.json"))
