"""The pricing book: a broken book is one line naming the key; tiers; defaults; price run."""
from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from click.testing import CliRunner

from conftest import ROOT, SCHEMAS, load_json, shared_path, stage
from scripts.core.pricing_book import Book, Rates, book_problems, load_book
from scripts.price import cli
from scripts.shared_io import DataError

BOOK = load_json(ROOT / "pricing.json")


def _write(tmp_path, doc, name="pricing.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _bad(mutate):
    doc = copy.deepcopy(BOOK)
    mutate(doc)
    return doc


BAD_BOOKS = [
    ("not JSON", '{"schema_version": 1,', "pricing.json: not valid JSON"),
    ("rate not a number", _bad(lambda d: d["models"]["gpt-5"].update(output_usd_per_mtok="ten")),
     "pricing.json: models.gpt-5.output_usd_per_mtok: must be a number"),
    ("placeholder", _bad(lambda d: d["models"]["gpt-5"].update(input_usd_per_mtok="TODO")),
     "pricing.json: models.gpt-5.input_usd_per_mtok: placeholder value 'TODO', not a number"),
    ("negative", _bad(lambda d: d["models"]["o3"].update(cache_read_usd_per_mtok=-0.5)),
     "pricing.json: models.o3.cache_read_usd_per_mtok: must not be negative"),
    ("dangling alias", _bad(lambda d: d["aliases"].update({"my-model": "gpt-99"})),
     "pricing.json: aliases.my-model: points to unknown model 'gpt-99'"),
    ("missing output", _bad(lambda d: d["models"]["o3"].pop("output_usd_per_mtok")),
     "pricing.json: models.o3.output_usd_per_mtok: missing"),
    ("tier threshold", _bad(lambda d: d["models"]["o3"].update(tiers=[{"above_prompt_tokens": 128000}])),
     "pricing.json: models.o3.tiers[0].above_prompt_tokens: must be one of 100000, 200000, 272000"),
    ("typo", _bad(lambda d: d["models"]["o3"].update(cache_read_per_mtok=0.5)),
     "pricing.json: models.o3.cache_read_per_mtok: unknown field"),
    ("version", _bad(lambda d: d.update(schema_version=2)), "pricing.json: schema_version: must be 1"),
    ("older format", load_json(shared_path("data", "pricing.example.json")), "convert it with `price import-book` first"),
]


@pytest.mark.parametrize("what,doc,message", BAD_BOOKS, ids=[b[0] for b in BAD_BOOKS])
def test_bad_book_is_one_line_naming_the_key(tmp_path, what, doc, message):
    path = _write(tmp_path, doc)
    with pytest.raises(DataError) as exc:
        load_book(str(path))
    assert message in str(exc.value).replace(str(tmp_path) + "/", "")
    # and nothing downstream runs on it: `price` stops with that one line
    proc = stage("price", "--pricing", path, shared_path("data", "events.jsonl"), check=False)
    assert proc.returncode == 1 and proc.stdout == b""
    err = proc.stderr.decode().strip().replace(str(tmp_path) + "/", "")
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_schema_and_code_agree():
    schema = load_json(SCHEMAS / "pricing-book.v1.schema.json")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(BOOK)) == [] and book_problems(BOOK) == []
    for what, doc, _ in BAD_BOOKS:
        if isinstance(doc, dict) and what not in ("dangling alias", "older format"):  # cross-references are code-only
            assert list(validator.iter_errors(doc)), what
            assert book_problems(doc), what


def test_defaults_and_tier_scaling():
    base = Rates.from_entry({"input_usd_per_mtok": 2, "output_usd_per_mtok": 10})
    assert (base.cache_write_5m, base.cache_write_1h, base.cache_read, base.tool_input, base.tool_output) == (2, 2, 0.2, 2, 10)
    anthropic = Rates.from_entry({"input_usd_per_mtok": 3, "output_usd_per_mtok": 15, "cache_write_5m_usd_per_mtok": 3.75,
                                  "cache_write_1h_usd_per_mtok": 6, "cache_read_usd_per_mtok": 0.3})
    tier = Rates.from_entry({"above_prompt_tokens": 200000, "input_usd_per_mtok": 6, "output_usd_per_mtok": 22.5}, anthropic)
    assert (tier.cache_write_5m, tier.cache_write_1h, tier.cache_read, tier.tool_output) == (7.5, 12, 0.6, 22.5)


