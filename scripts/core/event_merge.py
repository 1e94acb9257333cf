"""Fold a run's changed files into a source's merged state, touching only what they touch.

After normalize parsed the files that changed (new, grown, re-read) and dropped the ones
``forget`` removes, this brings ``EventCache.merged`` and the per-file ``dropped`` lists
up to date:

1. the id-hash multiset loses the changed files' old ids and gains their new ones;
2. ids that now sit in more than one file — found by hash, then confirmed by id — are
   re-decided (the copy with the largest usage total is kept, ties to the first file by
   path, then line); every file whose dropped list changes is affected too;
3. the merged rollup is recomputed for exactly the sessions the affected files hold,
   from every file holding those sessions.

The result equals merging every file from scratch (tests/test_cache.py checks it byte for
byte against FORCE=1), at a cost that follows the change: only the bulk lines of the
changed files (and of files sharing a session or an id with them) are read. Finding
which *unchanged* file holds a newly copied id is the one case that reads every bulk.

Memory: the parse results wait for the fold in a spill (``ResultSpill``: each file's
rollup and hashes, read back when folded); the merged state is in the index database.
What a fold holds is per changed file and per session it touches. An index built from
nothing (a first run: every file changed, every session touched) is folded by
``fold_fresh`` instead, from a log of the results walked a few times (``FreshLog``): it
holds nothing per file or session, and sorts every call's hash a 64th of the range at a
time (``_sorted_runs_spilled``) straight into the merged state's spill.
"""
from __future__ import annotations

import marshal
from array import array
from bisect import bisect_left
from itertools import islice
from operator import eq

from scripts.core.event_cache import I_SESSION, EventCache, FileResult, SortedHashes, id_hash, id_hashes, resolve_copies, unpack_ids
from scripts.core.rollup import Rollup, rollup_events
from scripts.core.view_cache import Spill


def _sessions(rows) -> set[str]:
    return {r[I_SESSION] for r in rows}


def _rollup_of(res) -> list:
    """A parse result's rollup rows (``Parsed`` keeps them marshalled)."""
    rows = res.rollup
    return marshal.loads(rows) if rows.__class__ is bytes else rows


class Parsed:
    """What folding needs of a parse result once the cache has stored it: its rollup
    (marshalled) and its ids' hashes, kept in a ``ResultSpill`` until the fold reads them
    (a first run holds one per log file until every file of the source is parsed)."""

    __slots__ = ("spill", "at", "n_rollup", "n_hashes")

    def __init__(self, spill: "ResultSpill", at: int, n_rollup: int, n_hashes: int):
        self.spill = spill
        self.at = at
        self.n_rollup = n_rollup
        self.n_hashes = n_hashes

    @property
    def rollup(self) -> bytes:
        return self.spill.read(self.at, self.at + self.n_rollup)

    @property
    def hashes(self) -> bytes:
        return self.spill.read(self.at + self.n_rollup, self.at + self.n_rollup + self.n_hashes)

    @hashes.setter
    def hashes(self, value: bytes) -> None:
        if value:
            raise ValueError("a Parsed result's hashes are only used up")
        self.n_hashes = 0


class ResultSpill(Spill):
    """Parse results' rollups and hashes one after another, in an unnamed temp file once
    past 256 KB: a first run's (~2 KB a log file, 7 MB a source at 400k calls) were all
    held until the source's fold."""

    def keep(self, res: FileResult) -> Parsed:
        """``res``'s rollup and hashes, kept; what reads them back."""
        return Parsed(self, self.append(res.rollup, res.hashes), len(res.rollup), len(res.hashes))


