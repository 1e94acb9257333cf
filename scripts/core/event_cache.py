"""The parsed-event cache: one entry per source file, so a run re-reads only what changed.

Layout, per source, under ``$(ARTIFACTS)/cache/normalize/<source>/``:

- ``pack-<n>.jsonl``: written by one parse shard each (so the workers never send event
  bytes back to the parent). Per parsed file: one *segment* per UTC day its events fall
  on (those events as JSONL, deduplicated within the file, in the order they first
  appear), then its *bulk* line (its event ids, totals and lines in first-appearance
  order, and its slot rollup). A re-parsed file's old ranges become dead (a file that
  grew rewrites only the days its new records touched); packs with nothing live are
  deleted, mostly-dead ones compacted.
- ``index.sqlite`` (``parse_index``): per file its fingerprint (size, mtime, inode) and
  the ids dropped as copies of a call kept in another file; packed (one marshal string,
  ``pack_entry``) where its day segments (day -> [pack, offset, length, events]) and
  bulk line are, its events, its record counts and versions, and where parsing stopped
  (byte offset after the last complete line, next line number, the hash of the head,
  the adapter's resume state); which files hold which day; per pack its size (a torn
  write is detected); and the source's merged state (see ``MergedState``).
  ``index.sqlite.sum`` holds its size and CRC, ``hashes-<n>.bin`` the hash multiset's
  sorted base.

So a run reads the index rows it needs and the bulk of just the files that changed: its
cost follows the change, not the history. The days a file holds are in the index, so
normalize rewrites only the day files of ``events/<source>/`` that a change can reach. A
file that grew is read from its stored offset (append-only logs); a file that shrank, was
replaced (other inode) or whose head changed is re-read whole; an unchanged file is not
opened. A file the tool deleted keeps its entry (``deleted``): history is never lost by
log cleanup, only by ``forget``. An index written by another cache version, adapter
version, device or Python (the packed entries are marshal strings, whose format is a
Python version's), or whose bytes differ from its sum, is rebuilt (counted as
invalidations), never misread.

Memory: nothing is held per file, per session or per call. The index is read through
SQLite's page cache (256 KB); the hash multiset's base is searched a 4 KB block at a time
through every 512th hash; a first run's results wait in a log file (``event_merge.FreshLog``)
and its parse workers read their runs of the listing themselves (``shard_tasks``). Held
in memory, the index was ~1 KB per log file and ~0.4 KB per session (8 MB at 400k calls).
"""
from __future__ import annotations

import hashlib
import heapq
import marshal
import os
import sys
import time
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field, fields
from sys import intern

import orjson

from scripts import native
from scripts.adapters.base import FileSink, ParseContext, complete_lines, split_complete
from scripts.core.event import LONG_CONTEXT_THRESHOLDS
from scripts.core.parse_index import INDEX_NAME, FileTable, IndexDB, KeyedBlobs, SessionRows, put_meta, read_packs, write_packs
from scripts.core.rollup import SLOT_MS, Rollup
from scripts.core.sorted_runs import RunFile
from scripts.core.view_cache import Spill
from scripts.shared_io import AtomicFile, remove_if_present

CACHE_VERSION = 14  # 14: the index a SQLite database (parse_index); 13: an entry's segs, bulk, n, tally and resume point in one string (packed); 12: an entry's segs and bulk packed (loc); 11: merged rows as one raw piece and a directory of it; 10: counts and resume point packed per entry; 9: the index body in pieces; 8: merged rows marshalled by session; 7: a marshal index; 6: per-day segments (events/<source>/<day>.jsonl)
LEGACY_INDEX_NAMES = ("index.marshal", "index.json")  # cache versions 7-13, up to 6
PYTHON = "%d.%d" % sys.version_info[:2]  # marshal's format (of the packed entries) is a Python version's


def source_cache_dir(artifacts: str, source: str) -> str:
    """Where a source's parse cache lives in a bundle."""
    return os.path.join(artifacts, "cache", "normalize", source)


def has_index(artifacts: str, source: str) -> bool:
    """Whether a source has a parse cache (a run after its first)."""
    return os.path.exists(os.path.join(source_cache_dir(artifacts, source), INDEX_NAME))