def test_whole_request_at_the_tier_rate():
    """A 250k-token prompt is billed entirely at the >200k rates; a 150k one entirely at base."""
    from scripts.core.costing import price_event

    book = Book(BOOK)
    big = {"model": "claude-sonnet-4-5", "usage": {"input_tokens": 10, "cache_read_tokens": 240_000, "output_tokens": 1000}}
    small = {"model": "claude-sonnet-4-5", "usage": {"input_tokens": 10, "cache_read_tokens": 140_000, "output_tokens": 1000}}
    assert price_event(big, book)["cost_usd"] == pytest.approx((10 * 6 + 240_000 * 0.6 + 1000 * 22.5) / 1e6)
    assert price_event(small, book)["cost_usd"] == pytest.approx((10 * 3 + 140_000 * 0.3 + 1000 * 15) / 1e6)


def test_on_unpriced(tmp_path):
    events = tmp_path / "e.jsonl"
    events.write_text(
        '{"provider":"cursor","model":"mystery-1","session_id":"s","timestamp":"2026-08-01T00:00:00Z","usage":{"input_tokens":1000,"output_tokens":10}}\n'
        '{"provider":"claude","model":"claude-sonnet-4-5","session_id":"s","timestamp":"2026-08-01T00:00:00Z","usage":{"input_tokens":100000}}\n')
    agg = stage("aggregate", events, "--timezone", "UTC").stdout
    runner = CliRunner()
    warn = runner.invoke(cli, ["--pricing", str(ROOT / "pricing.json"), "--report", "monthly", "-"], input=agg)
    assert warn.exit_code == 0, warn.output
    rep = json.loads(warn.stdout)
    assert rep["unpriced"] == [{"events": 1, "model": "mystery-1", "provider": "cursor", "tokens": 1010}]
    row = next(r for r in rep["rows"] if r["model"] == "mystery-1")
    assert row["cost_usd"] is None and row["priced"] is False  # never $0
    assert rep["totals"]["unpriced_tokens"] == 1010 and rep["totals"]["cost_usd"] == 0.3
    assert "mystery-1 (1,010 tokens)" in warn.stderr
    skip = json.loads(runner.invoke(cli, ["--pricing", str(ROOT / "pricing.json"), "--on-unpriced", "skip", "--report", "monthly", "-"], input=agg).stdout)
    assert [r["model"] for r in skip["rows"]] == ["claude-sonnet-4-5"] and skip["totals"]["unpriced_tokens"] == 1010
    err = runner.invoke(cli, ["--pricing", str(ROOT / "pricing.json"), "--on-unpriced", "error", "-"], input=agg)
    assert err.exit_code == 1 and "mystery-1" in err.stderr
    # event lines: null cost (warn), dropped (skip), or file:line (error)
    lines = runner.invoke(cli, ["--pricing", str(ROOT / "pricing.json"), str(events)])
    assert [json.loads(x)["cost_usd"] for x in lines.stdout.splitlines()] == [None, 0.3]
    assert len(runner.invoke(cli, ["--pricing", str(ROOT / "pricing.json"), "--on-unpriced", "skip", str(events)]).stdout.splitlines()) == 1
    e = runner.invoke(cli, ["--pricing", str(ROOT / "pricing.json"), "--on-unpriced", "error", str(events)])
    assert e.exit_code == 1 and "e.jsonl:1: unpriced model cursor/mystery-1" in e.stderr


def test_older_format_example_month():
    """events.jsonl priced by pricing.example.json: $77.47, of which $50.00 subscriptions."""
    import subprocess

    from conftest import PYTHON

    imported = stage("price", "import-book", shared_path("data", "pricing.example.json")).stdout
    agg = stage("aggregate", shared_path("data", "events.jsonl"), "--timezone", "UTC").stdout
    import tempfile

    with tempfile.NamedTemporaryFile("wb", suffix=".json") as fh:
        fh.write(imported)
        fh.flush()
        out = subprocess.run([PYTHON, "-m", "scripts.price", "--pricing", fh.name, "--report", "monthly", "-"], input=agg,
                             capture_output=True, cwd=ROOT, check=True).stdout
    month = json.loads(out)["periods"][0]
    assert month["period"] == "2026-02"
    assert round(month["total_cost_usd"], 2) == 77.47 and month["subscription_usd"] == 50.0
    assert round(month["cost_usd"], 2) == 27.47 and month["total_tokens"] == 10_450_000
    assert round(month["blended_usd_per_mtok"], 4) == 7.4135 and month["sessions"] == 4
