"""The parse cache's index database (scripts/core/parse_index.py): its tables seen as
mappings, walked a page at a time, the day index kept with each file's segments, one
transaction per run, and an index built from nothing that appears only whole."""
from __future__ import annotations

import marshal
import os

from scripts.core import parse_index
from scripts.core.event_cache import location, pack_entry
from scripts.core.parse_index import INDEX_NAME, FileTable, IndexDB, KeyedBlobs, SessionRows


def _entry(fno: int, days: list[str], **extra) -> dict:
    segs = {d: ["pack-000000.jsonl", 10 * i, 10, 1] for i, d in enumerate(days)}
    packed = pack_entry(segs, ["pack-000000.jsonl", 999, 5], len(days), marshal.dumps(({}, {})), marshal.dumps((0, 1, "", {})))
    return {"fno": fno, "size": 100 + fno, "mtime_ns": 7, "ino": fno, "packed": packed, **extra}


def _days(entry: dict):
    return location(entry)[0].keys()


def test_files_walk_in_path_order_across_pages_and_follow_their_days(tmp_path, monkeypatch):
    monkeypatch.setattr(parse_index, "PAGE", 7)
    db = IndexDB(str(tmp_path))
    db.fresh()
    files = FileTable(db, _days)
    want = {}
    for i in range(50):
        path = f"/logs/{(i * 37) % 50:03d}.jsonl"
        want[path] = _entry(i, [f"2026-08-{1 + i % 3:02d}", f"2026-08-{4 + i % 2:02d}"])
        files.put(path, want[path], None)  # new files: batched
    assert len(files) == 50 and list(files) == sorted(want)
    assert dict(files.items()) == want
    assert files.days() == {"2026-08-01", "2026-08-02", "2026-08-03", "2026-08-04", "2026-08-05"}
    assert [p for p, _packed, _dropped in files.holders("2026-08-02")] == sorted(p for p, e in want.items() if "2026-08-02" in _days(e))
    # a file's new segments move it between days; a removed file leaves every day
    moved = "/logs/000.jsonl"
    files[moved] = _entry(want[moved]["fno"], ["2026-08-09"])
    assert files.holders("2026-08-09")[0][0] == moved and all(p != moved for p, _, _ in files.holders("2026-08-01"))
    files.remove(moved, files[moved])
    assert moved not in files and "2026-08-09" not in files.days() and len(files) == 49
    assert sorted(d for d, _p in files.day_pairs()) == sorted(d for p, e in want.items() if p != moved for d in _days(e))
    # columns changed in place, and the few with dropped copies found by their index
    files.set_columns("/logs/001.jsonl", dropped=["b", "a"], deleted=1)
    e = files["/logs/001.jsonl"]
    assert e["dropped"] == ["b", "a"] and e["deleted"] is True
    assert [p for p, _ in files.items("dropped IS NOT NULL")] == ["/logs/001.jsonl"]
    files.set_columns("/logs/001.jsonl", dropped=None, deleted=None)
    assert "dropped" not in files["/logs/001.jsonl"] and not list(files.items("dropped IS NOT NULL"))
    assert files.path_of(want["/logs/002.jsonl"]["fno"]) == "/logs/002.jsonl"
    db.close()


def test_keyed_values_and_session_rows():
    db = IndexDB(None)  # in memory
    blobs = KeyedBlobs(db, "session_files")
    assert blobs.get("s") is None and not blobs
    assert blobs.add_new("s", [3]) and not blobs.add_new("s", [4])
    assert blobs["s"] == [3] and "s" in blobs
    blobs.put_many([("t", [1, 2]), ("u", [5])])
    blobs.delete_many(["u"])
    assert dict(blobs.items()) == {"s": [3], "t": [1, 2]} and blobs.pop("t") == [1, 2] and len(blobs) == 1
    rows = SessionRows(db)
    for i, first in enumerate([50, 10, 30, 10]):
        rows.put(f"s{i}", first, marshal.dumps([[first, i]]))
    assert [first for first, _blob in rows.by_first()] == [10, 10, 30, 50]
    assert marshal.loads(rows.get("s2")) == [[30, 2]]
    rows.pop("s2")
    assert rows.get("s2") is None and len(rows) == 3


def test_a_run_is_one_transaction_and_a_fresh_index_appears_whole(tmp_path):
    d = str(tmp_path)
    db = IndexDB(d)
    db.fresh()
    files = FileTable(db, _days)
    files.put("/logs/a.jsonl", _entry(0, ["2026-08-01"]), None)
    files.flush()
    assert not os.path.exists(os.path.join(d, INDEX_NAME)), "a fresh build stays a temp file until committed"
    parse_index.put_meta(db.con, {"cache_version": 1})
    db.commit()
    assert sorted(os.listdir(d)) == [INDEX_NAME, INDEX_NAME + ".sum"]
    # a later run: its changes are lost when it ends without committing (a killed run)
    db = IndexDB(d)
    assert db.open() == {"cache_version": 1}
    files = FileTable(db, _days)
    files["/logs/b.jsonl"] = _entry(1, ["2026-08-02"])
    files.set_columns("/logs/a.jsonl", deleted=1)
    db.close()
    db = IndexDB(d)
    assert db.open() is not None
    files = FileTable(db, _days)
    assert list(files) == ["/logs/a.jsonl"] and "deleted" not in files["/logs/a.jsonl"]
    files["/logs/b.jsonl"] = _entry(1, ["2026-08-02"])
    db.commit()
    db.close()
    db = IndexDB(d)
    assert db.open() is not None and list(FileTable(db, _days)) == ["/logs/a.jsonl", "/logs/b.jsonl"]
    db.close()
    # bytes that differ from the sum: not trusted
    with open(os.path.join(d, INDEX_NAME), "r+b") as fh:
        fh.seek(-50, os.SEEK_END)
        byte = fh.read(1)
        fh.seek(-50, os.SEEK_END)
        fh.write(bytes([byte[0] ^ 1]))
    assert IndexDB(d).open() is None