class FreshLog(Spill):
    """An index built from nothing (a first run): each parsed file's path, number,
    rollup and id hashes, one record after another (in an unnamed temp file once past
    256 KB), read back by walking it (``records``) — no object per file is held until the
    fold (``fold_fresh``)."""

    n_hashes = 0  # calls kept
    CHUNK = 1 << 16  # bytes read at a time by a walk

    def keep(self, res: FileResult) -> None:
        self.n_hashes += len(res.hashes) // 8
        rec = marshal.dumps((res.path, res.fno, res.rollup, res.hashes))
        self.append(len(rec).to_bytes(8, "little"), rec)

    def records(self):
        """``(path, fno, rollup marshalled, hashes)`` of every file kept, in order."""
        at, buf, buf_at = 0, memoryview(b""), 0
        while at < self.size:
            if at + 8 > buf_at + len(buf):
                buf, buf_at = memoryview(self.read(at, min(self.size, at + self.CHUNK))), at
            end = at + 8 + int.from_bytes(buf[at - buf_at:at - buf_at + 8], "little")
            if end > buf_at + len(buf):
                buf, buf_at = memoryview(self.read(at, min(self.size, max(end, at + self.CHUNK)))), at
            yield marshal.loads(buf[at + 8 - buf_at:end - buf_at])
            at = end


def fold_fresh(cache: EventCache, log: FreshLog) -> None:
    """The merged state of an index built from nothing, from every file's record in
    ``log``: what ``fold_changes`` computes when every file is new, walking the records
    (a few times) instead of holding a result, a session set and a session's file list per
    file. A session's rows are summed as its files come (one file each, mostly)."""
    m = cache.merged
    files = _Files(cache, {})

    def arrays():
        for _path, _fno, _rollup, hashes in log.records():
            a = array("Q")
            a.frombytes(hashes)
            yield a

    # 1. every call's hash, sorted straight into the spill (8 bytes a call), never whole;
    # a hash met twice is an id some two files hold (a file's own copies are gone)
    repeated: set[int] = set()
    m.hashes.base = SortedHashes.written(m.spill, _sorted_runs_spilled(arrays(), repeated, m.spill.dir))

    # 2. those ids: the copy with the largest total is kept (resolve_copies)
    losers: dict[str, set] = {}
    if repeated:
        holders: dict[str, list[tuple[str, int, int]]] = {}
        for path, _fno, _rollup, hashes in log.records():
            a = array("Q")
            a.frombytes(hashes)
            if not repeated.isdisjoint(a):
                for i, t, ln in files.holdings(path, repeated):
                    holders.setdefault(i, []).append((path, t, ln))
        losers = resolve_copies(holders)
        for path, ids in losers.items():
            cache.files.set_columns(path, dropped=sorted(ids))
            files.with_drops.add(path)
        for event_id, copies in holders.items():
            paths = {p for p, _, _ in copies}
            if len(paths) > 1:
                m.dup_holders[event_id] = sorted(cache.files[p]["fno"] for p in paths)

    # 3. each session's rows, summed over the files holding it
    for path, fno, rollup, _hashes in log.records():
        rows = marshal.loads(rollup)
        # every session the file holds counts it (as in fold_changes), even one whose
        # only calls here are copies kept elsewhere
        by_session: dict[str, list] = {r[I_SESSION]: [] for r in rows}
        if path in files.with_drops:
            rows = files.effective_rows(path)
        for r in rows:
            by_session[r[I_SESSION]].append(r)
        for session, session_rows in by_session.items():
            acc = Rollup()
            if not m.session_files.add_new(session, [fno]):
                # a session met in an earlier file: its rows so far and this file's
                acc.add_rows(marshal.loads(m.rows.get(session) or marshal.dumps([])))
                m.session_files[session] = sorted(set(m.session_files[session]) | {fno})
            acc.add_rows(session_rows)
            m.set_session(session, acc.acc)


