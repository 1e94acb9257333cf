"""The parsed-event cache: one entry per source file, so a run re-reads only what changed.

Layout, per source, under ``$(ARTIFACTS)/cache/normalize/<source>/``:
- ``pack.jsonl``: append-only; each file's events (deduplicated within the file) are
  one contiguous segment of JSONL. A re-parsed file appends a new segment; dead segments
  are compacted away when they outweigh the live ones.
- ``index.json``: per file its fingerprint (size, mtime, inode), where its segment is,
  where parsing stopped (byte offset after the last complete line, next line number,
  the adapter's resume state), its record counts, its event ids with their totals (for
  deduplication across files) and its slot rollup.

A file that grew is read from its stored offset (append-only logs); a file that shrank,
was replaced (other inode) or whose head changed is re-read whole; an unchanged file is
not opened. A file the tool deleted keeps its entry (``deleted``): history is never lost
by log cleanup, only by ``forget``.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field

import orjson

from scripts.adapters.base import FileSink, ParseContext, iter_complete_lines, split_complete
from scripts.core.rollup import Rollup
from scripts.shared_io import AtomicFile, dumps_line

# Bump when the cache layout or the meaning of an entry changes: an index written by
# another version is discarded and rebuilt (counted as invalidations).
CACHE_VERSION = 1
# A file modified this recently may change again within the same mtime tick; its
# content hash is kept so the next run can tell (the "racy clean" problem).
RACY_NS = 2_000_000_000
HEAD_BYTES = 4096


@dataclass
class FileResult:
    path: str
    mode: str  # "new" | "resumed" | "reread"
    size: int
    mtime_ns: int
    ino: int
    end_offset: int
    next_lineno: int
    head_hash: str
    racy_hash: str | None
    state: dict
    counts: dict
    versions: dict
    segment: bytes
    ids: list
    totals: list
    lines: list
    rollup: list
    bad: list = field(default_factory=list)  # (path, line, reason) to print


def _hash_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def file_head_hash(path: str, length: int = HEAD_BYTES) -> str:
    with open(path, "rb") as fh:
        return _hash_bytes(fh.read(length))


def _add_counts(a: dict, b: dict) -> dict:
    rejected = dict(a.get("rejected", {}))
    for k, v in b.get("rejected", {}).items():
        rejected[k] = rejected.get(k, 0) + v
    notes = dict(a.get("notes", {}))
    for k, v in b.get("notes", {}).items():
        notes[k] = notes.get(k, 0) + v
    return {
        "notes": dict(sorted(notes.items())),
        "records": a.get("records", 0) + b["records"],
        "duplicates": a.get("duplicates", 0) + b["duplicates"],
        "not_a_call": a.get("not_a_call", 0) + b["not_a_call"],
        "rejected": dict(sorted(rejected.items())),
    }


def parse_task(task: tuple) -> FileResult:
    """Parse one file (in a worker process). ``task`` is picklable plain data:
    ``(source, path, mode, start_offset, next_lineno, state, prior_segment, prior_counts, device)``."""
    source, path, mode, start, next_lineno, state, prior_segment, prior_counts, device = task
    from scripts import adapters

    adapter = adapters.load(source)
    st = os.stat(path)
    bad: list = []
    prior_events = [orjson.loads(line) for line in prior_segment.splitlines()] if prior_segment else []
    sink = FileSink(path, prior_events, on_bad=lambda p, where, reason: bad.append((p, where, reason)))
    ctx = ParseContext(path=path, device=device, state=dict(state or {}), mtime_ms=st.st_mtime_ns // 1_000_000)
    if adapter.resumable:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read()
        complete, _partial = split_complete(data)
        adapter.parse_lines(ctx, iter_complete_lines(complete, next_lineno), sink)
        end_offset = start + len(complete)
        next_lineno += complete.count(b"\n")
        # what we hold now is exactly the bytes up to end_offset
        size_seen = min(st.st_size, end_offset) if _partial else st.st_size
    else:
        if hasattr(adapter, "parse_file"):
            adapter.parse_file(ctx, sink)  # e.g. a SQLite database, opened by path
        else:
            with open(path, "rb") as fh:
                adapter.parse_content(ctx, fh.read(), sink)
        end_offset = st.st_size
        size_seen = st.st_size
    events = list(sink.events.values())
    roll = Rollup()
    for ev in events:
        roll.add_event(ev)
    segment = b"".join(dumps_line(ev) for ev in events)
    racy = None
    if time.time_ns() - st.st_mtime_ns < RACY_NS:
        with open(path, "rb") as fh:
            racy = _hash_bytes(fh.read())
    return FileResult(
        path=path,
        mode=mode,
        size=size_seen,
        mtime_ns=st.st_mtime_ns,
        ino=st.st_ino,
        end_offset=end_offset,
        next_lineno=next_lineno,
        head_hash=file_head_hash(path) if adapter.resumable else "",
        racy_hash=racy,
        state=ctx.state,
        counts=_add_counts(prior_counts or {}, sink.counts()),
        versions=sink.versions,
        segment=segment,
        ids=[ev["id"] for ev in events],
        totals=[ev["total_tokens"] for ev in events],
        lines=[ev.get("source_line") or 0 for ev in events],
        rollup=roll.rows(),
        bad=bad,
    )


class EventCache:
    """One source's index + pack. Not thread-safe; one writer (the normalize run)."""

    def __init__(self, directory: str, source: str, adapter_version: str, device: str = ""):
        self.dir = directory
        self.device = device
        self.source = source
        self.adapter_version = adapter_version
        self.index_path = os.path.join(directory, "index.json")
        self.pack_path = os.path.join(directory, "pack.jsonl")
        self.files: dict[str, dict] = {}
        self.invalidated_all = False
        self.pack_live = 0

    # -- load / save -----------------------------------------------------------
    def load(self, force: bool = False) -> None:
        try:
            with open(self.index_path, "rb") as fh:
                doc = orjson.loads(fh.read())
        except (OSError, orjson.JSONDecodeError):
            doc = None
        pack_size = os.path.getsize(self.pack_path) if os.path.exists(self.pack_path) else -1
        ok = (
            isinstance(doc, dict)
            and doc.get("cache_version") == CACHE_VERSION
            and doc.get("adapter_version") == self.adapter_version
            and doc.get("source") == self.source
            and doc.get("device") == self.device
            and doc.get("pack_size") == pack_size
        )
        if doc is not None and not ok:
            self.invalidated_all = True
        if force and doc is not None:
            self.invalidated_all = True
        if ok and not force:
            self.files = doc["files"]
        else:
            self.files = {}
            if os.path.exists(self.pack_path):
                os.unlink(self.pack_path)

    def save(self) -> None:
        os.makedirs(self.dir, exist_ok=True)
        pack_size = os.path.getsize(self.pack_path) if os.path.exists(self.pack_path) else -1
        doc = {
            "cache_version": CACHE_VERSION,
            "adapter_version": self.adapter_version,
            "source": self.source,
            "device": self.device,
            "pack_size": pack_size,
            "files": dict(sorted(self.files.items())),
        }
        with AtomicFile(self.index_path) as fh:
            fh.write(orjson.dumps(doc))

    # -- planning ---------------------------------------------------------------
    def plan(self, current: dict[str, tuple], resumable: bool, force: bool):
        """Decide per file: skip, resume at offset, or (re)read whole.

        ``current`` maps path -> (size, mtime_ns, ino, side) for the files that exist now.
        Returns ``(tasks, stats)`` with tasks as (path, mode, start, next_lineno, state,
        prior_seg_ref, prior_counts)."""
        tasks = []
        stats = {"hit": 0, "miss": 0, "resumed": 0, "invalidate": 0, "deleted": 0}
        for path, (size, mtime_ns, ino, side) in sorted(current.items()):
            entry = self.files.get(path)
            if entry is None or force:
                tasks.append((path, "new" if entry is None else "reread", 0, 1, {}, None, None))
                stats["miss" if entry is None else "invalidate"] += 1
                continue
            entry.pop("deleted", None)
            same = (
                entry["size"] == size and entry["mtime_ns"] == mtime_ns and entry["ino"] == ino and entry.get("side", "") == side
            )
            if same and entry.get("racy_hash"):
                try:
                    with open(path, "rb") as fh:
                        same = _hash_bytes(fh.read()) == entry["racy_hash"]
                except OSError:
                    same = False
            if same:
                stats["hit"] += 1
                continue
            grew = (
                resumable
                and entry["ino"] == ino
                and size >= entry["end_offset"]
                and entry["end_offset"] > 0
                and _head_unchanged(path, entry)
            )
            if grew:
                tasks.append((path, "resumed", entry["end_offset"], entry["next_lineno"], entry["state"], entry["seg"], entry["counts"]))
                stats["resumed"] += 1
            else:
                tasks.append((path, "reread", 0, 1, {}, None, None))
                stats["invalidate"] += 1
        for path, entry in self.files.items():
            if path not in current:
                entry["deleted"] = True
                stats["deleted"] += 1
        return tasks, stats

    def read_segment(self, seg) -> bytes:
        if not seg or not seg[1]:
            return b""
        with open(self.pack_path, "rb") as fh:
            fh.seek(seg[0])
            return fh.read(seg[1])

    # -- applying results ---------------------------------------------------------
    def open_pack(self):
        os.makedirs(self.dir, exist_ok=True)
        return open(self.pack_path, "ab")

    def store(self, pack_fh, res: FileResult, side: str = "") -> None:
        offset = pack_fh.tell()
        pack_fh.write(res.segment)
        self.files[res.path] = {
            "size": res.size,
            "mtime_ns": res.mtime_ns,
            "ino": res.ino,
            "side": side,
            "end_offset": res.end_offset,
            "next_lineno": res.next_lineno,
            "head_hash": res.head_hash,
            "racy_hash": res.racy_hash,
            "state": res.state,
            "counts": res.counts,
            "versions": res.versions,
            "seg": [offset, len(res.segment)],
            "ids": res.ids,
            "totals": res.totals,
            "lines": res.lines,
            "rollup": res.rollup,
        }

    def forget_deleted(self) -> int:
        gone = [p for p, e in self.files.items() if e.get("deleted")]
        for p in gone:
            del self.files[p]
        return len(gone)

    def compact_if_needed(self) -> bool:
        """Rewrite the pack with live segments only, when dead bytes outweigh live ones."""
        if not os.path.exists(self.pack_path):
            return False
        live = sum(e["seg"][1] for e in self.files.values())
        size = os.path.getsize(self.pack_path)
        if size <= 2 * live + (1 << 20):
            return False
        tmp = self.pack_path + ".compact"
        with open(self.pack_path, "rb") as src, open(tmp, "wb") as dst:
            for path in sorted(self.files):
                e = self.files[path]
                src.seek(e["seg"][0])
                data = src.read(e["seg"][1])
                e["seg"] = [dst.tell(), len(data)]
                dst.write(data)
        os.replace(tmp, self.pack_path)
        return True


