"""The parsed-event cache: one entry per source file, so a run re-reads only what changed.

Layout, per source, under ``$(ARTIFACTS)/cache/normalize/<source>/``:
- ``pack-<n>.jsonl``: segments of JSONL, one per parsed file (its events, deduplicated
  within the file, in the order they first appear). Each parse shard writes its own pack
  file, so the parse workers never send event bytes back to the parent. A re-parsed
  file's old segment becomes dead; packs with no live segment are deleted and mostly-dead
  packs are compacted.
- ``index.json``: per file its fingerprint (size, mtime, inode), its segment
  (``[pack, offset, length]``), where parsing stopped (byte offset after the last
  complete line, next line number, the adapter's resume state), its record counts, its
  event ids with their totals and lines (for deduplication across files) and its slot
  rollup; per pack its size, so a torn write is detected.

A file that grew is read from its stored offset (append-only logs); a file that shrank,
was replaced (other inode) or whose head changed is re-read whole; an unchanged file is
not opened. A file the tool deleted keeps its entry (``deleted``): history is never lost
by log cleanup, only by ``forget``. An index written by another cache version, adapter
version or device is discarded (counted as invalidations), never misread.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field

import orjson

from scripts.adapters.base import FileSink, ParseContext, iter_complete_lines, split_complete
from scripts.core.rollup import Rollup
from scripts.shared_io import AtomicFile

CACHE_VERSION = 3
# A file modified this recently may change again within the same mtime tick; its
# content hash is kept so the next run can tell (the "racy clean" problem).
RACY_NS = 2_000_000_000
HEAD_BYTES = 4096
_DUMPS_OPT = orjson.OPT_SORT_KEYS


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
    seg: list  # [pack file name, offset, length]
    ids: str | list  # see pack_ids
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
    out = {
        "records": a.get("records", 0) + b["records"],
        "duplicates": a.get("duplicates", 0) + b["duplicates"],
        "not_a_call": a.get("not_a_call", 0) + b["not_a_call"],
    }
    for key in ("rejected", "notes"):
        merged = dict(a.get(key, {}))
        for k, v in b.get(key, {}).items():
            merged[k] = merged.get(k, 0) + v
        out[key] = dict(sorted(merged.items()))
    return out


def read_range(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def parse_file(source: str, task: tuple, pack_dir: str) -> tuple[FileResult, bytes]:
    """Parse one file; return its metadata and its events' JSONL segment.

    ``task`` is plain data: ``(path, mode, start_offset, next_lineno, state, prior_seg,
    prior_counts, device)`` where ``prior_seg`` is the segment of the events already
    parsed from this file (resumed files only)."""
    path, mode, start, next_lineno, state, prior_seg, prior_counts, device = task
    from scripts import adapters

    adapter = adapters.load(source)
    st = os.stat(path)
    bad: list = []
    prior_events = []
    if prior_seg:
        data = read_range(os.path.join(pack_dir, prior_seg[0]), prior_seg[1], prior_seg[2])
        prior_events = [orjson.loads(line) for line in data.splitlines()]
    sink = FileSink(path, prior_events, on_bad=lambda p, where, reason: bad.append((p, where, reason)))
    ctx = ParseContext(path=path, device=device, state=dict(state or {}), mtime_ms=st.st_mtime_ns // 1_000_000)
    if adapter.resumable:
        with open(path, "rb") as fh:
            if start:
                fh.seek(start)
            data = fh.read()
        complete, partial = split_complete(data)
        adapter.parse_lines(ctx, iter_complete_lines(complete, next_lineno), sink)
        end_offset = start + len(complete)
        next_lineno += complete.count(b"\n")
        # a partial last line is not ours yet: remember the size we consumed, so the
        # next run sees the file as grown and reads that line once it is complete
        size_seen = end_offset if partial else st.st_size
        head = _hash_bytes(data[:HEAD_BYTES]) if not start else file_head_hash(path)
    else:
        if hasattr(adapter, "parse_file"):
            adapter.parse_file(ctx, sink)  # e.g. a SQLite database, opened by path
        else:
            with open(path, "rb") as fh:
                adapter.parse_content(ctx, fh.read(), sink)
        end_offset = size_seen = st.st_size
        head = ""
    events = list(sink.events.values())
    roll = Rollup()
    add = roll.add_event
    dumps = orjson.dumps
    parts = []
    for ev in events:
        add(ev)
        parts.append(dumps(ev, option=_DUMPS_OPT))
    segment = b"\n".join(parts) + b"\n" if parts else b""
    racy = None
    if time.time_ns() - st.st_mtime_ns < RACY_NS:
        with open(path, "rb") as fh:
            racy = _hash_bytes(fh.read())
    result = FileResult(
        path=path,
        mode=mode,
        size=size_seen,
        mtime_ns=st.st_mtime_ns,
        ino=st.st_ino,
        end_offset=end_offset,
        next_lineno=next_lineno,
        head_hash=head,
        racy_hash=racy,
        state=ctx.state,
        counts=_add_counts(prior_counts or {}, sink.counts()),
        versions=sink.versions,
        seg=[],
        ids=pack_ids([ev["id"] for ev in events]),
        totals=[ev["total_tokens"] for ev in events],
        lines=[ev.get("source_line") or 0 for ev in events],
        rollup=roll.rows(),
        bad=bad,
    )
    return result, segment


def parse_shard(job: tuple) -> list[FileResult]:
    """Parse a run of files of one source into one new pack file (runs in a worker)."""
    source, pack_dir, pack_name, tasks = job
    results = []
    with open(os.path.join(pack_dir, pack_name), "wb") as pack:
        offset = 0
        for task in tasks:
            res, segment = parse_file(source, task, pack_dir)
            pack.write(segment)
            res.seg = [pack_name, offset, len(segment)]
            offset += len(segment)
            results.append(res)
    return results


class EventCache:
    """One source's index and pack files. One writer at a time (the normalize run)."""

    def __init__(self, directory: str, source: str, adapter_version: str, device: str = ""):
        self.dir = directory
        self.device = device
        self.source = source
        self.adapter_version = adapter_version
        self.index_path = os.path.join(directory, "index.json")
        self.files: dict[str, dict] = {}
        self.packs: dict[str, int] = {}
        self.next_pack = 0
        self.invalidated_all = False
        self.dirty = False  # the index changed without any file being parsed

    # -- load / save -----------------------------------------------------------
    def load(self, force: bool = False) -> None:
        try:
            with open(self.index_path, "rb") as fh:
                doc = orjson.loads(fh.read())
        except (OSError, orjson.JSONDecodeError):
            doc = None
        ok = (
            isinstance(doc, dict)
            and doc.get("cache_version") == CACHE_VERSION
            and doc.get("adapter_version") == self.adapter_version
            and doc.get("source") == self.source
            and doc.get("device") == self.device
            and all(_size(os.path.join(self.dir, name)) == size for name, size in doc.get("packs", {}).items())
        )
        if doc is not None and (not ok or force):
            self.invalidated_all = True
        if ok and not force:
            self.files = doc["files"]
            self.packs = doc["packs"]
            self.next_pack = doc["next_pack"]
        else:
            self.files, self.packs = {}, {}
            self.next_pack = int(doc.get("next_pack", 0)) if isinstance(doc, dict) and isinstance(doc.get("next_pack"), int) else 0
        self._remove_unreferenced()

    def save(self) -> None:
        os.makedirs(self.dir, exist_ok=True)
        doc = {
            "cache_version": CACHE_VERSION,
            "adapter_version": self.adapter_version,
            "source": self.source,
            "device": self.device,
            "next_pack": self.next_pack,
            "packs": dict(sorted(self.packs.items())),
            "files": dict(sorted(self.files.items())),
        }
        with AtomicFile(self.index_path) as fh:
            fh.write(orjson.dumps(doc))
        self._remove_unreferenced()

    def _remove_unreferenced(self) -> None:
        try:
            names = os.listdir(self.dir)
        except OSError:
            return
        for name in names:
            if name.startswith("pack-") and name not in self.packs:
                try:
                    os.unlink(os.path.join(self.dir, name))
                except OSError:
                    pass

    # -- planning ---------------------------------------------------------------
    def plan(self, current: dict[str, tuple], resumable: bool, force: bool):
        """Decide per file: skip, resume at offset, or (re)read whole.

        ``current`` maps path -> (size, mtime_ns, ino, side) for the files that exist now.
        Returns ``(tasks, stats)``; a task is ``(path, mode, start, next_lineno, state,
        prior_seg, prior_counts)``."""
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
                if same and time.time_ns() - mtime_ns >= RACY_NS:
                    entry["racy_hash"] = None  # verified, and its mtime can no longer lie
                    self.dirty = True
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

    def new_pack_name(self) -> str:
        name = f"pack-{self.next_pack:06d}.jsonl"
        self.next_pack += 1
        return name

    def pack_path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    # -- applying results ---------------------------------------------------------
    def store(self, res: FileResult, side: str = "") -> None:
        pack = res.seg[0]
        if pack not in self.packs:
            self.packs[pack] = _size(self.pack_path(pack))
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
            "seg": res.seg,
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

    def collect(self) -> bool:
        """Drop packs no file refers to; compact when dead bytes outweigh live ones.

        Compaction rewrites every live segment, in path order, into one new pack (which
        also makes assembling the events artifact one sequential copy)."""
        live: dict[str, int] = {}
        for e in self.files.values():
            if e["seg"]:
                live[e["seg"][0]] = live.get(e["seg"][0], 0) + e["seg"][2]
        for name in list(self.packs):
            if name not in live:
                del self.packs[name]
        total = sum(self.packs.values())
        if total <= 2 * sum(live.values()) + (1 << 20):
            return False
        name = self.new_pack_name()
        with open(self.pack_path(name), "wb") as dst:
            for path in sorted(self.files):
                e = self.files[path]
                if not e["seg"]:
                    continue
                data = read_range(self.pack_path(e["seg"][0]), e["seg"][1], e["seg"][2])
                e["seg"] = [name, dst.tell(), len(data)]
                dst.write(data)
        self.packs = {name: _size(self.pack_path(name))}
        return True


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def _head_unchanged(path: str, entry: dict) -> bool:
    want = entry.get("head_hash")
    if not want:
        return False
    try:
        return file_head_hash(path) == want
    except OSError:
        return False


