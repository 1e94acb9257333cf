"""Cursor's database held by another process mid-write while ``make all`` extracts from it.

Another process (a real SQLite client in its own process) opens a write transaction
(BEGIN IMMEDIATE or EXCLUSIVE), writes a new bubble without committing, and holds it. In WAL
mode (as Cursor runs) and for IMMEDIATE in rollback-journal mode the reader still reads, and
sees only committed rows: never a partial result. When the holder really excludes readers
(EXCLUSIVE in rollback-journal mode, or WAL under locking_mode=EXCLUSIVE), extract-cursor
waits its busy timeout, then says so in one line with the advice to retry, keeps what it
extracted before (so the bundle loses nothing) and the next run extracts again.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import event_bytes

from .harness import LONG, check_bundle, figure, make

HOLDER = r"""
import sqlite3, sys, json
db, begin, journal, bubble = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
conn = sqlite3.connect(db, isolation_level=None, timeout=10)
if journal == "wal-exclusive":
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")
conn.execute("BEGIN " + begin)
conn.execute("INSERT INTO cursorDiskKV (key, value) VALUES (?, ?)", ("bubbleId:0f6c2a9e-3b1d-4e7a-9c55-1a2b3c4d5e6f:zz-new", bubble))
print("held", flush=True)
what = sys.stdin.readline().strip()
conn.execute(what.upper())
print("done", flush=True)
conn.close()
"""

NEW_BUBBLE = json.dumps({"_v": 3, "type": 2, "bubbleId": "zz-new", "createdAt": "2026-08-13T10:00:00.000Z",
                         "tokenCount": {"inputTokens": 1234, "outputTokens": 56}, "modelInfo": {"modelName": "gpt-5"},
                         "text": "uncommitted text"})
LOCKED_LINE = "database is locked (another process holds an exclusive lock; try again later); Cursor usage not updated this run"


class Holder:
    def __init__(self, db, begin, journal):
        self.p = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), begin, journal, NEW_BUBBLE],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().strip()
        assert line == "held", self.p.stderr.read()

    def end(self, how):
        self.p.stdin.write(how + "\n")
        self.p.stdin.flush()
        assert self.p.stdout.readline().strip() == "done", self.p.stderr.read()
        self.p.wait(timeout=30)


def _db(tree, tmp_path, journal):
    db = tmp_path / "cursor" / "state.vscdb"
    db.parent.mkdir(parents=True)
    src = tree.fixtures / "cursor" / "build" / "state.vscdb"
    for suffix in ("", "-wal", "-shm"):
        if (src.parent / (src.name + suffix)).exists():
            shutil.copyfile(src.parent / (src.name + suffix), db.parent / (db.name + suffix))
    if journal == "delete":
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()
    return db


def _env(tree, tmp_path, db):
    nowhere = tmp_path / "absent"
    return dict(HOME=str(tree.home), ARTIFACTS=str(tmp_path / "art"), TIMEZONE="UTC", MONTH="2026-08", DEVICE="faultbox",
                CURSOR_STATE_DB=str(db), CLAUDE_CONFIG_DIR=str(nowhere), CODEX_HOME=str(nowhere), DROID_SESSIONS_DIR=str(nowhere),
                OPENCODE_DATA_DIR=str(nowhere), GEMINI_DATA_DIR=str(nowhere), CLIPROXY_USAGE_DIR=str(nowhere))


def _cursor_ids(art):
    return [json.loads(line)["id"] for line in event_bytes(art, "cursor").splitlines()]


CASES = [
    # (journal mode, BEGIN kind, readers blocked?)
    ("wal", "IMMEDIATE", False),
    ("wal", "EXCLUSIVE", False),
    ("delete", "IMMEDIATE", False),
    ("delete", "EXCLUSIVE", True),
    ("wal-exclusive", "IMMEDIATE", True),
]
OUTCOMES: dict[str, str] = {}


@pytest.mark.parametrize("journal,begin,blocked", CASES, ids=[f"{j}-{b.lower()}" for j, b, _ in CASES])
@pytest.mark.parametrize("first_run", [False, True], ids=["after-a-run", "first-run"])
def test_extract_while_another_process_writes(tree, tmp_path, journal, begin, blocked, first_run):
    if first_run and not blocked and not LONG:
        pytest.skip("fast profile: a first run against a lock that does not block readers is the long profile's")
    db = _db(tree, tmp_path, journal)
    env = _env(tree, tmp_path, db)
    art = tmp_path / "art"
    if not first_run:
        make(env, "all")
        before = _cursor_ids(art)
        raw_before = (art / "raw" / "cursor.jsonl").read_bytes()
        assert before
    holder = Holder(db, begin, journal)
    try:
        os.utime(db)  # the app wrote to it just now: this run extracts again
        t0 = time.monotonic()
        proc = make(env, "all")
        took = time.monotonic() - t0
        err = proc.stderr.decode()
        assert "Traceback" not in err
        chk = check_bundle(art)
        assert not chk.problems, chk.problems[:5]
        summary = json.loads((art / "runs" / "latest.json").read_text())
        failures = summary["stages"]["extract_cursor"]["failures"]
        if blocked:
            assert [line for line in err.splitlines() if line.startswith(f"{db}:")] == [f"{db}: {LOCKED_LINE}"]
            assert failures == [{"database": str(db), "reason": LOCKED_LINE.split("; Cursor")[0]}]
            assert took >= 1.5  # it waited its busy timeout before saying so
            if first_run:
                assert _cursor_ids(art) == []
            else:
                assert (art / "raw" / "cursor.jsonl").read_bytes() == raw_before, "what was extracted before is kept"
                assert _cursor_ids(art) == before, "nothing previously extracted is lost"
        else:
            assert "locked" not in err and failures == []
            ids = _cursor_ids(art)
            assert ids and not any("zz-new" in i for i in ids), "an uncommitted row was read"
            assert "uncommitted text" not in (art / "raw" / "cursor.jsonl").read_text()
        during = _cursor_ids(art)
    finally:
        holder.end("rollback")
    # the holder gave up its write: the next run reads the database again, all of it
    make(env, "all")
    after = _cursor_ids(art)
    assert after and not any("zz-new" in i for i in after)
    if not first_run:
        assert after == before
    OUTCOMES[f"{journal}/{begin}/{'first run' if first_run else 'after a run'}"] = (
        f"locked: one line, {len(during)} events kept, next run {len(after)}" if blocked else f"read {len(during)} committed events")
    # and a committed write is read by the run after it
    holder = Holder(db, begin, journal)
    holder.end("commit")
    make(env, "all")
    assert any("zz-new" in i for i in _cursor_ids(art))
    figure("cursor_lock.cases", dict(sorted(OUTCOMES.items())))


def test_a_lock_released_within_the_busy_timeout_is_waited_for(tree, tmp_path):
    db = _db(tree, tmp_path, "delete")
    env = _env(tree, tmp_path, db)
    holder = Holder(db, "EXCLUSIVE", "delete")
    from .harness import start_make

    p = start_make(env, "all")
    time.sleep(0.5)
    holder.end("commit")
    _out, err = p.communicate(timeout=120)
    assert p.returncode == 0 and "locked" not in err.decode()
    assert any("zz-new" in i for i in _cursor_ids(tmp_path / "art"))