def _head_unchanged(path: str, entry: dict) -> bool:
    want = entry.get("head_hash")
    if not want:
        return False
    try:
        return file_head_hash(path) == want
    except OSError:
        return False


def cross_file_losers(files: dict[str, dict]) -> dict[str, set]:
    """Events that appear in more than one file: keep the copy with the largest total,
    ties to the first file (path order) and line; return ``path -> ids dropped``."""
    all_ids: list[str] = []
    for entry in files.values():
        all_ids.extend(entry["ids"])
    if len(set(all_ids)) == len(all_ids):
        return {}
    seen: dict[str, int] = {}
    dup: set[str] = set()
    for i in all_ids:
        if i in seen:
            dup.add(i)
        seen[i] = 1
    best: dict[str, tuple] = {}
    holders: dict[str, list] = {}
    for path in sorted(files):
        e = files[path]
        for i, t, ln in zip(e["ids"], e["totals"], e["lines"]):
            if i in dup:
                holders.setdefault(i, []).append(path)
                rank = (-t, path, ln)
                if i not in best or rank < best[i]:
                    best[i] = rank
    losers: dict[str, set] = {}
    for i, paths in holders.items():
        winner = best[i][1]
        dropped_once = False
        for p in paths:
            if p == winner and not dropped_once:
                dropped_once = True
                continue
            losers.setdefault(p, set()).add(i)
    return losers
