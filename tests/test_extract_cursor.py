"""extract-cursor: a real SQLite database in WAL mode, read without disturbing its writer."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3

import orjson
import pytest

from conftest import PYTHON, event_bytes, run_cmd

SCHEMA = (
    "CREATE TABLE ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB)",
    "CREATE TABLE cursorDiskKV (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB)",
)
CID = "11111111-2222-4333-8444-555555555555"


def bubble(bid, tokens=(100, 20), v=3, ts="2026-08-20T10:00:00.000Z", typ=2, **extra):
    d = {"_v": v, "type": typ, "bubbleId": bid, "createdAt": ts, "text": "secret words",
         "tokenCount": {"inputTokens": tokens[0], "outputTokens": tokens[1]}}
    d.update(extra)
    return json.dumps(d)


def make_db(path, rows, wal=True):
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    for stmt in SCHEMA:
        conn.execute(stmt)
    for table, key, value in rows:
        conn.execute(f"INSERT INTO {table} VALUES (?, ?)", (key, value))
    conn.commit()
    return conn


def extract(*args, env=None, check=True):
    return run_cmd([PYTHON, "-m", "scripts.extract_cursor", *map(str, args)], env=env, check=check)


def records(out: bytes) -> list[dict]:
    return [orjson.loads(line) for line in out.splitlines()]


def digest(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def test_reads_rows_only_in_the_wal_while_the_writer_runs(tmp_path):
    db = tmp_path / "state.vscdb"
    writer = make_db(db, [("cursorDiskKV", f"bubbleId:{CID}:b1", bubble("b1"))])
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("INSERT INTO cursorDiskKV VALUES (?, ?)", (f"bubbleId:{CID}:b2", bubble("b2", (300, 40))))
    writer.commit()
    assert os.path.getsize(str(db) + "-wal") > 0
    main_before, wal_before = digest(db), digest(str(db) + "-wal")
    got = records(extract(db).stdout)
    assert [r["key"] for r in got] == [f"bubbleId:{CID}:b1", f"bubbleId:{CID}:b2"]
    assert got[1]["value"]["tokenCount"] == {"inputTokens": 300, "outputTokens": 40}
    # nothing was checkpointed or written: the running "Cursor" keeps its WAL and can write on
    assert digest(db) == main_before and digest(str(db) + "-wal") == wal_before
    writer.execute("INSERT INTO cursorDiskKV VALUES (?, ?)", (f"bubbleId:{CID}:b3", bubble("b3")))
    writer.commit()
    assert len(records(extract(db).stdout)) == 3
    writer.close()


def test_no_text_and_deterministic_whatever_the_insert_order(tmp_path):
    rows = [
        ("cursorDiskKV", f"bubbleId:{CID}:b2", bubble("b2")),
        ("cursorDiskKV", f"composerData:{CID}", json.dumps({"_v": 10, "composerId": CID, "text": "draft prompt", "modelConfig": {"modelName": "gpt-5"}})),
        ("cursorDiskKV", f"bubbleId:{CID}:b1", bubble("b1", typ=1)),
        ("ItemTable", "cursorAuth/accessToken", "token-not-to-read"),
    ]
    a, b = tmp_path / "a" / "state.vscdb", tmp_path / "b" / "state.vscdb"
    a.parent.mkdir()
    b.parent.mkdir()
    make_db(a, rows).close()
    make_db(b, list(reversed(rows))).close()
    out_a, out_b = extract(a).stdout, extract(b).stdout
    assert out_a.replace(str(a).encode(), b"DB") == out_b.replace(str(b).encode(), b"DB")
    for needle in (b"secret words", b"draft prompt", b"token-not-to-read"):
        assert needle not in out_a
    assert [r["key"] for r in records(out_a)] == [f"bubbleId:{CID}:b1", f"bubbleId:{CID}:b2", f"composerData:{CID}"]


def test_fallback_rows_are_counted_and_bad_rows_reported(tmp_path):
    db = tmp_path / "state.vscdb"
    good = bubble("b1").encode()
    make_db(db, [
        ("cursorDiskKV", f"bubbleId:{CID}:b1", good + b"\x00\xff trailing"),
        ("cursorDiskKV", f"bubbleId:{CID}:b2", '{"_v":3,"type":2,"bubbleId":"b2","tokenCount":{"inputTokens":7,"outputTokens":3},"text":"cut'),
        ("cursorDiskKV", f"bubbleId:{CID}:b3", b"\x89PNG\r\n\x1a\n binary"),
        ("cursorDiskKV", f"bubbleId:{CID}:b4", "[1, 2, 3]"),
    ]).close()
    art = tmp_path / "art"
    proc = extract(db, "--artifacts", art, "-o", art / "raw" / "cursor.jsonl")
    err = proc.stderr.decode()
    assert f"{db}:bubbleId:{CID}:b3: value is not JSON" in err
    assert f"{db}:bubbleId:{CID}:b4: value is not a JSON object" in err
    assert "Traceback" not in err
    frag = json.loads((art / "runs" / ".current" / "extract_cursor.json").read_text())
    assert (frag["rows_seen"], frag["rows_used"], frag["via_fallback"], frag["rows_rejected"]) == (4, 2, 2, 2)
    assert frag["rejected_by_reason"] == {"value is not JSON and no fields could be recovered": 1, "value is not a JSON object": 1}
    # STRICT: the first bad row fails the run, one line
    proc = extract(db, "-o", tmp_path / "x.jsonl", env={"STRICT": "1"}, check=False)
    assert proc.returncode == 1
    assert len(proc.stderr.decode().strip().splitlines()) == 1


def test_locked_database_is_one_line_and_keeps_the_previous_output(tmp_path):
    db = tmp_path / "state.vscdb"
    holder = make_db(db, [("cursorDiskKV", f"bubbleId:{CID}:b1", bubble("b1"))], wal=False)
    holder.execute("BEGIN EXCLUSIVE")  # another process mid-write, rollback-journal mode
    out = tmp_path / "art" / "raw" / "cursor.jsonl"
    out.parent.mkdir(parents=True)
    out.write_bytes(b'{"previous": true}\n')
    proc = extract(db, "--busy-timeout", "0.2", "-o", out)
    err = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 0
    assert err == [f"{db}: database is locked (another process holds an exclusive lock; try again later); Cursor usage not updated this run"]
    assert out.read_bytes() == b'{"previous": true}\n'
    proc = extract(db, "--busy-timeout", "0.2", "-o", out, env={"STRICT": "1"}, check=False)
    assert proc.returncode == 1 and "database is locked" in proc.stderr.decode() and "Traceback" not in proc.stderr.decode()
    holder.rollback()
    holder.close()
    assert len(records(extract(db).stdout)) == 1


def test_corrupt_database_is_one_line(tmp_path):
    db = tmp_path / "state.vscdb"
    db.write_bytes(b"this is not a database\n" * 200)
    out = tmp_path / "cursor.jsonl"
    proc = extract(db, "-o", out)
    err = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 0 and len(err) == 1
    assert err[0].startswith(f"{db}: not a readable SQLite database")
    assert not out.exists()  # nothing before: none written, so the next run tries again


def test_absent_database_gives_an_empty_output(tmp_path):
    out = tmp_path / "art" / "raw" / "cursor.jsonl"
    proc = extract("--artifacts", tmp_path / "art", "-o", out, env={"CURSOR_STATE_DB": str(tmp_path / "none.vscdb")})
    assert proc.returncode == 0 and out.read_bytes() == b"" and proc.stderr == b""
    frag = json.loads((tmp_path / "art" / "runs" / ".current" / "extract_cursor.json").read_text())
    assert frag["present"] is False and frag["rows_seen"] == 0
    proc = extract(tmp_path / "none.vscdb", check=False)
    assert proc.returncode == 1 and b"no such database file" in proc.stderr


def test_pipe_into_normalize_matches_bundle_events(tmp_path):
    db = tmp_path / "state.vscdb"
    make_db(db, [
        ("ItemTable", "composer.composerHeaders", json.dumps({"allComposers": [{"composerId": CID, "workspaceIdentifier": {"uri": {"fsPath": "/home/dev/projects/shop"}}}]})),
        ("cursorDiskKV", f"composerData:{CID}", json.dumps({"_v": 10, "composerId": CID, "lastUpdatedAt": 1787220000000, "modelConfig": {"modelName": "claude-4.5-sonnet"}})),
        ("cursorDiskKV", f"bubbleId:{CID}:b1", bubble("b1", (1000, 50))),
        ("cursorDiskKV", f"bubbleId:{CID}:b2", bubble("b2", (0, 0))),
    ]).close()
    extracted = extract(db).stdout
    piped = run_cmd([PYTHON, "-m", "scripts.normalize", "--source", "cursor", "--device", "d", "-"], input=extracted).stdout
    art = tmp_path / "art"
    extract("--artifacts", art, "-o", art / "raw" / "cursor.jsonl", env={"CURSOR_STATE_DB": str(db)})
    run_cmd([PYTHON, "-m", "scripts.normalize", "--bundle", "--source", "cursor", "--device", "d", "--artifacts", art], env={"CURSOR_STATE_DB": str(db)})
    bundled = event_bytes(art, "cursor")
    assert piped == bundled
    ev = orjson.loads(piped)
    assert (ev["id"], ev["model"], ev["project"], ev["usage"]["input_tokens"]) == (f"cursor:{CID}:b1", "claude-4-5-sonnet", "shop", 1000)


def test_a_newer_bubble_version_is_flagged(tmp_path):
    db = tmp_path / "state.vscdb"
    make_db(db, [("cursorDiskKV", f"bubbleId:{CID}:b1", bubble("b1", v=4)), ("cursorDiskKV", f"bubbleId:{CID}:b2", bubble("b2", v=3))]).close()
    art = tmp_path / "art"
    env = {"CURSOR_STATE_DB": str(db)}
    extract("--artifacts", art, "-o", art / "raw" / "cursor.jsonl", env=env)
    run_cmd([PYTHON, "-m", "scripts.normalize", "--bundle", "--source", "cursor", "--artifacts", art], env=env)
    frag = json.loads((art / "runs" / ".current" / "normalize.json").read_text())["sources"]["cursor"]
    assert frag["source_versions"] == {"3": 1, "4": 1}
    assert frag["newer_than_fixtures"] == ["4"]


@pytest.mark.parametrize("value", [None, b"", "   "])
def test_empty_values_are_rejections(value):
    from scripts.core.cursor_store import record_from_row

    rec = record_from_row("db", "cursorDiskKV", "bubbleId:x:y", value)
    assert rec["rejected"] == "empty value"


def test_records_follow_their_schema(tmp_path):
    import jsonschema

    from adapter_harness import build_fixture_copy

    root = build_fixture_copy(tmp_path)
    out = records(extract(root / "cursor" / "build" / "state.vscdb").stdout)
    with open(os.path.join(os.path.dirname(__file__), "..", "schemas", "cursor-record.v1.schema.json")) as fh:
        schema = json.load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    assert len(out) == 16
    for rec in out:
        assert list(validator.iter_errors(rec)) == [], rec["key"]
