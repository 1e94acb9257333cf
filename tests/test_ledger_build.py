"""The ledger stage end to end: outputs, usage and money against the events, the
SQLite load test (schema.sql + seed.sql in a fresh database, through the sqlite3 CLI and
Python), determinism (two builds, byte-identical), contracts and bad input."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess

import pytest

from conftest import ROOT, SCHEMAS, shared_path, stage
from ledger_support import make_events, write_archive, write_book, write_events
from scripts.core.ledger_sql import BENCHMARKS, LEDGER, SEED_TABLES, TABLES, VIEWS, schema_markdown, schema_sql

MODELS_CSV = shared_path("data", "models.csv")
SQLITE3 = shutil.which("sqlite3") or ("/usr/bin/sqlite3" if os.path.exists("/usr/bin/sqlite3") else None)
OUTPUTS = ("ledger.csv", "benchmarks_normalized.csv", "schema.sql", "seed.sql", "coverage.json", "tokentally.db")
pytestmark = pytest.mark.skipif(not MODELS_CSV.exists(), reason="../shared/data not present")


def build(inputs, out_dir, *extra, check=True, env=None):
    args = [
        "build",
        "--artifacts", str(inputs["artifacts"]),
        "--pricing", str(inputs["book"]),
        "--benchmarks", str(inputs["benchmarks"]),
        "--cliproxy-dir", str(inputs["cliproxy"]),
        "--out-dir", str(out_dir),
        *map(str, extra),
    ]  # fmt: skip
    return stage("ledger", *args, check=check, env=env)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    base = tmp_path_factory.mktemp("ledger-inputs")
    artifacts = base / "artifacts"
    write_events(artifacts / "events")
    return {
        "base": base,
        "artifacts": artifacts,
        "book": write_book(base / "pricing.json"),
        "benchmarks": MODELS_CSV,
        "cliproxy": write_archive(base / "cliproxy"),
    }


@pytest.fixture(scope="module")
def built(inputs):
    out = inputs["base"] / "out1"
    proc = build(inputs, out)
    return {"dir": out, "stderr": proc.stderr.decode(), **inputs}


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_outputs(built):
    out = built["dir"]
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]
    assert "ledger: " in built["stderr"] and "benchmark columns mapped" in built["stderr"]
    rows = read_csv(out / "ledger.csv")
    assert list(rows[0]) == list(LEDGER.column_names)
    assert [r["model"] for r in rows] == sorted(r["model"] for r in rows)
    bench = read_csv(out / "benchmarks_normalized.csv")
    assert list(bench[0]) == list(BENCHMARKS.column_names) and len(bench) == 3304


def test_benchmarks_normalized_csv_equals_the_reference_on_its_columns(built):
    """The artifact itself, not only the parser: every reference column, every row."""
    from scripts.core.ledger_bench import REFERENCE_COLUMNS

    mine = read_csv(built["dir"] / "benchmarks_normalized.csv")
    ref = read_csv(shared_path("data", "models_normalized.csv"))
    assert len(mine) == len(ref) == 3304
    assert [{k: r[k] for k in REFERENCE_COLUMNS} for r in mine] == ref
    by_raw = {r["raw_value"]: r for r in mine}
    assert (by_raw["$2.00 / $4.00 (>200k)"]["primary_number"], by_raw["$2.00 / $4.00 (>200k)"]["secondary_qualifier"]) == ("2", "(>200k)")
    assert (by_raw["86.3% (py)"]["primary_number"], by_raw["86.3% (py)"]["primary_unit"]) == ("86.3", "percent")


def test_ledger_rows_carry_prices_priors_runtime_and_usage(built):
    rows = {r["model"]: r for r in read_csv(built["dir"] / "ledger.csv")}
    s = rows["claude-sonnet-4-5"]
    assert (s["priced"], s["vendor"], s["vendor_rule"], s["vendor_confidence"]) == ("1", "anthropic", "name-pattern", "95")
    assert (s["bench_column"], s["model_rule"], s["model_confidence"]) == ("Claude Sonnet 4.5", "vendor-family-version", "95")
    assert (s["input_usd_per_mtok"], s["output_usd_per_mtok"], s["cache_write_5m_usd_per_mtok"], s["cache_write_1h_usd_per_mtok"], s["cache_read_usd_per_mtok"]) == ("3", "15", "3.75", "6", "0.3")
    assert (s["swe_bench_verified"], s["terminal_bench"]) == ("77.2", "51")
    assert int(s["bench_rows_present"]) + int(s["bench_rows_missing"]) == int(s["bench_rows_total"]) == 57
    assert (s["table_input_usd_per_mtok"], s["table_output_usd_per_mtok"]) == ("3", "15")
    # runtime: 12 v7 requests (claude provider) + 3 v6 requests, merged
    assert (s["rt_requests"], s["rt_failures"]) == ("15", "3")
    assert s["usage_sources"] == "claude"  # cursor's copy of a claude event is that event, once
    g = rows["gpt-5.2-codex"]
    assert g["bench_columns"] == "6" and g["bench_column"] == "GPT-5.2 Codex (xhigh)" and g["model_rule"] == "strip-reasoning-effort"
    gem = rows["gemini-2.5-pro"]
    assert gem["long_context_above_tokens"] == "200000" and gem["lc_input_usd_per_mtok"] == "2.5" and gem["tiers"] == "1"


def test_usage_and_money_match_the_events(built):
    """Per model: events, sessions, tokens and cost equal what the events say, priced by
    the price stage's own per-event pricing; the repeated event id counts once."""
    from scripts.core.costing import price_event
    from scripts.core.pricing_book import load_book

    book = load_book(str(built["book"]))
    seen, expect = set(), {}
    for source in ("claude", "codex", "cursor"):
        for ev in make_events()[source]:
            if ev["id"] in seen:
                continue
            seen.add(ev["id"])
            priced = price_event(ev, book)
            model = priced["priced_as"] or ev["model"]
            e = expect.setdefault(model, {"events": 0, "tokens": 0, "micro": None, "sessions": set(), "cache_read": 0})
            e["events"] += 1
            e["tokens"] += ev["total_tokens"]
            e["cache_read"] += ev["usage"]["cache_read_tokens"]
            e["sessions"].add((ev["provider"], ev["session_id"]))
            if priced["cost_usd"] is not None:
                e["micro"] = (e["micro"] or 0) + round(priced["cost_usd"] * 1_000_000)
    rows = {r["model"]: r for r in read_csv(built["dir"] / "ledger.csv")}
    for model, e in expect.items():
        r = rows[model]
        assert int(r["usage_events"]) == e["events"], model
        assert int(r["usage_total_tokens"]) == e["tokens"], model
        assert int(r["usage_cache_read_tokens"]) == e["cache_read"], model
        assert int(r["usage_sessions"]) == len(e["sessions"]), model
        assert r["usage_cost_usd"] == ("" if e["micro"] is None else str(round(e["micro"] / 1e6, 6)).rstrip("0").rstrip(".")), model
    cov = json.loads((built["dir"] / "coverage.json").read_text())
    assert cov["inputs"]["events"]["duplicates"] == 1
    assert cov["inputs"]["events"]["events"] == len(seen) == cov["inputs"]["events"]["lines"] - 1