class _Files:
    """Per-file data read on demand and kept for this run (bulk lines, effective rows)."""

    def __init__(self, cache: EventCache, fresh: dict[str, FileResult]):
        self.cache = cache
        self.fresh = fresh
        self._bulk: dict[str, dict] = {}
        self.with_drops: set[str] = set()  # the files that have dropped copies (once decided)

    def bulk(self, path: str) -> dict:
        b = self._bulk.get(path)
        if b is None:
            b = self._bulk[path] = self.cache.read_bulk(self.cache.files[path])
        return b

    def holdings(self, path: str, wanted: set[int]) -> list[tuple[str, int, int]]:
        """(id, total, line) of this file's events whose id hash is in ``wanted``. Its bulk
        line is not kept: a first run with copies across files looks through every file's."""
        b = self._bulk.get(path) or self.cache.read_bulk(self.cache.files[path])
        out = []
        for i, t, ln in zip(unpack_ids(b["ids"]), b["totals"], b["lines"]):
            if id_hash(i) in wanted:
                out.append((i, t, ln))
        return out

    def effective_rows(self, path: str) -> list:
        """The file's rollup without the events dropped as copies kept elsewhere."""
        if path in self.with_drops:
            entry = self.cache.files[path]
            drop = set(entry["dropped"])
            return rollup_events(ev for ev in self.cache.read_events(entry) if ev["id"] not in drop)
        res = self.fresh.get(path)
        return _rollup_of(res) if res is not None else self.bulk(path)["rollup"]


class _Kept:
    """A file not re-read (its log was deleted) standing in for a parse result, from its
    bulk line: what a from-scratch rebuild (FORCE=1) folds in for it."""

    def __init__(self, bulk: dict):
        self.rollup = bulk["rollup"]
        self.hashes = id_hashes(unpack_ids(bulk["ids"]))


def kept_as_results(cache: EventCache, paths) -> list[tuple[str, None, _Kept]]:
    return [(p, None, _Kept(cache.read_bulk(cache.files[p]))) for p in paths]


