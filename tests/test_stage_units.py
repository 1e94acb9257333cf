"""Per-stage unit tests: each stage's pure transform(), and its command through click's
CliRunner (in-process), for the backbone stages."""
from __future__ import annotations

import json

from click.testing import CliRunner

from conftest import ROOT
from scripts import aggregate, cache_check, normalize, price, run_summary
from scripts.core.aggregation import Filters
from scripts.core.pricing_book import load_book
from scripts.core.rollup import rollup_events

CALL = {
    "type": "assistant",
    "sessionId": "s-1",
    "cwd": "/home/dev/projects/alpha",
    "version": "2.0.14",
    "requestId": "req_1",
    "timestamp": "2026-08-06T23:59:30.000Z",
    "message": {
        "id": "msg_1",
        "model": "claude-sonnet-4-5-20250929",
        "usage": {"input_tokens": 2, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000, "output_tokens": 50},
    },
}


def _lines(*objs) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def test_normalize_transform_keeps_the_largest_streaming_snapshot():
    first = json.loads(json.dumps(CALL))
    first["message"]["usage"]["output_tokens"] = 3
    events = list(normalize.transform("claude", [("a.jsonl", _lines(first, CALL))], device="box"))
    assert len(events) == 1
    ev = events[0]
    assert ev["id"] == "claude:msg_1:req_1" and ev["model"] == "claude-sonnet-4-5" and ev["raw_model"] == "claude-sonnet-4-5-20250929"
    assert ev["usage"]["output_tokens"] == 50 and ev["total_tokens"] == 2 + 100 + 1000 + 50
    assert ev["project"] == "alpha" and ev["device"] == "box" and ev["source_line"] == 2


def test_normalize_transform_counts_a_call_seen_in_two_inputs_once():
    events = list(normalize.transform("claude", [("a.jsonl", _lines(CALL)), ("b.jsonl", _lines(CALL))]))
    assert len(events) == 1 and events[0]["source_file"] == "a.jsonl"


def test_aggregate_transform_buckets_by_local_day():
    ev = list(normalize.transform("claude", [("a.jsonl", _lines(CALL))]))
    rows = rollup_events(ev)
    utc = aggregate.transform(rows, timezone="UTC", filters=Filters())
    tokyo = aggregate.transform(rows, timezone="Asia/Tokyo", filters=Filters())
    assert [p["period"] for p in utc["reports"]["daily"]["periods"]] == ["2026-08-06"]
    assert [p["period"] for p in tokyo["reports"]["daily"]["periods"]] == ["2026-08-07"]
    assert utc["reports"]["monthly"]["totals"]["total_tokens"] == 1152


def test_price_transform_prices_and_never_prices_unknown_models_at_zero():
    ev = list(normalize.transform("claude", [("a.jsonl", _lines(CALL))]))
    unknown = json.loads(json.dumps(CALL))
    unknown["message"]["id"] = "msg_2"
    unknown["message"]["model"] = "claude-from-the-future"
    ev += list(normalize.transform("claude", [("b.jsonl", _lines(unknown))]))
    agg = aggregate.transform(rollup_events(ev), timezone="UTC", filters=Filters())
    reports = price.transform(agg, load_book(str(ROOT / "pricing.json")), "warn")
    monthly = reports["monthly"]
    by_model = {r["model"]: r for r in monthly["rows"]}
    assert by_model["claude-sonnet-4-5"]["cost_usd"] > 0
    assert by_model["claude-from-the-future"]["cost_usd"] is None
    assert monthly["unpriced"][0]["model"] == "claude-from-the-future"


def test_cache_check_transform_fingerprint_changes_with_the_files(tmp_path):
    from scripts.core.sources import ManifestSpool, SourceListing

    a = SourceListing("claude", "CLAUDE_CONFIG_DIR", [], {"/x/a.jsonl": (10, 1, 2, "")})
    b = SourceListing("claude", "CLAUDE_CONFIG_DIR", [], {"/x/a.jsonl": (11, 1, 2, "")})
    with ManifestSpool.create(str(tmp_path)) as spool:
        assert cache_check.transform(a.summary(spool))["fingerprint"] != cache_check.transform(b.summary(spool))["fingerprint"]
        assert cache_check.transform(a.summary(spool)) == cache_check.transform(a.summary(spool))
        assert cache_check.transform(SourceListing("claude", "X", [], {}).summary(spool))["present"] is False


def test_run_summary_transform_marks_skipped_stages_as_cache_hits():
    fragments = {"run": {"run_id": "r1", "started_at": "t0"}, "cache_check": {"ran": True, "duration_ms": 5}}
    previous = {"sources": {"claude": {"records": 3, "events": 1, "duplicates": 1, "not_a_call": 1, "rejected": 0, "files": 1}}}
    s = run_summary.transform(fragments, previous, "t1")
    assert s["stages"]["normalize"] == {"ran": False}
    assert s["caches"]["aggregates"] == {"hit": 1, "miss": 0, "invalidate": 0}
    assert s["totals"]["balanced"] and s["totals"]["events"] == 1


def test_commands_through_click_cli_runner(tmp_path):
    runner = CliRunner()
    src = tmp_path / "s.jsonl"
    src.write_bytes(_lines(CALL))
    out = runner.invoke(normalize.cli, ["--source", "claude", str(src)])
    assert out.exit_code == 0, out.output
    events = tmp_path / "events.jsonl"
    events.write_text(out.stdout)
    agg = runner.invoke(aggregate.cli, [str(events), "--timezone", "UTC", "--report", "monthly"])
    assert agg.exit_code == 0, agg.output
    (tmp_path / "agg.json").write_text(agg.stdout)
    priced = runner.invoke(price.cli, ["--pricing", str(ROOT / "pricing.json"), "--format", "table", str(tmp_path / "agg.json")])
    assert priced.exit_code == 0, priced.output
    assert "claude-sonnet-4-5" in priced.stdout and "Total" in priced.stdout
    bad = runner.invoke(normalize.cli, ["--source", "claude", "--strict", str(tmp_path / "missing.jsonl")])
    assert bad.exit_code == 1 and "missing.jsonl" in bad.output
    usage = runner.invoke(aggregate.cli, ["--report", "hourly"])
    assert usage.exit_code == 2