def test_an_unpriced_model_is_a_row_with_null_cost_never_zero(built):
    rows = {r["model"]: r for r in read_csv(built["dir"] / "ledger.csv")}
    for name in ("o9-experimental", "claude-4-5-sonnet-thinking", "kimi-k2-thinking"):
        r = rows[name]
        assert r["priced"] == "0" and r["input_usd_per_mtok"] == "" and r["usage_cost_usd"] == ""
    assert rows["o9-experimental"]["vendor"] == "openai"
    assert rows["kimi-k2-thinking"]["rt_requests"] == "2" and rows["kimi-k2-thinking"]["vendor"] == "moonshot"
    cov = json.loads((built["dir"] / "coverage.json").read_text())
    unmapped = {(u["kind"], u["name"]): u["reason"] for u in cov["unmapped"]}
    assert unmapped[("usage", "o9-experimental")].startswith("not in the pricing book")
    assert unmapped[("runtime", "kimi-k2-thinking")].startswith("not in the pricing book")
    assert unmapped[("benchmark", "Qwen 3 Base")].startswith("a base (pre-trained) checkpoint")


def test_coverage_summary(built):
    import jsonschema

    cov = json.loads((built["dir"] / "coverage.json").read_text())
    schema = json.loads((SCHEMAS / "ledger-coverage.v1.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(cov, schema)
    b = cov["mappings"]["benchmark"]
    assert b["total"] == 56 and b["mapped"] + b["unmapped"] == 56
    assert sum(b["by_rule"].values()) == 56
    assert cov["benchmark_coverage_by_vendor"]["anthropic"]["columns"] == 5
    assert sum(v["columns"] for v in cov["benchmark_coverage_by_vendor"].values()) == 56
    assert sum(v["cells"] for v in cov["benchmark_coverage_by_vendor"].values()) == 56 * 57
    assert cov["inputs"]["benchmarks"] == {**cov["inputs"]["benchmarks"], "cells": 3304, "missing": 2725, "columns": 56, "rows": 59}
    assert len([u for u in cov["unmapped"] if u["kind"] == "benchmark"]) == b["unmapped"]
    assert all(u["reason"] for u in cov["unmapped"])
    assert cov["inputs"]["cliproxy"]["duplicates"] == 1 and cov["inputs"]["cliproxy"]["failed"] == 4


def test_the_rule_file_schema_accepts_the_shipped_rules():
    import jsonschema

    schema = json.loads((SCHEMAS / "ledger-rules.v1.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads((ROOT / "ledger-rules.json").read_text()), schema)


def _table_counts(conn):
    return {t.name: conn.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0] for t in TABLES}


JOIN_QUERY = """SELECT l.model, l.vendor, p.input_usd_per_mtok, COUNT(b.row_id) AS cells
FROM ledger l
JOIN pricing p ON p.model = l.model AND p.above_prompt_tokens = 0
JOIN model_map m ON m.model = l.model AND m.kind = 'benchmark'
JOIN benchmarks b ON b.model = m.name AND b.is_missing = 0
WHERE l.model = 'claude-sonnet-4-5'
GROUP BY l.model"""


def _expected_counts(out):
    conn = sqlite3.connect(out / "tokentally.db")
    try:
        return _table_counts(conn)
    finally:
        conn.close()


@pytest.mark.skipif(SQLITE3 is None, reason="the sqlite3 command-line shell is not installed (apt-get install sqlite3)")
def test_sqlite3_cli_loads_schema_then_seed(built, tmp_path):
    out = built["dir"]
    db = tmp_path / "fresh.db"
    for name in ("schema.sql", "seed.sql"):
        with open(out / name, "rb") as fh:
            proc = subprocess.run([SQLITE3, "-bail", str(db)], stdin=fh, capture_output=True)
        assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    counts = subprocess.run(
        [SQLITE3, str(db), "SELECT (SELECT COUNT(*) FROM ledger), (SELECT COUNT(*) FROM benchmarks), (SELECT COUNT(*) FROM pricing), (SELECT COUNT(*) FROM model_map), (SELECT COUNT(*) FROM runtime_metrics), (SELECT COUNT(*) FROM events)"],
        capture_output=True,
        check=True,
    ).stdout.decode().strip()
    expected = _expected_counts(out)
    assert counts == "|".join(str(expected[t]) for t in ("ledger", "benchmarks", "pricing", "model_map", "runtime_metrics")) + "|0"
    join = subprocess.run([SQLITE3, str(db), JOIN_QUERY], capture_output=True, check=True).stdout.decode().strip()
    assert join == "claude-sonnet-4-5|anthropic|3.0|38"
    fk = subprocess.run([SQLITE3, str(db), "PRAGMA foreign_key_check"], capture_output=True, check=True).stdout
    assert fk == b""
    assert subprocess.run([SQLITE3, str(db), "PRAGMA user_version"], capture_output=True, check=True).stdout.strip() == b"1"


def test_python_sqlite3_loads_schema_then_seed(built):
    out = built["dir"]
    conn = sqlite3.connect(":memory:")
    conn.executescript((out / "schema.sql").read_text())
    conn.executescript((out / "seed.sql").read_text())
    counts = _table_counts(conn)
    expected = _expected_counts(out)
    assert {t.name: counts[t.name] for t in SEED_TABLES} == {t.name: expected[t.name] for t in SEED_TABLES}
    assert counts["events"] == 0 and counts["benchmarks"] == 3304
    assert conn.execute(JOIN_QUERY).fetchall() == [("claude-sonnet-4-5", "anthropic", 3.0, 38)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    for name, _ in VIEWS:
        conn.execute(f"SELECT * FROM {name}").fetchall()
    # the checks are enforced: a confidence of 101 is refused
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE ledger SET vendor_confidence = 101 WHERE model = 'claude-sonnet-4-5'")


def test_database_has_every_table_index_and_view_of_schema_sql(built):
    fresh = sqlite3.connect(":memory:")
    fresh.executescript(schema_sql())
    db = sqlite3.connect(built["dir"] / "tokentally.db")

    def objects(conn):
        return sorted(conn.execute("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall())

    def columns(conn, table):
        return [tuple(r[1:6]) for r in conn.execute(f"PRAGMA table_info({table})")]

    assert objects(db) == objects(fresh)
    for t in TABLES:
        assert columns(db, t.name) == columns(fresh, t.name)
    assert db.execute("PRAGMA user_version").fetchone() == (1,)
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    events = db.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM events").fetchone()
    assert events[0] == events[1] == 23
    assert db.execute("SELECT SUM(cost_micro_usd) FROM events").fetchone()[0] == round(
        db.execute("SELECT SUM(usage_cost_usd) FROM ledger").fetchone()[0] * 1e6
    )
    assert db.execute("SELECT SUM(events) FROM daily_cost").fetchone()[0] == 23


def test_two_builds_are_byte_identical(built, tmp_path):
    """Same inputs, another output directory: every file and every dump is the same."""
    out2 = tmp_path / "again"
    build(built, out2)
    for name in OUTPUTS[:-1]:
        assert (built["dir"] / name).read_bytes() == (out2 / name).read_bytes(), name
    dumps = [stage("ledger", "dump", str(d / "tokentally.db")).stdout for d in (built["dir"], out2)]
    assert dumps[0] == dumps[1] and b"INSERT INTO events" in dumps[0]
    iterdumps = []
    for d in (built["dir"], out2):
        conn = sqlite3.connect(d / "tokentally.db")
        iterdumps.append("\n".join(conn.iterdump()))
        conn.close()
    assert iterdumps[0] == iterdumps[1]
    if SQLITE3:
        cli = [subprocess.run([SQLITE3, str(d / "tokentally.db"), ".dump"], capture_output=True, check=True).stdout for d in (built["dir"], out2)]
        assert cli[0] == cli[1]


def test_committed_schema_and_contract_doc_match_the_code():
    assert (SCHEMAS / "ledger.v1.sql").read_text() == schema_sql()
    doc = (ROOT / "docs" / "contracts" / "ledger.md").read_text()
    begin, end = "<!-- BEGIN GENERATED: ledger schema -->\n", "<!-- END GENERATED: ledger schema -->"
    assert doc[doc.index(begin) + len(begin) : doc.index(end)] == schema_markdown(), "run: ledger schema --format markdown"


def test_events_from_stdin_equal_events_from_files(built, tmp_path):
    """`-` and paths give the same ledger (source file names aside)."""
    events_dir = built["artifacts"] / "events"
    paths = [p for s in ("claude", "codex", "cursor") for p in sorted((events_dir / s).glob("*.jsonl"))]
    data = b"".join(p.read_bytes() for p in paths)
    a = build(built, tmp_path / "a", *paths)
    b = stage("ledger", "build", "--pricing", str(built["book"]), "--benchmarks", str(MODELS_CSV), "--cliproxy-dir", str(built["cliproxy"]), "--out-dir", str(tmp_path / "b"), "-", input=data)
    assert a.returncode == b.returncode == 0
    assert (tmp_path / "a" / "ledger.csv").read_bytes() == (tmp_path / "b" / "ledger.csv").read_bytes()
    assert (tmp_path / "a" / "ledger.csv").read_bytes() == (built["dir"] / "ledger.csv").read_bytes()


def test_no_events_no_table_no_archive_is_still_a_ledger(tmp_path):
    book = write_book(tmp_path / "p.json")
    proc = stage("ledger", "--artifacts", str(tmp_path / "empty"), "--pricing", str(book), "--cliproxy-dir", str(tmp_path / "none"), "--out-dir", str(tmp_path / "out"))
    assert "no events in" in proc.stderr.decode()
    rows = read_csv(tmp_path / "out" / "ledger.csv")
    assert len(rows) == len(json.loads(book.read_text())["models"]) and all(r["usage_events"] == "0" for r in rows)
    assert (tmp_path / "out" / "benchmarks_normalized.csv").read_text() == ",".join(BENCHMARKS.column_names) + "\n"
    cov = json.loads((tmp_path / "out" / "coverage.json").read_text())
    assert cov["inputs"]["benchmarks"] is None and cov["inputs"]["cliproxy"]["present"] is False


def test_bad_inputs_are_one_line_and_leave_nothing_behind(built, tmp_path):
    out = tmp_path / "out"
    bad_table = tmp_path / "bad.md"
    bad_table.write_text("no table here\n")
    cases = [
        (["--benchmarks", str(bad_table)], "bad.md:1: not a benchmark table"),
        (["--pricing", str(tmp_path / "missing.json")], "missing.json: No such file"),
        (["--rules", str(bad_table)], "bad.md: not valid JSON"),
    ]
    for extra, message in cases:
        proc = build(built, out, *extra, check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 1, err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists() or not os.listdir(out), os.listdir(out)


def test_a_bad_event_line_is_counted_or_fatal_when_strict(built, tmp_path):
    events = tmp_path / "events.jsonl"
    good = b"".join(p.read_bytes() for p in sorted((built["artifacts"] / "events" / "codex").glob("*.jsonl"))).decode().splitlines()
    events.write_text("\n".join([good[0], "{not json", json.dumps({"id": "x", "provider": "codex", "timestamp": "2026-08-01T00:00:00.000Z", "usage": {"input_tokens": -5}}), good[1]]) + "\n")
    proc = build(built, tmp_path / "out", events)
    err = proc.stderr.decode()
    assert f"{events}:2: not valid JSON" in err and f"{events}:3: usage.input_tokens is not a non-negative integer" in err
    cov = json.loads((tmp_path / "out" / "coverage.json").read_text())
    assert cov["inputs"]["events"]["bad_lines"] == 2 and cov["inputs"]["events"]["events"] == 2
    strict = build(built, tmp_path / "strict", "--strict", events, check=False)
    assert strict.returncode == 1 and f"{events}:2: not valid JSON" in strict.stderr.decode()
    assert not (tmp_path / "strict").exists() or not [p for p in os.listdir(tmp_path / "strict") if p != ".gitkeep"]


def test_no_identifying_data_reaches_any_output(built):
    """The archive holds API keys, client IPs, user agents, emails and error bodies; the
    ledger keeps none of them."""
    dump = stage("ledger", "dump", str(built["dir"] / "tokentally.db")).stdout
    blobs = [dump] + [(built["dir"] / n).read_bytes() for n in OUTPUTS[:-1]]
    for secret in (b"sk-test-SECRET", b"sk-client-SECRET", b"203.0.113.7", b"dev@example.com", b"claude-cli/2.0.37", b"rate limited"):
        assert not any(secret in blob for blob in blobs), secret


@pytest.mark.parametrize("sub", ["build", "map", "dump", "schema", "stamp"])
def test_every_subcommand_has_help_with_an_example(sub):
    out = stage("ledger", sub, "--help").stdout.decode()
    assert "Usage:" in out and "Example" in out
    assert "Example" in stage("ledger", "--help").stdout.decode()


def test_map_prints_one_json_line_per_name(built):
    proc = stage("ledger", "map", "--pricing", str(built["book"]), "Claude Sonnet 4.5", "Qwen 3 Base")
    lines = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    assert [(x["model"], x["rule"], x["confidence"]) for x in lines] == [("claude-sonnet-4-5", "vendor-family-version", 95), (None, "base-checkpoint", 100)]
    assert lines[1]["reason"]


def test_stamp_changes_only_with_its_inputs(built, tmp_path):
    stamp = tmp_path / "ledger.fp"
    env = {"MODELS_CSV": str(MODELS_CSV), "CLIPROXY_USAGE_DIR": str(built["cliproxy"])}
    stage("ledger", "stamp", "-o", str(stamp), env=env)
    first = stamp.read_bytes()
    mtime = stamp.stat().st_mtime_ns
    stage("ledger", "stamp", "-o", str(stamp), env=env)
    assert stamp.stat().st_mtime_ns == mtime
    stage("ledger", "stamp", "-o", str(stamp), env={**env, "MODELS_CSV": ""})
    assert stamp.read_bytes() != first


def test_ledger_csv_parses_back_to_the_database_rows(built):
    conn = sqlite3.connect(built["dir"] / "tokentally.db")
    conn.row_factory = sqlite3.Row
    db_rows = [dict(r) for r in conn.execute("SELECT * FROM ledger ORDER BY model")]
    csv_rows = read_csv(built["dir"] / "ledger.csv")
    assert len(db_rows) == len(csv_rows)
    for d, c in zip(db_rows, csv_rows):
        for k, v in d.items():
            assert (c[k] == "") == (v is None), (d["model"], k)
            if isinstance(v, float):
                assert float(c[k]) == v
            elif v is not None:
                assert c[k] == str(v)
    buf = io.StringIO((built["dir"] / "ledger.csv").read_text())
    assert buf.read().endswith("\n")


def test_the_long_form_table_gives_the_same_ledger(built, tmp_path):
    build(built, tmp_path / "long", "--benchmarks", shared_path("data", "models_normalized.csv"))
    for name in ("ledger.csv", "benchmarks_normalized.csv"):
        assert (tmp_path / "long" / name).read_bytes() == (built["dir"] / name).read_bytes(), name
    cov = json.loads((tmp_path / "long" / "coverage.json").read_text())
    assert cov["inputs"]["benchmarks"]["format"] == "long" and cov["inputs"]["benchmarks"]["file"] == "models_normalized.csv"