def fold_changes(cache: EventCache, changed: list[tuple[str, dict | None, FileResult | None]]) -> None:
    """``changed``: (path, previous entry or None, new result or None if forgotten); the
    results' ``hashes`` are used up."""
    if not changed:
        return
    m = cache.merged
    fresh = {p: r for p, _, r in changed if r is not None}
    files = _Files(cache, fresh)
    affected_sessions: set[str] = set()
    changed_fnos: set[int] = set()
    session_sets = _SessionSets(m.session_files)

    # 1. the changed files' old contributions go, their new ones come
    for path, old, res in changed:
        if old is not None:
            fno = old["fno"]
            old_bulk = cache.read_bulk(old)
            m.hashes.remove(id_hash(i) for i in unpack_ids(old_bulk["ids"]))
            for s in _sessions(old_bulk["rollup"]):
                session_sets.discard(s, fno)
                affected_sessions.add(s)
        if res is not None:
            fno = cache.files[path]["fno"]
            for s in _sessions(_rollup_of(res)):
                session_sets.add(s, fno)
                affected_sessions.add(s)
        changed_fnos.add(fno)

    # 2. ids held by more than one file
    candidates: set[int] = set()

    def new_hashes():
        # one file's array at a time (a first run adds every call's)
        for res in fresh.values():
            a = array("Q")
            a.frombytes(res.hashes)
            yield a

    if not len(m.hashes.base) and not m.hashes.added and not m.hashes.removed:
        # a first build: sorted straight into the spill (8 bytes a call), never whole
        repeated: set[int] = set()
        m.hashes.base = SortedHashes.written(m.spill, _sorted_runs_spilled(new_hashes(), repeated, m.spill.dir))
    else:
        all_new, repeated = _sorted_hashes(new_hashes())
        candidates.update(m.hashes.present(all_new))  # sorted: each block of the base read once
        m.hashes.add(all_new)
        del all_new
    for res in fresh.values():
        res.hashes = b""  # used up
    candidates |= repeated

    holders: dict[str, list[tuple[str, int, int]]] = {}
    if candidates:
        holders_count: dict[int, int] = {}
        for path in fresh:
            for i, t, ln in files.holdings(path, candidates):
                holders.setdefault(i, []).append((path, t, ln))
                holders_count[id_hash(i)] = holders_count.get(id_hash(i), 0) + 1
        if any(m.hashes.count(h) > holders_count.get(h, 0) for h in candidates):
            # some copy sits in a file that did not change: find it (reads every bulk)
            for path in sorted(cache.files):
                if path not in fresh:
                    for i, t, ln in files.holdings(path, candidates):
                        holders.setdefault(i, []).append((path, t, ln))
    # ids already known to be copied whose holders include a changed file
    for event_id, fnos in list(m.dup_holders.items()):
        if event_id in holders or not changed_fnos.intersection(fnos):
            continue
        wanted = {id_hash(event_id)}
        for fno in fnos:
            path = cache.files.path_of(fno)
            if path is not None and path not in fresh:
                for i, t, ln in files.holdings(path, wanted):
                    if i == event_id:
                        holders.setdefault(i, []).append((path, t, ln))
        for path in fresh:
            for i, t, ln in files.holdings(path, wanted):
                if i == event_id:
                    holders.setdefault(i, []).append((path, t, ln))
        holders.setdefault(event_id, [])

    # 3. re-decide those ids; a file whose dropped list changes is affected
    losers = resolve_copies(holders)
    touched_paths: set[str] = set(fresh)
    redecided = set(holders)
    # only a file with copies dropped before, or losing one now, can change
    with_drops = dict(cache.files.items("dropped IS NOT NULL"))
    for path in sorted(with_drops.keys() | losers.keys()):
        entry = with_drops.get(path) or cache.files.get(path)
        if entry is None:
            continue
        before = set(entry.get("dropped", ()))
        after = (before - redecided) | losers.get(path, set())
        if path in fresh and after:
            # a re-parsed file's old decisions about ids it no longer holds are void
            after &= set(_ids_of(files, path))
        if after != before:
            cache.files.set_columns(path, dropped=sorted(after) if after else None)
            touched_paths.add(path)
        if after:
            files.with_drops.add(path)
    for event_id in redecided:
        paths = {p for p, _, _ in holders.get(event_id, [])}
        if len(paths) > 1:
            m.dup_holders[event_id] = sorted(cache.files[p]["fno"] for p in paths)
        else:
            m.dup_holders.pop(event_id, None)
    for path in touched_paths:
        if path not in fresh:
            affected_sessions |= _sessions(files.bulk(path)["rollup"])

    # 4. the merged rollup of the affected sessions, from every file holding them
    session_sets.apply_to(m.session_files)
    del session_sets  # a first run's has a list for every session
    rows_of: dict[str, list] = {}
    # a file's rows are dropped once its last affected session is folded, and a session's
    # rows are marshalled once summed (a first run folds every file and every session:
    # neither is held whole as lists)
    visits: dict[int, int] = {}
    for s in affected_sessions:
        for fno in m.session_files.get(s, ()):
            visits[fno] = visits.get(fno, 0) + 1
    for s in affected_sessions:
        acc = Rollup()
        for fno in m.session_files.get(s, ()):
            path = cache.files.path_of(fno)
            rows = rows_of.get(path)
            if rows is None:
                rows = rows_of[path] = files.effective_rows(path)
            acc.add_rows(r for r in rows if r[I_SESSION] == s)
            visits[fno] -= 1
            if not visits[fno]:
                del rows_of[path]
        m.set_session(s, acc.acc)


def _sorted_hashes(arrays) -> tuple[array, set[int]]:
    """The hashes of ``arrays`` (each sorted) sorted into one array, and those that occur
    more than once."""
    out = array("Q")
    repeated: set[int] = set()
    for run in _sorted_runs(arrays, repeated):
        out.extend(run)
    return out, repeated


BUCKET_BITS = 6  # the hashes sorted a 64th of their range at a time
BUCKET_RUN = 128  # hashes a bucket keeps in memory before they go to the spill (1 KB)