class FileAt:
    """Reads ranges of an open file, offsets from ``base``."""

    def __init__(self, fh, base: int = 0):
        self.fh = fh
        self.base = base

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``start:end`` (as ``view_cache.Spill.read``)."""
        self.fh.seek(self.base + start)
        return self.fh.read(end - start)


# A file modified this recently may change again within the same mtime tick; its
# content hash is kept so the next run can tell (the "racy clean" problem).
# How recent is too recent depends on the mtime's grain: whole seconds (FAT, HFS+, some
# network file systems) need seconds; sub-second mtimes come from the kernel's clock tick
# (at most 10 ms), so a 50 ms window covers them and a just-appended log is not hashed
# whole on the next run.
RACY_NS = 2_000_000_000
RACY_FINE_NS = 50_000_000


def racy_window(mtime_ns: int) -> int:
    return RACY_NS if mtime_ns % 1_000_000_000 == 0 else RACY_FINE_NS
HEAD_BYTES = 4096
_DUMPS_OPT = orjson.OPT_SORT_KEYS
I_SESSION = 4  # rollup key column holding the session id


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
    n: int  # events kept in the file
    hashes: bytes  # array('Q') of its event ids' hashes, in event order
    rollup: bytes  # marshalled rows: pickled to the parent as one string, kept so (event_merge.Parsed)
    segs: dict = field(default_factory=dict)  # day -> [pack, offset, length, n]
    days_changed: list = field(default_factory=list)  # days whose events this parse changed
    bulk: list = field(default_factory=list)  # [pack, offset, length]
    bad: list = field(default_factory=list)  # (path, line, reason) to print
    tally: bytes = b""  # packed (counts, versions), once ``pack`` ran
    resume: bytes = b""  # packed (end_offset, next_lineno, head_hash, state), once ``pack`` ran
    fno: int = -1  # its file number, once stored (``EventCache.store``)

    def pack(self) -> None:
        """Pack what the index keeps packed (``tally``, ``resume_point``): a worker sends its
        results so, and the parent holds them so until it stores them."""
        if not self.tally:
            self.tally = marshal.dumps((self.counts, self.versions))
            self.resume = marshal.dumps((self.end_offset, self.next_lineno, self.head_hash, self.state))
            self.counts = self.versions = self.state = None

    def as_tuple(self) -> tuple:
        """The fields in order (``FileResult(*t)`` rebuilds it), for marshal."""
        return tuple(getattr(self, f.name) for f in fields(self))


def _hash_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def id_hash(event_id: str) -> int:
    """A stable 64-bit hash of an event id (Python's own str hash changes per process)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def id_hashes(ids: list[str]) -> bytes:
    """``id_hash`` of each id, as the bytes of an ``array("Q")``, sorted: a file's hashes
    are only ever used as a multiset (sorted: the same bytes whatever the order of the
    file's events)."""
    done = native.call("id_hashes", ids)
    if done is not None:
        return done
    a = array("Q")
    if sys.byteorder == "little":
        # each digest is already its hash's little-endian bytes: no int in between
        b2 = hashlib.blake2b
        a.frombytes(b"".join([b2(i.encode("utf-8", "surrogatepass"), digest_size=8).digest() for i in ids]))
    else:
        a.extend(map(id_hash, ids))
    return array("Q", sorted(a)).tobytes()


def event_lines(events: list[dict]) -> bytes:
    """The events as JSONL (sorted keys). One dump of the whole list, cut into lines at
    the element boundaries, is ~3x faster than a dump per event. A boundary ``},{"`` can
    appear nowhere else unless an event holds a list of objects (none does today): then
    the count of boundaries is off, and each event is dumped on its own. The compiled
    writer (``scripts/native``) writes the same bytes in one pass."""
    done = native.call("events_jsonl", events)
    if done is not None:
        return done
    body = orjson.dumps(events, option=_DUMPS_OPT)[1:-1]
    if body.count(b'},{"') == len(events) - 1:
        return body.replace(b'},{"', b'}\n{"') + b"\n"
    return b"".join([orjson.dumps(ev, option=_DUMPS_OPT) + b"\n" for ev in events])


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


def _read_prior(pack_dir: str, prior: dict, ids: list[str]) -> dict[str, dict]:
    """A resumed file's earlier events, by id (``ids``: their first-appearance order)."""
    by_id: dict[str, dict] = {}
    for ref in prior["segs"].values():
        for line in read_range(os.path.join(pack_dir, ref[0]), ref[1], ref[2]).splitlines():
            ev = orjson.loads(line)
            by_id[ev["id"]] = ev
    return {i: by_id[i] for i in ids}


def parse_file(source: str, task: tuple, pack_dir: str, bulk: bool = False) -> tuple[FileResult, dict[str, tuple[bytes, int]], bytes]:
    """Parse one file; return its metadata, the JSONL segments of the days to (re)write
    (day -> (bytes, events)) and its bulk line.

    ``task`` is plain data: ``(path, mode, start_offset, next_lineno, state, prior,
    prior_counts, device)`` where ``prior`` is ``{"segs": ..., "bulk": ...}`` of the
    events already parsed from this file (resumed files only). A resumed file rewrites
    only the days its new records touched; ``result.segs`` keeps the others' old ranges.

    A resumed file's earlier events are not read back: the sink is seeded with their ids
    and totals (from the bulk line), which is all deduplication needs. Only when a new
    line replaces an earlier call with a larger copy are the earlier events loaded."""
    path, mode, start, next_lineno, state, prior, prior_counts, device = task
    from scripts import adapters

    adapter = adapters.load(source)
    st = os.stat(path)
    bad: list = []
    prior_bulk = None
    seeds: list[dict] = []
    if prior:
        prior_bulk = orjson.loads(read_range(os.path.join(pack_dir, prior["bulk"][0]), prior["bulk"][1], prior["bulk"][2]))
        prior_ids = unpack_ids(prior_bulk["ids"])
        seeds = [{"id": i, "total_tokens": t} for i, t in zip(prior_ids, prior_bulk["totals"])]
    sink = FileSink(path, seeds, on_bad=lambda p, where, reason: bad.append((p, where, reason)))
    ctx = ParseContext(path=path, device=device, state=dict(state or {}), mtime_ms=st.st_mtime_ns // 1_000_000, bulk=bulk)
    if adapter.resumable:
        with open(path, "rb") as fh:
            if start:
                fh.seek(start)
            data = fh.read()
        complete, partial = split_complete(data)
        parse_complete = getattr(adapter, "parse_complete", None)
        n_lines = None if parse_complete is None else parse_complete(ctx, complete, next_lineno, sink)
        if n_lines is not None:
            next_lineno += n_lines
        else:
            lines = complete_lines(complete)
            adapter.parse_lines(ctx, enumerate(lines, next_lineno), sink)
            next_lineno += len(lines)
            del lines
        end_offset = start + len(complete)
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
    kept = sink.events
    roll = Rollup()
    segments = {}
    if prior and all(kept[seed["id"]] is seed for seed in seeds):
        # only appended calls: earlier days stay as they are, a day with new calls is its
        # old segment (first-appearance order) followed by the new ones
        events = list(kept.values())[len(seeds):]
        roll.add_rows(prior_bulk["rollup"])
        by_day = _by_day(events, roll)
        ids = prior_ids + [ev["id"] for ev in events]
        lines = prior_bulk["lines"] + [ev.get("source_line") or 0 for ev in events]
        totals = prior_bulk["totals"] + [ev["total_tokens"] for ev in events]
        changed = set(by_day)
        kept_segs = {d: list(ref) for d, ref in prior["segs"].items() if d not in changed}
        for day in sorted(changed):
            evs = by_day[day]
            ref = prior["segs"].get(day)
            before = read_range(os.path.join(pack_dir, ref[0]), ref[1], ref[2]) if ref else b""
            segments[day] = (before + event_lines(evs), (ref[3] if ref else 0) + len(evs))
        n_events = len(ids)
    else:
        prior_by_id: dict = {}
        if prior:
            # a call read before was replaced by a larger copy: bring the earlier events in
            prior_by_id = _read_prior(pack_dir, prior, prior_ids)
            placeholders = {id(seed) for seed in seeds}
            kept = {i: (prior_by_id[i] if id(ev) in placeholders else ev) for i, ev in kept.items()}
        events = list(kept.values())
        by_day = _by_day(events, roll)
        ids = [ev["id"] for ev in events]
        lines = [ev.get("source_line") or 0 for ev in events]
        totals = [ev["total_tokens"] for ev in events]
        if prior:
            # the days an added or replaced event is on (and a replaced one was on)
            changed = set()
            for event_id, ev in kept.items():
                before_ev = prior_by_id.get(event_id)
                if before_ev is not ev:
                    changed.add(ev["timestamp"][:10])
                    if before_ev is not None:
                        changed.add(before_ev["timestamp"][:10])
            kept_segs = {d: list(ref) for d, ref in prior["segs"].items() if d not in changed and d in by_day}
        else:
            changed = set(by_day)
            kept_segs = {}
        for day in sorted(changed):
            evs = by_day.get(day)
            if evs:
                segments[day] = (event_lines(evs), len(evs))
        n_events = len(events)
    rollup = roll.rows()
    bulk = orjson.dumps({"ids": pack_ids(ids), "lines": lines, "rollup": rollup, "totals": totals}) + b"\n"
    racy = None
    if time.time_ns() - st.st_mtime_ns < racy_window(st.st_mtime_ns):
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
        n=n_events,
        hashes=id_hashes(ids),
        rollup=marshal.dumps(rollup),
        segs=kept_segs,
        days_changed=sorted(changed),
        bad=bad,
    )
    return result, segments, bulk


def _by_day(events: list[dict], roll: Rollup) -> dict[str, list]:
    """The events by UTC day (first-appearance order within a day), added to ``roll``."""
    done = native.call("rollup_by_day", events, LONG_CONTEXT_THRESHOLDS, SLOT_MS)
    if done is not None:
        by_day, acc = done
        if roll.acc:
            for key, vals in acc.items():
                roll.add_row(list(key) + vals)
        else:
            roll.acc = acc
        return by_day
    add = roll.add_event
    by_day: dict[str, list] = {}
    for ev in events:
        add(ev)
        day = ev["timestamp"][:10]
        lst = by_day.get(day)
        if lst is None:
            by_day[day] = [ev]
        else:
            lst.append(ev)
    return by_day


def parse_shard(job: tuple) -> list[FileResult]:
    """Parse a run of files of one source into one new pack file (in this process)."""
    return list(_parsed_into_pack(job))


MANIFEST_RUN = "manifest"  # a shard's tasks given as (MANIFEST_RUN, manifest path, first, end, device)


def shard_tasks(tasks):
    """A shard's tasks: a list of them, or a run of a source's manifest (a first run:
    every file new, read from the manifest by the worker itself)."""
    if isinstance(tasks, tuple) and tasks[0] == MANIFEST_RUN:
        from itertools import islice

        from scripts.core.sources import ManifestListing

        _, path, first, end, device = tasks
        for file_path, _v in islice(ManifestListing(path).entries(), first, end):
            yield (file_path, "new", 0, 1, {}, None, None, device)
    else:
        yield from tasks


def shard_length(tasks) -> int:
    """How many files a shard's tasks are."""
    return tasks[3] - tasks[2] if isinstance(tasks, tuple) and tasks[0] == MANIFEST_RUN else len(tasks)


def _parsed_into_pack(job: tuple):
    """Each file's result of ``parse_shard`` as it is done; the pack is complete (its size
    final, which ``EventCache.store`` records) only once the last one is."""
    source, pack_dir, pack_name, tasks, bulk_parse = job
    with open(os.path.join(pack_dir, pack_name), "wb") as pack:
        offset = 0
        for task in shard_tasks(tasks):
            res, segments, bulk = parse_file(source, task, pack_dir, bulk_parse)
            for day, (segment, n) in segments.items():
                pack.write(segment)
                res.segs[day] = [pack_name, offset, len(segment), n]
                offset += len(segment)
            res.segs = dict(sorted(res.segs.items()))
            pack.write(bulk)
            res.bulk = [pack_name, offset, len(bulk)]
            offset += len(bulk)
            res.pack()
            yield res


RESULTS_SUFFIX = ".results"


def parse_shard_to_file(job: tuple) -> str:
    """``parse_shard`` in a pool worker: each result goes, marshalled, to a file beside the
    pack as it is done, and only that file's path goes back. Sent as objects, a shard's
    results (~2.8 KB a log file) were held whole by the worker and again, for a shard that
    finishes while the parent folds another source, in the parent's result queue. Named
    like a pack, a file left by a killed run is removed as unreferenced."""
    _source, pack_dir, pack_name, _tasks, _bulk = job
    path = os.path.join(pack_dir, pack_name + RESULTS_SUFFIX)
    with open(path, "wb") as fh:
        for res in _parsed_into_pack(job):
            marshal.dump(res.as_tuple(), fh)
    return path


def results_from_file(path: str):
    """The results ``parse_shard_to_file`` wrote, one at a time; the file is gone once
    opened."""
    with open(path, "rb") as fh:
        os.unlink(path)
        while True:
            try:
                values = marshal.load(fh)
            except EOFError:
                return
            yield FileResult(*values)


class SortedHashes:
    """A sorted run of 64-bit hashes in a file (``store.read(start, end)``: the index it was
    loaded from, or a spill), searched a block at a time through every ``BLOCK``-th
    hash kept in memory: 1/512 of the array (8 bytes a call) it stands for."""

    BLOCK = 512  # hashes in a block (4 KB)

    def __init__(self, store, at: int, n: int, sample: array | None = None):
        self.store = store
        self.at = at
        self.n = n
        self.sample = sample if sample is not None else self._sample()
        self._last = (-1, array("Q"))  # the block read last (sorted lookups reuse it)

    @classmethod
    def written(cls, spill: "Spill", chunks) -> "SortedHashes":
        """``chunks`` (sorted arrays, each after the one before) appended to ``spill``, one
        after another: the run never whole in memory."""
        at = spill.size
        n = 0
        sample = array("Q")
        for chunk in chunks:
            sample.extend(chunk[(-n) % cls.BLOCK::cls.BLOCK])  # every BLOCK-th of the whole run
            with memoryview(chunk) as view, view.cast("B") as raw:
                spill.append(raw)
            n += len(chunk)
        return cls(spill, at, n, sample)

    def _sample(self) -> array:
        sample = array("Q")
        step = self.BLOCK * 64
        for i in range(0, self.n, step):
            sample.extend(self.slice(i, min(self.n, i + step))[::self.BLOCK])
        return sample

    def __len__(self) -> int:
        return self.n

    def slice(self, start: int, end: int) -> array:
        a = array("Q")
        if end > start:
            a.frombytes(self.store.read(self.at + 8 * start, self.at + 8 * end))
        return a

    def _block(self, j: int) -> array:
        if self._last[0] != j:
            self._last = (j, self.slice(j * self.BLOCK, min(self.n, (j + 1) * self.BLOCK)))
        return self._last[1]

    def rank(self, h: int, right: bool = False) -> int:
        """``bisect_left`` (``bisect_right`` if ``right``) of the whole run."""
        j = max((bisect_right if right else bisect_left)(self.sample, h) - 1, 0)
        block = self._block(j)
        return j * self.BLOCK + (bisect_right if right else bisect_left)(block, h)

    def count(self, h: int) -> int:
        return self.rank(h, True) - self.rank(h)

    def pieces(self, start: int = 0, end: int | None = None):
        """The bytes of hashes ``start:end``, 64 KB at a time."""
        end = self.n if end is None else end
        for i in range(start, end, 8192):
            yield self.store.read(self.at + 8 * i, self.at + 8 * min(end, i + 8192))


class _InMemory:
    """An array seen as a ``SortedHashes`` (what a first run builds, and tests)."""

    def __init__(self, a: array):
        self.a = a

    def __len__(self) -> int:
        return len(self.a)

    def rank(self, h: int, right: bool = False) -> int:
        return (bisect_right if right else bisect_left)(self.a, h)

    def count(self, h: int) -> int:
        return bisect_right(self.a, h) - bisect_left(self.a, h)

    def pieces(self, start: int = 0, end: int | None = None):
        yield memoryview(self.a)[start:end].cast("B")


class HashIndex:
    """Every kept event id's 64-bit hash, as a multiset: a sorted base plus a small
    sorted list of additions and a count of removals, merged into the next base when
    they grow (``write_index``). Only counts are kept (no owner), so it answers "is this
    id held anywhere else?" without keeping every id in memory: the base is a
    ``SortedHashes`` in the index file (a later run) or in the run's spill (a first run
    sorts every call's hash straight into it, ``event_merge.fold_changes``), or an array."""

    def __init__(self, base=None, added: list | None = None, removed: dict | None = None):
        if base is None:
            base = array("Q")
        self.base = _InMemory(base) if isinstance(base, array) else base
        self.added = added or []
        self.removed: dict[int, int] = removed or {}

    def count(self, h: int) -> int:
        added = self.added
        n = self.base.count(h)
        if added:
            n += bisect_right(added, h) - bisect_left(added, h)
        return n - self.removed.get(h, 0)

    def present(self, hashes: array) -> list[int]:
        """Those of ``hashes`` (sorted) counted at least once: in order, so the base's
        blocks are each read once at most."""
        return [h for h in hashes if self.count(h) > 0]

    def remove(self, hashes) -> None:
        removed = self.removed
        for h in hashes:
            removed[h] = removed.get(h, 0) + 1

    def add(self, hashes) -> None:
        """Add ``hashes`` (an ``array('Q')`` is taken as sorted already, and over)."""
        new = hashes if isinstance(hashes, array) else sorted(hashes)
        if not new:
            return
        if not len(self.base) and not self.added and not self.removed:
            self.base = _InMemory(new if isinstance(new, array) else array("Q", new))  # a first build: straight into the base
        else:
            self.added = sorted(self.added + list(new)) if self.added else list(new)

    def __len__(self) -> int:
        return len(self.base) + len(self.added) - sum(self.removed.values())

    def needs_merge(self) -> bool:
        """Whether the next index gets the additions and removals merged into its base."""
        return len(self.added) + len(self.removed) > max(1000, len(self.base) // 20)

    def merged_pieces(self):
        """The bytes of the base with the additions and removals merged in: the base's
        runs between the hashes they touch are copied as they are."""
        base = self.base
        done = 0  # base hashes copied so far
        counts: dict[int, int] = {}
        for h in self.added:
            counts[h] = counts.get(h, 0) + 1
        for h, r in self.removed.items():
            counts[h] = counts.get(h, 0) - r
        for h in sorted(counts):
            lo, hi = base.rank(h), base.rank(h, True)
            yield from base.pieces(done, lo)
            n = max(0, hi - lo + counts[h])
            if n:
                yield array("Q", [h] * n).tobytes()
            done = hi
        yield from base.pieces(done)


class MergedState:
    """What a source's files add up to, kept between runs so a run touches only the
    sessions the changed files hold, in the index database (``parse_index``):

    - ``rows``: the merged slot rollup (what rollups/<source>.json holds), by session:
      its first slot and its rows marshalled, read back a few sessions at a time in
      order of first slot (``sorted_chunks``);
    - ``session_files``: session id -> the file numbers holding events of it;
    - ``hashes``: a HashIndex of every kept event id, to see copies across files (its
      base in a ``hashes-<n>.bin`` file beside the index, or this run's ``spill``);
    - ``dup_holders``: for ids known to sit in several files, those files' numbers."""

    def __init__(self, db: IndexDB | None = None, spill_dir: str | None = None):
        self.db = db if db is not None else IndexDB(None)
        self.rows = SessionRows(self.db)
        self.session_files = KeyedBlobs(self.db, "session_files")
        self.hashes = HashIndex()
        self.dup_holders = KeyedBlobs(self.db, "dup_holders")
        self.spill = Spill(spill_dir, limit=1 << 16)
        self.spill_dir = spill_dir

    def clear(self) -> None:
        """Nothing merged (FORCE recomputes it all)."""
        self.rows.clear()
        self.session_files.clear()
        self.dup_holders.clear()
        self.hashes = HashIndex()

    def set_session(self, session: str, acc: dict[tuple, list]) -> None:
        """A session's merged rows, from a Rollup's accumulator (none: the session goes)."""
        if acc:
            self.rows.put(session, min(k[0] for k in acc), marshal.dumps([list(k) + v for k, v in acc.items()]))
        else:
            self.rows.pop(session)

    def sorted_chunks(self, chunk: int = 128, wait_rows: int | None = None):
        """Every merged row in rollup order (by key, the slot first), as sorted lists.

        The sessions are unpacked in order of their first slot; a row whose slot comes
        before the next session's first one is final (no later session reaches back to
        it), so those rows go out, sorted, whenever enough are waiting. Only the rows of
        the sessions around one moment are ever unpacked at once, and of the rows that
        must wait (a session resumed long after it began: its later rows wait for the
        walk to reach them) no more than ``wait_rows`` (WAIT_ROWS) in memory: the rest
        wait in sorted runs in a temp file (``_WaitingRuns``)."""
        wait_rows = WAIT_ROWS if wait_rows is None else wait_rows
        waiting: list[list] = []
        runs = _WaitingRuns(self.spill_dir)
        limit = chunk
        for first, blob in self.rows.by_first():
            if len(waiting) >= limit:
                ready = [r for r in waiting if r[0] < first]
                if ready or runs.before(first):
                    waiting = [r for r in waiting if r[0] >= first]
                    yield from _chunked(heapq.merge(_sorted(ready), *runs.take_before(first), key=_row_sort_key), chunk)
                if len(waiting) > wait_rows:
                    runs.add(_sorted(waiting))
                    waiting = []
                # long sessions' rows that must wait: look again only once as many came
                limit = max(chunk, 2 * len(waiting))
            waiting += marshal.loads(blob)
        if runs.runs:
            yield from _chunked(heapq.merge(_sorted(waiting), *runs.take_before(None), key=_row_sort_key), chunk)
        elif waiting:
            yield _sorted(waiting)
        runs.close()


WAIT_ROWS = 4096  # rows waiting for the walk of the merged rows kept in memory at most


def _chunked(rows, n: int):
    """Lists of ``n`` of ``rows`` (the last one shorter), in order."""
    out: list = []
    for row in rows:
        out.append(row)
        if len(out) >= n:
            yield out
            out = []
    if out:
        yield out


class _WaitingRuns:
    """Merged rows that wait for the walk to reach their slot, past WAIT_ROWS of them:
    sorted runs in a temp file (``sorted_runs.RunFile``), read back a block at a time as
    the walk reaches them. A user who resumes old sessions (Claude Code and Codex append
    to the session's file) leaves rows far ahead of their sessions' first slot: they
    never wait in memory all at once. Every FAN_IN runs of a size are merged into one (a
    run per level, as a log-structured merge does), so that the runs, each with a block
    in memory, stay few: FAN_IN a level, a level per FAN_IN-fold more rows."""

    FAN_IN = 8
    BLOCK = 32  # rows a run is read back at a time (a row is ~0.3 KB as objects)

    def __init__(self, directory: str | None):
        self.file = RunFile(directory, self.BLOCK)
        self.runs: list = []  # per run: [its rows as read (an iterator), the next one (None: no more), level]

    def add(self, rows, level: int = 0) -> None:
        """A sorted run of rows (an iterable, written a block at a time)."""
        blocks = self.file.write(rows)
        it = iter(list(rows)) if blocks is None else self.file.read(blocks)  # no temp file: they wait in memory
        self.runs.append([it, next(it, None), level])
        same = [run for run in self.runs if run[2] == level]
        if len(same) >= self.FAN_IN:
            self.runs = [run for run in self.runs if run[2] != level]
            self.add(heapq.merge(*(self._take(run, None) for run in same), key=_row_sort_key), level + 1)

    def before(self, first) -> bool:
        """Whether a run holds a row of a slot before ``first``."""
        return any(run[1] is not None and run[1][0] < first for run in self.runs)

    def take_before(self, first):
        """Per run, an iterator of its rows of slots before ``first`` (None: all), in
        order; taken as they are read."""
        return [self._take(run, first) for run in self.runs]

    @staticmethod
    def _take(run, first):
        while run[1] is not None and (first is None or run[1][0] < first):
            row = run[1]
            run[1] = next(run[0], None)
            yield row

    def close(self) -> None:
        self.file.close()


def _sorted(rows: list[list]) -> list[list]:
    try:
        # compared as plain lists (in C): the keys decide (they are unique), in the same
        # order as _row_sort_key's whenever no project is None (then it raises, and that
        # runs)
        rows.sort()
    except TypeError:
        rows.sort(key=_row_sort_key)
    return rows


def _row_sort_key(row: list):
    return (row[0], row[1], row[2], row[3] or "", row[4], row[5], row[6])


def _days_of(entry: dict):
    """The days an index entry holds events of."""
    return location(entry)[0].keys()


class EventCache:
    """One source's index and pack files. One writer at a time (the normalize run)."""

    def __init__(self, directory: str, source: str, adapter_version: str, device: str = ""):
        self.dir = directory
        self.device = device
        self.source = source
        self.adapter_version = adapter_version
        self.index_path = os.path.join(directory, INDEX_NAME)
        self.db = IndexDB(directory)
        self.files = FileTable(self.db, _days_of)
        self.packs: dict[str, int] = {}
        self.next_pack = 0
        self.next_fno = 0
        self.merged = MergedState(self.db, directory)
        self.hashes_file: str | None = None  # the hash base's file, as loaded
        self._loaded_base = None
        self.invalidated_all = False

    # -- load / save -----------------------------------------------------------
    def load(self, force: bool = False) -> None:
        existed = os.path.exists(self.index_path) or any(os.path.exists(os.path.join(self.dir, n)) for n in LEGACY_INDEX_NAMES)
        meta = self.db.open()  # None: none there, or not one this code can trust
        ok = meta is not None and all(meta.get(k) == v for k, v in self._identity().items())
        if ok:
            packs = read_packs(self.db.con)
            name, n, added, removed = marshal.loads(meta["hashes"])
            ok = all(_size(os.path.join(self.dir, p)) == size for p, size in packs.items()) and (
                name is None or _size(os.path.join(self.dir, name)) == 8 * n)
        if existed and not ok:
            self.invalidated_all = True  # rebuilt, counted as invalidate
        if ok:
            self.packs = packs
            self.next_pack = meta["next_pack"]
            self.next_fno = meta["next_fno"]
            self.hashes_file = name
            if force:
                # FORCE re-reads every file that exists and recomputes everything, but
                # the events of logs their tool deleted live only here: those are kept
                self.merged.clear()
                self.db.con.execute("UPDATE files SET dropped = NULL")
            elif name is not None:
                fh = open(os.path.join(self.dir, name), "rb")
                self._loaded_base = SortedHashes(FileAt(fh), 0, n)
                self.merged.hashes = HashIndex(self._loaded_base, added, removed)
        else:
            if meta is not None and isinstance(meta.get("next_pack"), int):
                self.next_pack = meta["next_pack"]
            self.db.fresh()
        self._remove_unreferenced()

    def _identity(self) -> dict:
        """What an index must have been written for to be used."""
        return {"cache_version": CACHE_VERSION, "python": PYTHON, "adapter_version": self.adapter_version, "source": self.source,
                "device": self.device}

    def save(self) -> None:
        """Commit the run's changes (the index is then this run's, whole)."""
        os.makedirs(self.dir, exist_ok=True)
        h = self.merged.hashes
        merge = h.needs_merge()
        if merge or h.base is not self._loaded_base:
            # a new base: the additions and removals merged in, or this run's (a first run)
            name = f"hashes-{self.next_pack:06d}.bin"
            self.next_pack += 1
            n = 0
            with AtomicFile(os.path.join(self.dir, name)) as fh:
                for part in h.merged_pieces() if merge else h.base.pieces():
                    fh.write(part)
                    n += len(part)
            hashes = (name, n // 8, [], {})
        else:
            hashes = (self.hashes_file, len(h.base), h.added, h.removed)
        con = self.db.con
        put_meta(con, {**self._identity(), "next_pack": self.next_pack, "next_fno": self.next_fno, "hashes": marshal.dumps(hashes)})
        write_packs(con, self.packs)
        self.db.commit()
        self.hashes_file = hashes[0]
        for name in LEGACY_INDEX_NAMES:
            remove_if_present(os.path.join(self.dir, name))
        self._remove_unreferenced()

    def close(self) -> None:
        """Let go of the index and the files the merged state is read from (after
        ``save``: the cache is not used again)."""
        self.merged.spill.close()
        if self._loaded_base is not None:
            self._loaded_base.store.fh.close()
            self._loaded_base = None
        self.db.close()

    def _remove_unreferenced(self) -> None:
        try:
            names = os.listdir(self.dir)
        except OSError:
            return
        for name in names:
            if (name.startswith("pack-") and name not in self.packs) or (name.startswith("hashes-") and name != self.hashes_file):
                try:
                    os.unlink(os.path.join(self.dir, name))
                except OSError:
                    pass

    # -- planning ---------------------------------------------------------------
    def plan(self, current, resumable: bool, force: bool, sizes: list | None = None):
        """Decide per file: skip, resume at offset, or (re)read whole.

        ``current``: (path, (size, mtime_ns, ino, side)) of the files that exist now, in
        path order (or a dict of them), walked beside the index's files. Returns
        ``(tasks, stats)``; a task is ``(path, mode, start, next_lineno, state, prior,
        prior_counts)``; ``sizes`` (a list) gets each task's file size now."""
        tasks = []
        stats = {"hit": 0, "miss": 0, "resumed": 0, "invalidate": 0, "deleted": 0}
        if sizes is None:
            sizes = []
        indexed = self.files.items()
        ahead = next(indexed, None)  # the index's next file
        for path, (size, mtime_ns, ino, side) in sorted(current.items()) if isinstance(current, dict) else current:
            while ahead is not None and ahead[0] < path:
                self._gone(*ahead, stats)
                ahead = next(indexed, None)
            entry = None
            if ahead is not None and ahead[0] == path:
                entry = ahead[1]
                ahead = next(indexed, None)
            if entry is None or force:
                tasks.append((path, "new" if entry is None else "reread", 0, 1, {}, None, None))
                sizes.append(size)
                stats["miss" if entry is None else "invalidate"] += 1
                continue
            if entry.get("deleted"):
                self.files.set_columns(path, deleted=None)  # back again
            same = (
                entry["size"] == size and entry["mtime_ns"] == mtime_ns and entry["ino"] == ino and entry.get("side", "") == side
            )
            if same and entry.get("racy_hash"):
                try:
                    with open(path, "rb") as fh:
                        same = _hash_bytes(fh.read()) == entry["racy_hash"]
                except OSError:
                    same = False
                if same and time.time_ns() - mtime_ns >= racy_window(mtime_ns):
                    self.files.set_columns(path, racy_hash=None)  # verified, and its mtime can no longer lie
            if same:
                stats["hit"] += 1
                continue
            end_offset, next_lineno, head_hash, state = resume_point(entry)
            grew = resumable and entry["ino"] == ino and size >= end_offset and end_offset > 0 and _head_unchanged(path, head_hash)
            if grew:
                segs, bulk = location(entry)
                tasks.append((path, "resumed", end_offset, next_lineno, state, {"segs": segs, "bulk": bulk}, tally(entry)[0]))
                stats["resumed"] += 1
            else:
                tasks.append((path, "reread", 0, 1, {}, None, None))
                stats["invalidate"] += 1
            sizes.append(size)
        while ahead is not None:
            self._gone(*ahead, stats)
            ahead = next(indexed, None)
        return tasks, stats

    def _gone(self, path: str, entry: dict, stats: dict) -> None:
        """A file in the index that is not there now: its tool deleted it (kept)."""
        if not entry.get("deleted"):
            self.files.set_columns(path, deleted=1)
        stats["deleted"] += 1

    def new_pack_name(self) -> str:
        name = f"pack-{self.next_pack:06d}.jsonl"
        self.next_pack += 1
        return name

    def pack_path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def read_bulk(self, entry: dict) -> dict:
        pack, offset, length = location(entry)[1]
        return orjson.loads(read_range(self.pack_path(pack), offset, length))

    def read_events(self, entry: dict) -> list[dict]:
        """A file's events, day by day."""
        out = []
        for pack, offset, length, _n in location(entry)[0].values():
            out += [orjson.loads(line) for line in read_range(self.pack_path(pack), offset, length).splitlines()]
        return out

    # -- applying results ---------------------------------------------------------
    def store(self, res: FileResult, side: str = "") -> dict | None:
        """Record a parsed file; return its previous entry (None if it is new)."""
        for pack in {ref[0] for ref in res.segs.values()} | {res.bulk[0]}:
            if pack not in self.packs:
                self.packs[pack] = _size(self.pack_path(pack))
        # an index built from nothing this run holds each file once at most: not looked up
        old = self.files.get(res.path) if self.db.building is None else None
        if old is not None:
            fno = old["fno"]
        else:
            fno = self.next_fno
            self.next_fno += 1
        res.pack()
        packed_tally = res.tally
        if res.mode == "resumed" and old is not None:
            # a resumed parse saw only the new lines: the earlier lines' versions still count
            counts, new_versions = marshal.loads(res.tally)
            versions = dict(tally(old)[1])
            for v, n in new_versions.items():
                versions[v] = versions.get(v, 0) + n
            packed_tally = marshal.dumps((counts, dict(sorted(versions.items()))))
        entry = {
            "fno": fno,
            "size": res.size,
            "mtime_ns": res.mtime_ns,
            "ino": res.ino,
            "packed": pack_entry(res.segs, res.bulk, res.n, packed_tally, res.resume),
        }
        if side:
            entry["side"] = side
        if res.racy_hash:
            entry["racy_hash"] = res.racy_hash
        if old is not None and old.get("dropped"):
            entry["dropped"] = old["dropped"]  # re-decided by the caller
        self.files.put(res.path, entry, old)
        res.fno = fno
        return old

    def forget_deleted(self) -> list[tuple[str, dict]]:
        gone = list(self.files.items("deleted IS NOT NULL"))
        for p, e in gone:
            self.files.remove(p, e)
        return gone

    def collect(self) -> bool:
        """Drop packs nothing refers to; compact when dead bytes outweigh live ones.

        Compaction rewrites every live segment, by day then path, then every bulk line,
        into one new pack (which also makes assembling a day's file one sequential copy)."""
        live: dict[str, int] = {}
        for (packed,) in self.files.column("packed"):
            segs, bulk = location({"packed": packed})
            for ref in (*segs.values(), bulk):
                live[ref[0]] = live.get(ref[0], 0) + ref[2]
        for name in list(self.packs):
            if name not in live:
                del self.packs[name]
        total = sum(self.packs.values())
        if total <= 2 * sum(live.values()) + (1 << 20):
            return False
        name = self.new_pack_name()
        with open(self.pack_path(name), "wb") as dst:
            # each entry is put back as its segments move (never all entries at once)
            for day, path in self.files.day_pairs():
                segs, bulk, n, packed_tally, resume = marshal.loads(self.files[path]["packed"])
                ref = segs[day]
                data = read_range(self.pack_path(ref[0]), ref[1], ref[2])
                ref[:3] = [name, dst.tell(), len(data)]
                dst.write(data)
                self.files.set_columns(path, packed=pack_entry(segs, bulk, n, packed_tally, resume))
            for path, e in self.files.items():
                segs, bulk, n, packed_tally, resume = marshal.loads(e["packed"])
                data = read_range(self.pack_path(bulk[0]), bulk[1], bulk[2])
                self.files.set_columns(path, packed=pack_entry(segs, [name, dst.tell(), len(data)], n, packed_tally, resume))
                dst.write(data)
        self.packs = {name: _size(self.pack_path(name))}
        return True


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def pack_entry(segs: dict, bulk: list, n: int, packed_tally: bytes, resume: bytes) -> bytes:
    """An entry's ``packed``: where its day segments (day -> [pack, offset, length, n])
    and its bulk line ([pack, offset, length]) are, its events, and its ``tally`` and
    ``resume_point`` (each marshalled already), marshalled: ~250 bytes, not ~800 as a
    dict of lists, ints and strings (days and pack names interned, marshal keeps them so)."""
    segs = {intern(day): [intern(ref[0]), *ref[1:]] for day, ref in segs.items()}
    return marshal.dumps((segs, [intern(bulk[0]), *bulk[1:]], n, packed_tally, resume))


def unpack_entry(entry: dict) -> tuple[dict, list, int, tuple[dict, dict]]:
    """An index entry's ``(segs, bulk, events, (counts, versions))``: all a run reads of
    every file, in one decoding."""
    segs, bulk, n, packed_tally, _resume = marshal.loads(entry["packed"])
    return segs, bulk, n, marshal.loads(packed_tally)


def location(entry: dict) -> tuple[dict, list]:
    """An index entry's ``(segs, bulk)``."""
    segs, bulk, *_ = marshal.loads(entry["packed"])
    return segs, bulk


def tally(entry: dict) -> tuple[dict, dict]:
    """An index entry's ``(counts, versions)``: its records by outcome and the source
    versions its lines named."""
    return marshal.loads(marshal.loads(entry["packed"])[3])


def resume_point(entry: dict) -> tuple[int, int, str, dict]:
    """An index entry's ``(end_offset, next_lineno, head_hash, state)``: where its parse
    stopped (after the last complete line), the hash of its first bytes, and the
    adapter's state there."""
    return marshal.loads(marshal.loads(entry["packed"])[4])


def _head_unchanged(path: str, want: str) -> bool:
    if not want:
        return False
    try:
        return file_head_hash(path) == want
    except OSError:
        return False


def resolve_copies(holders: dict[str, list[tuple[str, int, int]]]) -> dict[str, set]:
    """Which copies of ids held by several files are dropped: per id, the copy with the
    largest total is kept, ties to the first file (path order) and line.

    ``holders`` maps id -> [(path, total, line), ...]; returns path -> ids dropped."""
    losers: dict[str, set] = {}
    for event_id, copies in holders.items():
        if len({p for p, _, _ in copies}) < 2:
            continue
        winner = min(copies, key=lambda c: (-c[1], c[0], c[2]))[0]
        for path, _, _ in copies:
            if path != winner:
                losers.setdefault(path, set()).add(event_id)
    return losers