def pack_ids(ids: list[str]):
    """A file's event ids as one newline-joined string (a JSON string loads far faster
    than a list of them), or the list itself in the odd case an id holds a newline."""
    if any("\n" in i for i in ids):
        return ids
    return "\n".join(ids)


def unpack_ids(packed) -> list[str]:
    if isinstance(packed, list):
        return packed
    return packed.split("\n") if packed else []


def count_ids(packed) -> int:
    if isinstance(packed, list):
        return len(packed)
    return packed.count("\n") + 1 if packed else 0


def cross_file_losers(files: dict[str, dict]) -> dict[str, set]:
    """Events that appear in more than one file: keep the copy with the largest total,
    ties to the first file (path order) and line; return ``path -> ids dropped``."""
    strings = [e["ids"] for e in files.values() if e["ids"] and isinstance(e["ids"], str)]
    all_ids = "\n".join(strings).split("\n") if strings else []
    for e in files.values():
        if isinstance(e["ids"], list):
            all_ids.extend(e["ids"])
    if len(set(all_ids)) == len(all_ids):
        return {}
    from collections import Counter

    dup = {i for i, n in Counter(all_ids).items() if n > 1}
    best: dict[str, tuple] = {}
    holders: dict[str, list] = {}
    for path in sorted(files):
        e = files[path]
        ids = unpack_ids(e["ids"])
        if dup.isdisjoint(ids):
            continue
        for i, t, ln in zip(ids, e["totals"], e["lines"]):
            if i in dup:
                holders.setdefault(i, []).append(path)
                rank = (-t, path, ln)
                if i not in best or rank < best[i]:
                    best[i] = rank
    losers: dict[str, set] = {}
    for i, paths in holders.items():
        winner = best[i][1]
        for p in paths:
            if p != winner:
                losers.setdefault(p, set()).add(i)
    return losers


def copy_range(src_fd: int, dst_fd: int, offset: int, length: int) -> None:
    """Append ``length`` bytes of ``src_fd`` at ``offset`` to ``dst_fd``, in the kernel
    where it can (copy_file_range), else through a buffer."""
    copy = getattr(os, "copy_file_range", None)
    while length > 0:
        n = 0
        if copy is not None:
            try:
                n = copy(src_fd, dst_fd, length, offset)
            except OSError:
                copy = None
        if not n:
            data = os.pread(src_fd, min(length, 1 << 24), offset)
            if not data:
                raise OSError(f"pack ended early at {offset}")
            n = os.write(dst_fd, data)
        offset += n
        length -= n