def _sorted_runs_spilled(arrays, repeated: set[int], directory: str | None):
    """``_sorted_runs`` of ``arrays`` (every call's hashes on a first build) from one
    walk: each hash goes to its bucket (the top bits), a bucket's hashes go on to an
    unnamed temp file in ``directory`` ``BUCKET_RUN`` at a time, and each bucket is read
    back and sorted in turn. Held: the buckets' last runs (~64 KB) and one bucket, a
    64th of the hashes (walking the arrays once per part of the range held a part, 256 KB
    from 200 days on)."""
    shift = 64 - BUCKET_BITS
    buckets = [array("Q") for _ in range(1 << BUCKET_BITS)]
    put = [b.append for b in buckets]
    runs = [array("Q") for _ in buckets]  # per bucket, (offset, hashes) of its runs in the spill
    spill = Spill(directory, limit=0)  # (no directory: in memory)
    try:
        for i, a in enumerate(arrays, 1):
            for h in a:
                put[h >> shift](h)
            if not i & 15 or len(a) > BUCKET_RUN:  # looked at every few files: a file holds a few dozen
                _spill_full(buckets, runs, spill)
        del put
        for i in range(len(buckets)):
            hashes = _read_runs(spill, runs[i])
            hashes.extend(buckets[i])
            buckets[i] = runs[i] = None
            run = _sorted_run(hashes, repeated)
            del hashes
            if run:
                yield run
    finally:
        spill.close()


def _spill_full(buckets: list[array], runs: list[array], spill: Spill) -> None:
    """Each bucket holding ``BUCKET_RUN`` hashes or more: those go to the spill."""
    for bucket, at in zip(buckets, runs):
        if len(bucket) >= BUCKET_RUN:
            with memoryview(bucket) as view, view.cast("B") as raw:
                at.append(spill.append(raw))
            at.append(len(bucket))
            del bucket[:]


def _read_runs(spill: Spill, runs: array) -> array:
    """A bucket's hashes in the spill (``runs``: offset, count, ...)."""
    out = array("Q")
    for at, n in zip(runs[::2], runs[1::2]):
        out.frombytes(spill.read(at, at + 8 * n))
    return out


def _sorted_runs(arrays, repeated: set[int]):
    """The hashes of ``arrays``, sorted, a run at a time (each after the one
    before); those that occur more than once are added to ``repeated``.
    A 64th at a time (by their top bits): a list of them all as Python ints would cost
    ~40 bytes a hash (a first build spills its buckets, ``_sorted_runs_spilled``)."""
    buckets = [array("Q") for _ in range(64)]
    put = [b.append for b in buckets]
    for a in arrays:
        # one by one: a file holds a few dozen calls, too few for a bucket's slice of it
        # (found by bisection) to pay
        for h in a:
            put[h >> 58](h)
    del put
    for i, bucket in enumerate(buckets):
        buckets[i] = None
        run = _sorted_run(bucket, repeated)
        del bucket
        if run:
            yield run


def _sorted_run(hashes: array, repeated: set[int]) -> array:
    """``hashes`` sorted; those that occur more than once are added to ``repeated``."""
    ordered = sorted(hashes)
    if any(map(eq, ordered, islice(ordered, 1, None))):  # a copy sits next to its twin
        repeated.update(h for h, after in zip(ordered, islice(ordered, 1, None)) if h == after)
    return array("Q", ordered)


class _SessionSets:
    """``session_files`` made only for the sessions a change touches (a run touches a few
    of thousands, a first run every one), written back sorted; a session left with no
    file goes. Kept as short lists: a session is in a file or a few, and a list of them
    is a quarter of a set's size."""

    def __init__(self, session_files: dict[str, list[int]]):
        self.before = session_files
        self.lists: dict[str, list[int]] = {}

    def _of(self, session: str) -> list[int]:
        got = self.lists.get(session)
        if got is None:
            got = self.lists[session] = list(self.before.get(session, ()))
        return got

    def add(self, session: str, fno: int) -> None:
        got = self._of(session)
        if fno not in got:
            got.append(fno)

    def discard(self, session: str, fno: int) -> None:
        got = self._of(session)
        if fno in got:
            got.remove(fno)

    def apply_to(self, session_files) -> None:
        """Write the sets back (``session_files``: a ``parse_index.KeyedBlobs``)."""
        for fnos in self.lists.values():
            fnos.sort()
        session_files.put_many((s, fnos) for s, fnos in self.lists.items() if fnos)
        session_files.delete_many(s for s, fnos in self.lists.items() if not fnos)


def _ids_of(files: _Files, path: str) -> list[str]:
    return unpack_ids(files.bulk(path)["ids"])
