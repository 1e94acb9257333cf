"""The stage contract applied to the stages that are not plain stdin filters.

tests/test_cli_contract.py holds the contract for normalize, aggregate and price (which
read stdin). Here the same five promises for extract-cursor, cache-check, snapshot and
ledger, each in the form that fits a stage reading a database or a bundle:

- help text with an example (also checked for every console command);
- empty input gives empty output;
- `-` and a path give the same output (`-o -` against `-o FILE` where the input is a
  database or a bundle);
- a bad record's line or row key appears in the error;
- output validates against its schema.
"""
from __future__ import annotations

import json
import sqlite3

import pytest

from conftest import ROOT, load_json, load_jsonl, make, stage
from scripts.core.schemas import errors

BUBBLE = {"_v": 3, "type": 2, "bubbleId": "b1", "createdAt": "2026-08-03T10:00:00.000Z", "tokenCount": {"inputTokens": 100, "outputTokens": 20},
          "modelInfo": {"modelName": "gpt-4.1"}}


def _cursor_db(path, rows):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB)")
    db.execute("CREATE TABLE cursorDiskKV (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB)")
    db.executemany("INSERT INTO cursorDiskKV VALUES (?, ?)", rows)
    db.commit()
    db.close()
    return path


# ---------------------------------------------------------------- extract-cursor
def test_extract_cursor_empty_database_gives_empty_output(tmp_path):
    db = _cursor_db(tmp_path / "state.vscdb", [])
    assert stage("extract_cursor", str(db), "-o", "-").stdout == b""


def test_extract_cursor_dash_and_path_agree_and_validate(tmp_path):
    db = _cursor_db(tmp_path / "state.vscdb", [("bubbleId:c1:b1", json.dumps(BUBBLE))])
    out = tmp_path / "cursor.jsonl"
    stdout = stage("extract_cursor", str(db), "-o", "-").stdout
    stage("extract_cursor", str(db), "-o", str(out))
    assert stdout == out.read_bytes() and stdout
    for record in load_jsonl(out):
        assert errors(record, "cursor-record.v1.schema.json") == []


def test_extract_cursor_bad_row_names_its_key(tmp_path):
    db = _cursor_db(tmp_path / "state.vscdb", [("bubbleId:c1:b1", json.dumps(BUBBLE)), ("bubbleId:c1:b2", "")])
    proc = stage("extract_cursor", str(db), "-o", "-")
    assert "bubbleId:c1:b2" in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()
    # the bad row still travels on, marked rejected, so normalize can account for it
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r.get("rejected") for r in records] == [None, "empty value"]


# ---------------------------------------------------------------- cache-check, snapshot
@pytest.fixture(scope="module")
def empty_bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("empty")
    (root / "home").mkdir()
    make("all", env={"HOME": str(root / "home"), "ARTIFACTS": str(root / "art"), "TIMEZONE": "UTC", "MONTH": "2026-08"})
    return root / "art"


def test_cache_check_with_no_logs_stamps_every_source_absent(empty_bundle):
    for source in ("claude", "codex", "cursor", "droid", "opencode", "gemini", "cliproxy"):
        stamp = load_json(empty_bundle / "stamps" / f"{source}.fp")
        assert stamp["present"] is False
        assert errors(stamp, "stamp.v1.schema.json") == []


def test_snapshot_of_an_empty_bundle_is_zero_and_valid(empty_bundle):
    snap = load_json(empty_bundle / "ui-snapshot.json")
    assert snap["totals"]["tokens"] == 0 and snap["top_models"] == []
    assert errors(snap, "ui-snapshot.v1.schema.json") == []


def test_snapshot_dash_and_path_agree(empty_bundle, tmp_path):
    args = ("--artifacts", str(empty_bundle), "--month", "2026-08", "--timezone", "UTC")
    to_stdout = json.loads(stage("snapshot", *args, "-o", "-").stdout)
    stage("snapshot", *args, "-o", str(tmp_path / "snap.json"))
    to_file = load_json(tmp_path / "snap.json")
    to_stdout.pop("generated_at"), to_file.pop("generated_at")
    assert to_stdout == to_file


def test_snapshot_bad_report_is_one_line_naming_the_file(empty_bundle, tmp_path):
    broken = tmp_path / "art"
    (broken / "reports").mkdir(parents=True)
    for kind in ("daily", "monthly", "blocks"):
        (broken / "reports" / f"{kind}.json").write_bytes((empty_bundle / "reports" / f"{kind}.json").read_bytes())
    (broken / "reports" / "monthly.json").write_text('{"rows": [')
    proc = stage("snapshot", "--artifacts", str(broken), "--month", "2026-08", "-o", "-", check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "monthly.json" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- ledger
def test_ledger_empty_events_give_an_empty_but_valid_ledger(tmp_path):
    out = tmp_path / "ledger"
    stage("ledger", "build", "--out-dir", str(out), "-", input=b"", env={"ARTIFACTS": str(tmp_path / "art")})
    cov = load_json(out / "coverage.json")
    assert errors(cov, "ledger-coverage.v1.schema.json") == []
    assert cov["inputs"]["events"]["events"] == 0
    db = sqlite3.connect(out / "tokentally.db")
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
    db.close()


def test_ledger_dash_and_path_agree(tmp_path):
    line = json.dumps({"schema_version": 1, "id": "claude:m1:r1", "provider": "claude", "model": "claude-sonnet-4-5",
                       "raw_model": "claude-sonnet-4-5-20250929", "session_id": "s1", "project": "p", "timestamp": "2026-08-03T10:00:00.000Z",
                       "usage": {"input_tokens": 10, "output_tokens": 5, "cache_write_tokens": 0, "cache_read_tokens": 0, "tool_input_tokens": 0,
                                 "tool_output_tokens": 0, "reasoning_tokens": 0, "cache_write_1h_tokens": 0},
                       "total_tokens": 15, "source_file": "x", "source_line": 1, "adapter": "claude", "adapter_version": "1",
                       "source_version": None, "device": "d"}) + "\n"
    events = tmp_path / "events.jsonl"
    events.write_text(line)
    env = {"ARTIFACTS": str(tmp_path / "art")}
    stage("ledger", "build", "--out-dir", str(tmp_path / "a"), str(events), env=env)
    stage("ledger", "build", "--out-dir", str(tmp_path / "b"), "-", input=line.encode(), env=env)
    for name in ("ledger.csv", "seed.sql", "schema.sql"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_ledger_bad_event_line_names_the_line(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text('{"provider": "claude"}\nnot json\n')
    proc = stage("ledger", "build", "--out-dir", str(tmp_path / "l"), "--strict", str(events), check=False, env={"ARTIFACTS": str(tmp_path / "art")})
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "Traceback" not in err
    assert f"{events}:1" in err or f"{events}:2" in err


def test_every_stage_of_the_brief_is_a_console_command():
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as fh:
        scripts = tomllib.load(fh)["project"]["scripts"]
    for name in ("extract-cursor", "extract-cliproxy", "normalize", "cache-check", "aggregate", "price", "snapshot", "ledger"):
        assert name in scripts, name
