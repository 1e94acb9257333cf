"""Incremental ``aggregate``: recompute only the report rows whose rollup rows changed.

The output is the document ``aggregation.aggregate_rollups`` gives, byte for byte (the
tests compare the two), assembled from *units*: a day, ISO week, month, session or
project (with its rows, period and period-provider entries) or a 5-hour block (start,
provider). The state (``cache/aggregate/state.bin``, see view_cache.py) keeps:

- ``chunks``: per UTC day, a digest of its rollup rows' bytes in each file (see
  ``_digest``) and its number of rows. A day whose rows differ from the last run's
  dirties the local days it overlaps, the sessions it held before (from the day
  accumulators below) or holds now, and per provider the blocks from its start to its
  end. With a state, the rollup files are not parsed whole (``LazyRollups``): each
  file's days are found as byte ranges and digested, and only the days this run needs
  are parsed (changed days and their neighbours, the days holding a dirty session, the
  days blocks are redone from).
- ``days``: per local day, its row accumulators per (provider, model) (with their
  session sets) and per (project, provider, model) (sums only) and its subscription
  basis: weeks, months, projects, the whole-range tables and the allocation basis are
  regrouped from these (hundreds of entries, not thousands of rollup rows). Each day's
  are marshalled into ``days.bin`` beside the state (``DayStore``), which the state
  records like the output (and each day's offset and length), and are loaded one day
  at a time (``DayScan``).
- ``proj_months``: per local month, its project row accumulators (from its days), in
  ``days.bin`` too.
- ``blocks``: per provider, each block's first slot and start. Block assignment is
  sequential, so blocks are recomputed from the block holding the last unchanged slot
  before the earliest change, until a block after the last change starts where it
  started before; the others keep their rows.
- ``index``: per report kind, the units' keys in order (``KeyList``) and each one's byte
  length (rows, periods, period-provider entries) in the previous ``aggregates.json``,
  whose inode, size and mtime the state records: a run of unchanged units is one slice
  of it. The sessions' also keep each session's *record* (the (project, provider,
  model) it has calls of), from which the distinct sessions of the projects report and
  of the whole-range entries are counted (``ProjectCounts``, ``SessionCounts``, kept up
  to date in ``projects`` and ``session_counts``): no pass holds every session's id in
  a set.

Whatever is per UTC day, local day, block or unit is kept in ``columns.Column``s (a
block of each in memory, the rest in a temp file): the state's are blobs after its body
(``view_cache.save_parts``: ``columns.BlobParts``, an index's ``_packed``), which the next run
leaves in the file and reads a block at a time (``_col``, ``_unpacked``); the body holds
only their places and what is per month or per provider.

Anything unexpected (no state, another version, other parameters, an output or a
``days.bin`` that is not the recorded one, more than a quarter of the days changed)
recomputes every unit: the same code path with everything dirty. Such a full run
(``FullPass``) reads the rows once, a UTC day of every file at a time, and keeps none: a
local day's accumulators are made as soon as no later row can fall in it, a session's
once it has had a UTC day without calls (``SESSION_CHUNK`` or more sessions at a time,
each batch one key-ordered *run* of ``UnitRuns``, whose bytes wait in temp files until
the document, written as it is assembled, reaches them and merges the runs; a session
that resumes later is made again at the end), the blocks as their slots come (units
made ``BLOCK_CHUNK`` ended blocks at a time, runs too); the days, weeks and months as
the day accumulators are scanned (one run each). The rollup files are never held
whole (scanned ``READ_BYTES`` at a time, a day read back when parsed). A ``UnitRuns``
keeps its units' keys and records in spills and their counts and lengths in columns;
the runs are merged once, a few units of each at a time, into the index to save (its
keys and records in spills, ``KeysToSave``) and the places of the units' bytes.

What still grows with the history, in memory: per month, the project rows' tokens per
month and the allocation basis (tens of bytes a month a row); per dirty day, week or
session its units until written. What grows with the calls per day rather than with
the history: a day's rows and accumulators (the days parsed in a later run: changed
days, their neighbours, the days of the dirty sessions), the sessions and blocks not
made yet, a chunk's entries. The memos (slots, timestamps) fill up to their bound.
"""
from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import heapq
import marshal
import os
from array import array
from itertools import accumulate
from operator import itemgetter

import orjson

from scripts.core import background, view_cache
from scripts.core.columns import BlobParts, BlockFile, Column, Names, Prefix
from scripts.core.aggregation import (
    AGGREGATES_SCHEMA_VERSION,
    BLOCK_MS,
    NO_PROJECT,
    DAY_MS,
    HOUR_MS,
    REPORT_KINDS,
    SLOT_MS,
    _MONTH,
    _ISO,
    _SESS,
    SlotCalendar,
    _block_table,
    _blocks_as_table,
    _fold,
    _group,
    _start,
    _table,
    whole_range_entries,
    assign_blocks,
    block_rows_of,
    day_rows_of,
    fold_rows,
    iso_ms,
    project_rows_of,
    session_project_field,
    session_rows_of,
)
from scripts.core.rollup import COLUMNS
from scripts.shared_io import AtomicFile

STATE = "state.bin"
_OPT = orjson.OPT_SORT_KEYS
_session_of = itemgetter(4)  # of a fine key
# more than this share of the days changed: recompute everything (cheaper than the bookkeeping)
FULL_SHARE = 0.25
SESSION_CHUNK = 200  # fine accumulators (about as many sessions) turned into entries at a time (and a full run's run)
BLOCK_CHUNK = 64  # blocks turned into entries at a time (a full run)


def _dumps(obj) -> bytes:
    return orjson.dumps(obj, option=_OPT)


def _units(table: dict, by_provider: bool = False) -> dict:
    """``unit -> [rows bytes, periods bytes, period_providers bytes, row count]`` of a table."""
    out: dict = {}

    def add(entries, slot):
        dumped = view_cache.entry_bytes(entries)
        cur_key = None
        start = 0
        for i, e in enumerate(entries):
            k = (e["period"], e["provider"]) if by_provider else e["period"]
            if k != cur_key:
                if i:
                    out.setdefault(cur_key, [b"", b"", b"", 0])[slot] = b",".join(dumped[start:i])
                cur_key, start = k, i
            if slot == 0:
                u = out.get(k)
                if u is None:
                    out[k] = [b"", b"", b"", 1]
                else:
                    u[3] += 1
        if entries:
            out.setdefault(cur_key, [b"", b"", b"", 0])[slot] = b",".join(dumped[start:])

    add(table["rows"], 0)
    add(table["periods"], 1)
    add(table["period_providers"], 2)
    return out


def _merge_sums_into(out: dict, part: dict) -> dict:
    """Add group accumulators (with month_tokens, without sessions) by key into ``out``."""
    for key, b in part.items():
        a = out.get(key)
        if a is None:
            out[key] = _start(b, None, dict(b[_MONTH]))
            continue
        _fold(a, b)
        mt = a[_MONTH]
        for m, n in b[_MONTH].items():
            mt[m] = mt.get(m, 0) + n
    return out


class ProjectCounts:
    """The projects report's distinct sessions per (project, provider, model) row, per
    (project, provider) and per project, from each session's *record*: the ids of the
    (project, provider, model) it has calls of (that the filters keep), kept with the
    sessions' index (``recs``) so that a run uncounts the sessions it redoes. The
    projects' row accumulators then need no session sets (those held every session)."""

    def __init__(self, state: dict | None = None):
        self.triples: list = list(state["triples"]) if state else []  # id -> (project, provider, model)
        self.ids: dict = {t: i for i, t in enumerate(self.triples)}
        self.row: dict = {}
        self.pp: dict = {}
        self.period: dict = {}
        if state:
            self.row, self.pp, self.period = (dict(state[k]) for k in ("row", "pp", "period"))

    def zeroed(self) -> "ProjectCounts":
        """The same ids, no session counted."""
        out = ProjectCounts()
        out.triples, out.ids = self.triples, self.ids
        return out

    def records(self, fine_keys) -> dict:
        """``session -> its record`` (a sorted tuple of ids) from fine accumulators' keys."""
        per: dict = {}
        ids, triples = self.ids, self.triples
        for (_day, provider, model, project, session) in fine_keys:
            t = (project or NO_PROJECT, provider, model)
            i = ids.get(t)
            if i is None:
                i = ids[t] = len(triples)
                triples.append(t)
            r = per.get(session)
            if r is None:
                per[session] = (i,)
            elif i not in r:
                per[session] = tuple(sorted(r + (i,)))
        return per

    def add(self, rec: tuple, sign: int = 1) -> None:
        triples = self.triples
        if len(rec) == 1:  # most sessions: one project, provider and model
            t = triples[rec[0]]
            self.row[t] = self.row.get(t, 0) + sign
            self.pp[t[:2]] = self.pp.get(t[:2], 0) + sign
            self.period[t[0]] = self.period.get(t[0], 0) + sign
            return
        ts = [triples[i] for i in rec]
        for t in ts:
            self.row[t] = self.row.get(t, 0) + sign
        for k in {t[:2] for t in ts}:
            self.pp[k] = self.pp.get(k, 0) + sign
        for k in {t[0] for t in ts}:
            self.period[k] = self.period.get(k, 0) + sign

    def distinct(self, period: str, provider: str | None) -> int:
        return self.period.get(period, 0) if provider is None else self.pp.get((period, provider), 0)

    def table(self, rows: dict) -> dict:
        """The projects table of these row accumulators (sums)."""
        for k, a in rows.items():
            a[_SESS] = range(self.row.get(k, 0))  # _row_entry only takes its len()
        return _table(rows, {}, distinct=self.distinct)

    def as_state(self) -> dict:
        return {"triples": self.triples, "row": {k: n for k, n in self.row.items() if n},
                "pp": {k: n for k, n in self.pp.items() if n}, "period": {k: n for k, n in self.period.items() if n}}


DAYS = "days.bin"


def _days_head(body_hash) -> bytes:
    """``days.bin``'s head, as a view_cache state's (``MAGIC``, a JSON line with the
    body's SHA-1), so that ``view_cache.verify`` checks it whole like the state; of one
    length whatever the digest (the file is written after a placeholder)."""
    header = {"digest": body_hash.hexdigest(), "identity": {"stage": "aggregate", "part": DAYS}, "version": view_cache.CACHE_VERSION}
    return view_cache.MAGIC + orjson.dumps(header, option=_OPT) + b"\n"


class DayStore:
    """The marshalled ``[day rows, project rows, basis]`` of each local day and the
    project rows of each month, in a file beside the state (``days.bin``) rather than in
    it: the state records that file's identity (inode, size, mtime) and each piece's
    offset and length, and a run reads the pieces it needs from the previous file (kept
    open) and writes every piece into a new one (``AtomicFile``: renamed after the
    output, before the state), new pieces as they are made. So neither the previous
    pieces nor a first run's are all in memory. The file has a state's head (its SHA-1
    checked by ``view_cache.verify``, as tests/faults does for every file here); a run
    trusts it by its identity, as it does the output.

    The days' places are ``Column``s (a day's number, offset, length; sorted), not dicts:
    the last run's (``old``, in the state file), those put in this run in day order
    (``put``: a first run's all, a later run's dirty days, sorted), and the new file's
    every day, appended as ``DayScan`` reads them in order (``day``). Only days put out of
    order (a first run's days whose calls were all filtered out) and the days dropped
    are in a dict or set."""

    def __init__(self, path: str, old_file: "view_cache.PreviousOutput | None", old: tuple | None, months: dict,
                 blocks: BlockFile):
        self.path, self.old_file = path, old_file
        self.old = old if old is not None else self._places(blocks)  # the previous file's
        self.put_in_order = self._places(blocks)  # days put in day order (in the new file)
        self.put_else: dict = {}  # day number -> (offset, length) of the others put
        self.dropped: set = set()  # day numbers of the previous file's days gone
        self.final = self._places(blocks)  # every day, in the new file, in order
        # month -> (False, offset, length) in the previous file or (True, ...) in the new one
        self.months = {m: (False, o, n) for m, (o, n) in months.items()}
        self.out = self.fh = None
        self.size = 0

    @staticmethod
    def _places(blocks) -> tuple:
        return Column("i", blocks), Column("q", blocks), Column("q", blocks)

    def _write(self, blob: bytes) -> tuple:
        if self.fh is None:
            self.out = AtomicFile(self.path)
            self.fh = self.out.__enter__()
            self.hash = hashlib.sha1()
            head = _days_head(self.hash)  # a place for it: written again once the digest is known
            self.fh.write(head)
            self.size = len(head)
        self.fh.write(blob)
        self.hash.update(blob)
        self.size += len(blob)
        return (True, self.size - len(blob), len(blob))

    def _read(self, ref: tuple) -> bytes:
        new, off, n = ref
        if new:
            self.fh.flush()
            data = os.pread(self.fh.fileno(), n, off)
        else:
            data = self.old_file.read(off, off + n)
        if data is None or len(data) != n:
            raise OSError(f"{self.path}: a piece is cut short")
        return data

    @staticmethod
    def _at(places: tuple, n: int) -> tuple | None:
        i = _find(places[0], n)
        return None if i < 0 else (places[1][i], places[2][i])

    def _ref(self, n: int) -> tuple | None:
        """Where day number ``n``'s piece is now (None: no such day)."""
        at = self._at(self.put_in_order, n) or self.put_else.get(n)
        if at is not None:
            return (True, *at)
        if n in self.dropped:
            return None
        at = self._at(self.old, n)
        return None if at is None else (False, *at)

    def put(self, day: str, blob: bytes) -> None:
        n = _day_number(day)
        _new, off, size = self._write(blob)
        days = self.put_in_order[0]
        if (not len(days) or n > days[-1]) and n not in self.put_else:
            for col, x in zip(self.put_in_order, (n, off, size)):
                col.append(x)
        else:
            if self._at(self.put_in_order, n) is not None:
                raise RuntimeError(f"{day} put twice")
            self.put_else[n] = (off, size)

    def put_month(self, month: str, blob: bytes) -> None:
        self.months[month] = self._write(blob)

    def get(self, day: str) -> bytes | None:
        """A day's piece as it was or is now (None: no such day)."""
        ref = self._ref(_day_number(day))
        return None if ref is None else self._read(ref)

    def day(self, day: str) -> bytes:
        """A day's piece, the days asked in order (``sorted_days``): each one's place in
        the new file is recorded (the piece copied there if it is not yet)."""
        n = _day_number(day)
        ref = self._ref(n)
        blob = self._read(ref)
        if not ref[0]:
            ref = self._write(blob)
        for col, x in zip(self.final, (n, ref[1], ref[2])):
            col.append(x)
        return blob

    def month(self, month: str) -> bytes:
        ref = self.months[month]
        blob = self._read(ref)
        if not ref[0]:
            self.months[month] = self._write(blob)
        return blob

    def drop(self, day: str) -> None:
        n = _day_number(day)
        if self._at(self.put_in_order, n) is not None or n in self.put_else:
            raise RuntimeError(f"{day} dropped once put")
        self.dropped.add(n)

    def drop_month(self, month: str) -> None:
        self.months.pop(month, None)

    def __contains__(self, day) -> bool:
        return self._ref(_day_number(day)) is not None

    def sorted_days(self):
        """Every day (as ``YYYY-MM-DD``), in order."""
        return map(_day_name, self._numbers())

    def commit(self) -> tuple:
        """Rename the new file into place; return ``(identity, days, months)`` for the state
        (every day must have been read in order by now, ``day``; ``days`` its places)."""
        if len(self.final[0]) != sum(1 for _ in self._numbers()):
            raise RuntimeError(f"a day is not in the new {DAYS}")
        if self.fh is None:
            self._write(b"")
        self.fh.flush()
        os.pwrite(self.fh.fileno(), _days_head(self.hash), 0)
        self.fh = None
        self.out.__exit__(None, None, None)
        for k, (new, off, n) in self.months.items():
            if not new:
                raise RuntimeError(f"{k} is not in the new {DAYS}")
            self.months[k] = (off, n)
        return view_cache.file_identity(self.path), self.final, self.months

    def _numbers(self):
        """Every day's number, in order: the three kinds of places merged (a day put again
        is in the previous file's too)."""
        old = (n for n in self.old[0] if n not in self.dropped)
        last = None
        for n in heapq.merge(old, self.put_in_order[0], sorted(self.put_else)):
            if n != last:
                yield n
            last = n

    def close(self) -> None:
        """Drop the new file unless it was committed."""
        if self.fh is not None:
            self.fh = None
            self.out.__exit__(RuntimeError, None, None)


def _day_number(day: str) -> int:
    """A local day's number (days since 1970-01-01)."""
    return dt.date.fromisoformat(day).toordinal() - 719163


def _day_name(n: int) -> str:
    return dt.date.fromordinal(n + 719163).isoformat()


class WholeRange:
    """The whole-range groups (per provider, per provider and model, everything) from the
    day rows, without their session sets (each would hold every session): their
    distinct session counts come from the sessions report (``SessionCounts``)."""

    def __init__(self):
        self.by_provider: dict = {}
        self.by_model: dict = {}
        self.total: dict = {}

    def add(self, day_rows: dict) -> None:
        for (_day, provider, model), b in day_rows.items():
            for groups, key in ((self.by_provider, (provider,)), (self.by_model, (provider, model)), (self.total, ())):
                a = groups.get(key)
                if a is None:
                    groups[key] = _start(b, None, None)
                else:
                    _fold(a, b)

    def entries(self, counts: "SessionCounts") -> dict:
        """``whole_range_entries`` of the groups, with the sessions' counts."""
        # _fields only takes the sessions' len(): a range of the count stands for the set
        for key, a in self.by_model.items():
            a[_SESS] = range(counts.model.get(key, 0))
        for (provider,), a in self.by_provider.items():
            a[_SESS] = range(counts.provider.get(provider, 0))
        total = self.total.get(())
        if total is not None:
            total[_SESS] = range(counts.total)
        return whole_range_entries(self.by_provider, self.by_model, total)


class SessionCounts:
    """How many sessions have calls (that the filters keep) of each (provider, model), of
    each provider, and in all: the whole-range entries' ``sessions``, the same as the
    distinct sessions of the day rows. Counted, like ``ProjectCounts``, from the
    sessions' records (whose triples give their (provider, model) pairs)."""

    def __init__(self, state: dict | None = None):
        self.model: dict = dict(state["model"]) if state else {}
        self.provider: dict = dict(state["provider"]) if state else {}
        self.total: int = state["total"] if state else 0

    def add(self, pairs, sign: int = 1) -> None:
        """Count (``sign`` -1: uncount) one session that used these (provider, model)."""
        for pair in pairs:
            self.model[pair] = self.model.get(pair, 0) + sign
        for provider in {p for p, _m in pairs}:
            self.provider[provider] = self.provider.get(provider, 0) + sign
        self.total += sign

    def as_state(self) -> dict:
        return {"model": {k: n for k, n in self.model.items() if n}, "provider": {k: n for k, n in self.provider.items() if n},
                "total": self.total}


def _count(recs, projects: "ProjectCounts", sessions: SessionCounts, sign: int = 1) -> None:
    """Count (``sign`` -1: uncount) sessions by their records in both."""
    triples = projects.triples
    for rec in recs:
        projects.add(rec, sign)
        sessions.add({triples[i][1:] for i in rec}, sign)


def _counts_now(projects: "ProjectCounts", old_counts: dict, old: dict | None, dirty_sessions: set, fresh: list) -> SessionCounts:
    """The session counts after an incremental run: the last run's (``projects``' own and
    ``old_counts``), less the dirty sessions' old records, plus those made now (``fresh``)."""
    counts = SessionCounts(old_counts)
    if old is not None and dirty_sessions and "recs" in old:  # none: the last run had no session
        _count((rec for k, rec in zip(old["keys"], old["recs"]) if k in dirty_sessions), projects, counts, -1)
    _count(fresh, projects, counts)
    return counts


class DayScan:
    """One pass over the local days' states (``store``, a ``DayStore``), in order and one
    day in memory at a time: the whole-range entries, the units of the dirty days, weeks
    and months (each week's and month's groups made as it ends), the allocation basis,
    the project rows of the months in ``redo_months`` (into ``store``) and of every
    month together (``projects``); with ``dirty_sessions``, the local days naming one of
    them (``sess_local``). Every day and month goes into the store's new file on the way.
    With ``batch`` (a full run: every day, week and month is made), the units go into
    one ``UnitRuns`` per kind, made by ``batch(kind)``: their bytes wait in temp files
    rather than in memory (every day's; they come in key order, one run)."""

    def __init__(self, store: "DayStore", week_of, dirty_days, dirty_weeks, dirty_months, redo_months,
                 dirty_sessions: set | None, batch=None):
        self.daily = self.weekly = self.monthly = None
        for kind in ("daily", "weekly", "monthly"):
            units = {} if batch is None else batch(kind)
            if batch is not None:
                units.multi = True  # their periods are a list of their own
            setattr(self, kind, units)
        self.allocation: dict[str, dict[str, int]] = {}
        self.sess_local: set = set()
        whole = WholeRange()
        week = month = None
        week_rows: dict = {}
        month_rows: dict = {}
        proj: dict = {}
        for day in store.sorted_days():
            day_rows, day_proj, basis = marshal.loads(store.day(day))
            whole.add(day_rows)
            if week_of(day) != week:
                self._add(self.weekly, week_rows)
                week, week_rows = week_of(day), {}
            if week in dirty_weeks:
                _group((((week, k[1], k[2]), a) for k, a in day_rows.items()), True, into=week_rows)
            if day[:7] != month:
                self._add(self.monthly, month_rows)
                if month in redo_months:
                    store.put_month(month, marshal.dumps(proj))
                month, month_rows, proj = day[:7], {}, {}
            if month in dirty_months:
                _group((((month, k[1], k[2]), a) for k, a in day_rows.items()), True, into=month_rows)
            if month in redo_months:
                _merge_sums_into(proj, day_proj)
            if day in dirty_days:
                self._add(self.daily, day_rows)
            m = self.allocation.setdefault(month, {})
            for provider, n in basis.items():
                m[provider] = m.get(provider, 0) + n
            if dirty_sessions and any(not a[_SESS].isdisjoint(dirty_sessions) for a in day_rows.values()):
                self.sess_local.add(day)
        self._add(self.weekly, week_rows)
        self._add(self.monthly, month_rows)
        if month in redo_months:
            store.put_month(month, marshal.dumps(proj))
        del week_rows, month_rows, proj
        self.whole = whole  # its entries once the sessions are counted
        # the months' project rows together, once the whole-range groups are gone
        self.projects: dict = {}
        for month in sorted(store.months):
            _merge_sums_into(self.projects, marshal.loads(store.month(month)))

    @staticmethod
    def _add(units, rows: dict) -> None:
        if rows:
            made = _units(_table(rows, {}))
            if units.__class__ is UnitRuns:
                units.add(made)
            else:
                units.update(made)


def _segments(old_keys: "KeyList", fresh: dict, is_stale) -> list:
    """What a report is assembled from, in key order: runs of units kept from the last
    run ``["old", first, last]`` (ordinals in ``old_keys``) and keys of units made now.
    ``old_keys`` are in key order (as written), so this is a merge."""
    new_keys = sorted(fresh)
    segments: list = []
    j, n = 0, len(new_keys)
    for o, k in enumerate(old_keys):
        while j < n and new_keys[j] < k:
            segments.append(new_keys[j])
            j += 1
        if (j < n and new_keys[j] == k) or is_stale(k):
            continue  # made again (it comes with the next old key or at the end), or gone
        last = segments[-1] if segments else None
        if last is not None and last.__class__ is list and last[2] == o - 1:
            last[2] = o
        else:
            segments.append(["old", o, o])
    segments += new_keys[j:]
    return segments


SPILL_BLOCK = 1 << 14  # bytes appended to a spill at a time (KeysToSave)


class KeyList(view_cache.PackedBytes):
    """Units' keys (strings, or tuples of them) marshalled one after another in one
    buffer, decoded when read: ~40 bytes a session rather than ~110 as a list of strings
    (the sessions' keys are the index's bulk)."""

    __slots__ = ()

    def __getitem__(self, i: int):
        return marshal.loads(self.raw(i))

    def __iter__(self):
        return map(marshal.loads, self.raws())

    def append(self, key) -> None:
        self.append_raw(marshal.dumps(key))


class StoredKeys:
    """A saved index's keys (a ``KeyList``'s buffer and ends) left in the state file, a
    ``Names`` read a block at a time: iterated in order, or copied a run at a time
    (``KeysToSave.extend_from``)."""

    __slots__ = ("names",)

    def __init__(self, names: Names | None = None):
        self.names = names if names is not None else Names()

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        """The keys in order, a block of ends (and their bytes) read at a time."""
        data, loads = self.names.data, marshal.loads
        start = 0
        for ends in self.names.ends.chunks():
            buf = data[start:ends[-1]].tobytes()
            offs = [e - start for e in ends]
            yield from map(loads, map(buf.__getitem__, map(slice, [0, *offs[:-1]], offs)))
            start = ends[-1]


class KeysToSave:
    """Keys (marshalled, as in a ``KeyList``'s buffer) appended to a spill of their own a
    block at a time, and where each ends (a ``Column`` in ``blocks``): an index's keys
    that are only to be saved (``saved``), never all in memory."""

    def __init__(self, spill: "view_cache.Spill", blocks: BlockFile):
        self.spill, self.start = spill, spill.size
        self.ends = Column("q", blocks)
        self.block = bytearray()
        self.block_ends: list = []  # the block's keys' ends (into ``ends`` with the block)
        self.size = 0

    def append(self, key) -> None:
        self.append_raw(marshal.dumps(key))

    def append_raw(self, raw: bytes) -> None:
        self.block += raw
        self.size += len(raw)
        self.block_ends.append(self.size)
        if len(self.block) >= SPILL_BLOCK:
            self._flush()

    def _flush(self) -> None:
        self.spill.append(self.block)
        self.block = bytearray()
        self.ends.extend(self.block_ends)
        self.block_ends = []

    def extend_from(self, other: StoredKeys, i: int, j: int) -> None:
        """Append ``other``'s keys ``i:j`` (a block at a time)."""
        if j <= i:
            return
        names = other.names
        a, b = names.ends[i - 1] if i else 0, names.ends[j - 1]
        self._flush()
        for chunk in names.data.chunks(a, b):
            self.spill.append(chunk)
        shift = self.size - a
        for chunk in names.ends.chunks(i, j):
            self.ends.extend([e + shift for e in chunk])
        self.size += b - a

    def saved(self) -> KeyList:
        """The keys as a ``KeyList`` whose buffer is a ``view_cache.Piece`` of the spill."""
        self._flush()
        return KeyList(self.spill.piece(self.start, self.spill.size), self.ends)


def _packed(idx: dict, blobs: list, lazy: list, spill: "view_cache.Spill") -> dict:
    """An index as the state keeps it: one blob (``BlobParts``) of the keys' and records'
    bytes (pieces of their spills) and ends, the counts and the lengths."""
    parts = BlobParts(blobs, lazy, spill)
    put = parts.put
    out = {"keys": (put(idx["keys"].blob), put(idx["keys"].ends)), "n": put(idx["n"]), "lens": [put(lens) for lens in idx["lens"]],
           "base": idx["base"], "blob": parts.blob}
    if "recs" in idx:
        out["recs"] = (put(idx["recs"].blob), put(idx["recs"].ends))
    return out


def _unpacked(idx: dict, blobs: list) -> dict:
    """``_packed``'s inverse: ``Column``s over the index's blob left in the state file."""
    blob = blobs[idx["blob"]]

    def col(typecode: str, at) -> Column:
        return Column.in_blob(typecode, blob, at)

    def keys(at) -> StoredKeys:
        return StoredKeys(Names(data=col("B", at[0]), ends=col("q", at[1])))

    out = {"keys": keys(idx["keys"]), "n": col("i", idx["n"]), "lens": [col("i", at) for at in idx["lens"]], "base": idx["base"]}
    if "recs" in idx:
        out["recs"] = keys(idx["recs"])
    return out


def _pairs(flat):
    """``(first slot, start)`` of each block in ``flat``: a provider's blocks as the state
    keeps them, ``[first slot, start, ...]`` in order (a ``Column`` of "q", 16 bytes a
    block, in the state file or a temp file)."""
    it = iter(flat)
    return zip(it, it)


def _basis_of(rows, of_slot) -> dict:
    """Tokens per local day and provider, every row (filters never apply to the basis)."""
    return _add_basis({}, rows, of_slot)


def _add_basis(out: dict, rows, of_slot) -> dict:
    for r in rows:
        day = of_slot(r[0])[0]
        d = out.get(day)
        if d is None:
            d = out[day] = {}
        d[r[1]] = d.get(r[1], 0) + r[10] + r[11] + r[12] + r[13] + r[14] + r[15]
    return out


def build_from_files(paths, zone_name: str, filters, output: str, cache_dir: str, force: bool = False):
    """Write the aggregates document for the rows of the rollup files ``paths`` to
    ``output``; return ``(Stats, number of rollup rows)``. With a usable state the files
    are read lazily (only the days needed are parsed); anything unexpected there reads
    them whole instead (same result)."""
    try:
        return build(paths, zone_name, filters, output, cache_dir, force, lazy=True)
    except Fallback:
        return build(paths, zone_name, filters, output, cache_dir, force, lazy=False)


def build(paths, zone_name: str, filters, output: str, cache_dir: str, force: bool = False, lazy: bool = True):
    """Write the aggregates document for the rollup files ``paths`` to ``output``; return
    ``(Stats, number of rollup rows)``. Raises ``Fallback`` (before writing anything)
    if the lazy reading meets anything unexpected."""
    # the sessions' bytes wait there (beside the output) until the document reaches them
    spill_dir = os.path.dirname(os.path.abspath(output)) if output != "-" else cache_dir
    os.makedirs(spill_dir, exist_ok=True)
    opened: list = []  # closed whatever happens: the rollup source, the sessions' spills
    try:
        return _build(paths, zone_name, filters, output, cache_dir, force, lazy, spill_dir, opened)
    finally:
        for thing in opened:
            thing.close()


def _build(paths, zone_name: str, filters, output: str, cache_dir: str, force: bool, lazy: bool, spill_dir: str, opened: list):
    stats = view_cache.Stats()
    cal = SlotCalendar(zone_name)
    of_slot = cal.of_slot
    identity = {
        "stage": "aggregate",
        "code": view_cache.code_hash("scripts.core.aggregation", "scripts.core.aggregate_incr", "scripts.core.view_cache",
                                     "scripts.core.periods", "scripts.core.event"),
        "timezone": view_cache.zone_identity(zone_name),
        "filters": filters.as_dict(),
        "output": os.path.abspath(output),
    }
    state_path = os.path.join(cache_dir, STATE)
    state, blobs = view_cache.load_parts_unless_forced(state_path, identity, force, stats, lazy=True)
    opened += [b for b in blobs if isinstance(b, view_cache.FileBlob)]  # the indexes' (read as they are written)
    old_file = None
    old_days = None
    if state is not None:
        old_file = view_cache.PreviousOutput.open(output, state["output"])
        old_days = view_cache.PreviousOutput.open(os.path.join(cache_dir, DAYS), state["days_file"])
        for f in (old_file, old_days):
            if f is not None:
                opened.append(f)
        if old_file is None or old_days is None:
            state, blobs, stats.state = None, [], "output"

    # the rollup rows per UTC day, and their digests (what tells a changed day); a first
    # run reads them lazily too (every day is then parsed, and checked, once per pass)
    blocks = BlockFile(spill_dir)  # the run's columns past a block (per UTC day, per unit)
    opened.append(blocks)
    source = LazyRollups(paths, blocks) if lazy else EagerRollups(paths, blocks)
    opened.append(source)
    stats.source = "lazy" if source.__class__ is LazyRollups else "eager"
    digests = source.digests

    full = state is None
    changed: list = []
    if not full:
        old_utc, old_counts = _utc_days(state["chunks"], blobs)
        changed = _changed(digests, old_utc)
        if len(changed) > max(4, FULL_SHARE * len(digests)):
            full, state, blobs, stats.state = True, None, [], "large"
    # rows per UTC day, as ``digests``' days (unchanged days: as recorded; on a full run,
    # counted as they are read)
    if not full:
        day_counts = _day_counts(digests, old_utc, old_counts, changed, source, blocks)
        del old_utc, old_counts

    # ------------------------------------------------------------ what is dirty
    projects = ProjectCounts(None if full else state["projects"])  # the sessions' records' ids (and counts)
    days_state = DayStore(os.path.join(cache_dir, DAYS), old_days, None if full else _places(state["days"], blobs),
                          {} if full else state["proj_months"], blocks)
    opened.append(days_state)
    if full:
        index: dict = {}
        blocks_state: dict = {}
        dirty_days = None  # all
    else:
        index = {kind: _unpacked(idx, blobs) for kind, idx in state["index"].items()}
        blocks_state = {provider: Column.in_blob("q", blobs[state["chunks"]["blob"]], at) for provider, at in state["blocks"].items()}
        blobs = None
        # A changed UTC day dirties the local days it overlaps, the sessions it held
        # before (the old day rows' sessions: a row the filters drop changes no session)
        # or holds now, and per provider the blocks from its start to its end.
        dirty_days = set()
        dirty_sessions = set()
        first_change: dict[str, int] = {}
        last_change: dict[str, int] = {}

        def touch(provider, d):
            if d * DAY_MS < first_change.get(provider, 1 << 62):
                first_change[provider] = d * DAY_MS
            if d * DAY_MS + DAY_MS - SLOT_MS > last_change.get(provider, -1):
                last_change[provider] = d * DAY_MS + DAY_MS - SLOT_MS

        for d in changed:
            for day in (of_slot(d * DAY_MS)[0], of_slot(d * DAY_MS + DAY_MS - SLOT_MS)[0]):
                dirty_days.add(day)
                entry = days_state.get(day)
                for (_day, provider, _m), a in (marshal.loads(entry)[0] if entry else {}).items():
                    dirty_sessions |= a[_SESS]
                    touch(provider, d)
            for r in source.day(d):
                dirty_sessions.add(r[4])
                touch(r[1], d)
        near = set()
        for d in changed:
            near.update((d - 1, d, d + 1))
        day_rows_in = [r for d in sorted(near) for r in source.day(d) if of_slot(r[0])[0] in dirty_days]

    def batch(kind="sessions"):
        out = UnitRuns(spill_dir, kind, blocks)
        opened.append(out)
        return out

    def spill():
        out = view_cache.Spill(spill_dir, UnitRuns.SPILL_LIMIT)
        opened.append(out)
        return out

    # ------------------------------------------------------------ days
    names: dict = {}  # one string per project and session id
    if full:
        # one pass over every row, a UTC day at a time, none kept: days, sessions and
        # blocks are made as the days go (see FullPass)
        whole = FullPass(source, of_slot, filters, names, batch(), projects, multi_form=False, blocks=batch("blocks"), days=days_state)
        day_counts = whole.day_counts
    else:
        fine = fold_rows(day_rows_in, of_slot, filters, False)[0]
        fine_by_day: dict[str, dict] = {}
        for k, a in fine.items():
            fine_by_day.setdefault(k[0], {})[k] = a
        # the subscription basis counts every call, filtered out or not
        basis_by_day = _basis_of(day_rows_in, of_slot) if filters.active else None
        new_days = set(fine_by_day) if basis_by_day is None else set(fine_by_day) | set(basis_by_day)
        for day in sorted(dirty_days | new_days):  # in order: their places are columns
            entry = _day_entry(fine_by_day.get(day), basis_by_day, day)
            if entry is None:
                days_state.drop(day)
            else:
                days_state.put(day, marshal.dumps(entry))
        del fine_by_day
    def week_of(day: str) -> str:
        return cal._of_day(_day_number(day))[1]

    if dirty_days is None:
        dirty_days = dirty_weeks = dirty_months = _ALL
    else:
        dirty_weeks = {week_of(d) for d in dirty_days if d in days_state}
        dirty_months = {d[:7] for d in dirty_days}

    # the days in order: weeks, months, the whole range; the project rows of the months
    # that changed remade from their days (the other months' kept)
    months_now = set()
    for day in days_state.sorted_days():
        months_now.add(day[:7])
    for month in list(days_state.months):
        if month not in months_now:
            days_state.drop_month(month)
    scan = DayScan(days_state, week_of, dirty_days, dirty_weeks, dirty_months,
                   months_now if state is None else dirty_months & months_now,
                   dirty_sessions if state is not None else None, batch if state is None else None)
    new_units: dict[str, dict] = {"daily": scan.daily, "weekly": scan.weekly, "monthly": scan.monthly}
    allocation = scan.allocation

    # ------------------------------------------------------------ sessions
    old_multi = set() if state is None else set(state["multi_sessions"])
    if state is None:
        # every session, made as the pass went, their bytes kept in temp files
        sess_units = whole.sessions
        sess_in_all = True
        multi_sessions = set(sess_units.several_keys())
        if multi_sessions:  # a session in several tools: every session gets a per-period entry of its own
            opened.remove(sess_units)
            sess_units.close()
            sess_units = FullPass(source, of_slot, filters, names, batch(), projects, multi_form=True).sessions
    else:
        # only the UTC days that hold a dirty session's rows (that the filters keep) are
        # read: those overlapping a local day whose accumulators (just brought up to date)
        # name the session. A UTC day overlaps at most three local days (each is 22 h or
        # more): those of its first, middle and last slot.
        sess_local = scan.sess_local
        sess_days = {d for d in _near_days(sess_local) if d in digests
                     and (of_slot(d * DAY_MS)[0] in sess_local or of_slot(d * DAY_MS + DAY_MS // 2)[0] in sess_local
                          or of_slot(d * DAY_MS + DAY_MS - SLOT_MS)[0] in sess_local)}
        sess_rows_in = [r for r in source.rows_of_days(sess_days) if r[4] in dirty_sessions]
        sess_in_all = False
        sess_units = _session_units(fold_rows(sess_rows_in, of_slot, filters, False)[0], True, projects=projects)
        multi_sessions = {k for k, u in sess_units.items() if u[4]}
        multi_sessions |= old_multi - dirty_sessions
        if bool(multi_sessions) != bool(old_multi):
            sess_in_all = True  # the periods list changes form: redo every session
            sess_units = FullPass(source, of_slot, filters, names, batch(), projects, multi_form=True).sessions
            multi_sessions = set(sess_units.several_keys())
    multi = bool(multi_sessions)
    if sess_in_all:
        proj_counts, counts = projects.zeroed(), SessionCounts()
        _count(sess_units.records(), proj_counts, counts)
    else:
        proj_counts = projects
        counts = _counts_now(projects, state["session_counts"], index.get("sessions"), dirty_sessions, [u[6] for u in sess_units.values()])
    shared = scan.whole.entries(counts)
    new_units["projects"] = _units(proj_counts.table(scan.projects))
    del scan
    if sess_in_all:
        sess_units.multi = multi
    else:
        for u in sess_units.values():  # in place: [rows, periods, pps, n rows]
            u[1] = u[3] if multi else u[2]
            u[3], u[4] = u[5], u[6]
            del u[5:]
    new_units["sessions"] = sess_units

    # ------------------------------------------------------------ blocks
    # Per provider, the blocks from the one holding the last unchanged slot before the
    # earliest change are recomputed, up to the first block after the last change that
    # starts where it started before (from there on, the sequence is the old one).
    new_block_units: dict = {}
    redo: dict[str, tuple] = {}  # provider -> (first start recomputed or None, first start kept again or None), iso
    redo_ms: dict[str, tuple] = {}  # the same in ms
    firsts: dict[str, dict[int, int]] = {}
    if state is None:
        block_slots = {}
        blocks_state = whole.blocks.firsts
        new_block_units = whole.blocks.finish()
        del whole
    else:
        block_slots = {}
        for provider, t0 in first_change.items():
            starts = blocks_state.get(provider, array("q"))
            from_slot = None
            for first_slot, start in _pairs(starts):  # ascending
                if first_slot < t0:
                    from_slot, from_start = first_slot, start
                else:
                    break
            if from_slot is None:
                sub = [r for r in source.all() if r[1] == provider]
            else:
                first_day = from_slot // DAY_MS
                sub = [r for d in digests if d >= first_day for r in source.day(d) if r[1] == provider and r[0] >= from_slot]
            mine = fold_rows(sub, of_slot, filters, True)[1]
            spans = {}
            for (_p, slot), rs in mine.items():
                spans[slot] = [rs[0][8], rs[0][9]] if len(rs) == 1 else [min(r[8] for r in rs), max(r[9] for r in rs)]
            t1 = last_change[provider]
            old_starts = {(f, s) for f, s in _pairs(starts) if f > t1}
            until = None
            prev = None
            for slot, start in assign_blocks(spans).items():  # ascending
                if start != prev:
                    prev = start
                    if slot > t1 and (slot, start) in old_starts:
                        until = (slot, start)
                        break
            if until is not None:
                mine = {k: v for k, v in mine.items() if k[1] < until[0]}
            block_slots.update(mine)
            redo_ms[provider] = (None if from_slot is None else from_start, None if until is None else until[1])
            redo[provider] = tuple(None if ms is None else iso_ms(ms) for ms in redo_ms[provider])
    if block_slots:
        new_block_units = _units(_block_table(block_slots, of_slot, {}, None, firsts), by_provider=True)
    for provider, (cut, until) in redo_ms.items():
        old = blocks_state.get(provider, array("q"))
        now = Column("q", blocks)
        if cut is not None:
            for f, s in _pairs(old):
                if s < cut:
                    now.extend((f, s))
        for s, f in sorted(firsts.get(provider, {}).items()):
            now.extend((f, s))
        if until is not None:
            for f, s in _pairs(old):
                if s >= until:
                    now.extend((f, s))
        blocks_state[provider] = now
    new_units["blocks"] = new_block_units
    source.forget()  # the rows parsed (the days changed and those read around them)

    # ------------------------------------------------------------ assemble
    def stale(kind):
        """Old units of ``kind`` that are recomputed (or gone)."""
        if state is None:
            return lambda k: True
        if kind == "daily":
            return lambda k: k in dirty_days
        if kind == "weekly":
            return lambda k: k in dirty_weeks
        if kind == "monthly":
            return lambda k: k in dirty_months
        if kind == "projects":
            return lambda k: True
        if kind == "sessions":
            return (lambda k: True) if sess_in_all else (lambda k: k in dirty_sessions)

        def block_stale(k):
            r = redo.get(k[1])
            return r is not None and (r[0] is None or k[0] >= r[0]) and (r[1] is None or k[0] < r[1])

        return block_stale

    new_index: dict = {}
    shared_head = b'{"by_model":' + _dumps(shared["by_model"]) + b',"by_provider":' + _dumps(shared["by_provider"])
    shared_tail = b'],"totals":' + _dumps(shared["totals"]) + b"}"
    with AtomicFile(output) as fh:  # written as it is assembled: never one more copy in memory
        write = fh.write
        first = b'{"allocation_basis":' + _dumps(allocation) + b',"filters":' + _dumps(filters.as_dict()) + b',"kind":"aggregates","reports":{'
        write(first)
        pos = len(first)
        for n, kind in enumerate(sorted(REPORT_KINDS)):
            old = index.pop(kind, None)
            old_keys = old["keys"] if old is not None else StoredKeys()
            fresh = new_units[kind]
            if fresh.__class__ is UnitRuns:
                pos = fresh.write(fh, n, shared_head, shared_tail, pos, new_index, stats)
                continue
            segments = _segments(old_keys, fresh, stale(kind))
            # the new keys (and records) wait in spills until the state is saved
            idx = {"keys": KeysToSave(spill(), blocks), "n": Column("i", blocks), "lens": [None] * 3, "base": [0] * 3}
            recs = None
            if kind == "sessions":
                recs = idx["recs"] = KeysToSave(spill(), blocks)
            for seg in segments:
                if seg.__class__ is list:
                    idx["keys"].extend_from(old_keys, seg[1], seg[2] + 1)
                    if recs is not None:
                        recs.extend_from(old["recs"], seg[1], seg[2] + 1)
                    for ns in old["n"].chunks(seg[1], seg[2] + 1):
                        idx["n"].extend(ns)
                        stats.reused += sum(ns)
                else:
                    idx["keys"].append(seg)
                    if recs is not None:
                        recs.append(fresh[seg][4])
                    idx["n"].append(fresh[seg][3])
                    stats.recomputed += fresh[seg][3]
            head = (b"," if n else b"") + b'"' + kind.encode() + b'":' + shared_head + b',"period_providers":['
            write(head)
            pos += len(head)
            for slot, tail in ((2, b'],"periods":['), (1, b'],"rows":['), (0, None)):
                idx["base"][slot] = pos
                lens = Column("i", blocks)
                wrote = False
                if old is not None:
                    old_lens = old["lens"][slot]
                    obase = old["base"][slot]
                    pre = Prefix(old_lens)  # where a unit is in the old report
                for seg in segments:
                    if seg.__class__ is list:
                        i, k = seg[1], seg[2] + 1
                        lens.extend_range(old_lens, i, k)
                        at, end = pre.at(i), pre.at(k)
                        if at == end:
                            continue
                        b = None  # a run of units kept from the last run: copied from its file
                    else:
                        b = fresh[seg][slot]
                        if not b:
                            lens.append(0)
                            continue
                        lens.append(len(b) + 1)
                    if wrote:
                        write(b",")
                        pos += 1
                    if b is None:
                        old_file.copy(fh, obase + at, obase + end - 1)
                        pos += end - 1 - at
                    else:
                        write(b)
                        pos += len(b)
                    wrote = True
                idx["lens"][slot] = lens
                if tail:
                    write(tail)
                    pos += len(tail)
            write(shared_tail)
            pos += len(shared_tail)
            idx["keys"] = idx["keys"].saved()
            if recs is not None:
                idx["recs"] = recs.saved()
            new_index[kind] = idx
        write(b'},"schema_version":' + str(AGGREGATES_SCHEMA_VERSION).encode() + b',"timezone":' + _dumps(zone_name) + b"}\n")
    index = old = state = new_units = None  # the last run's index and the units: written, not needed to save
    if output != "-":
        # aggregates.json is complete: price may start (under refresh, when this runs in a
        # forked copy) while this state for the next run is saved
        background.release()
        days_file, days, months = days_state.commit()
        blobs, lazy_blobs = [], []
        pack = spill()  # the new columns, written into the state from there
        chunks = BlobParts(blobs, lazy_blobs, pack)
        view_cache.save_parts(state_path, identity, {
            "output": view_cache.file_identity(output),
            "days_file": days_file,
            "chunks": {"blob": chunks.blob, "days": chunks.put(digests.days), "sums": chunks.put(digests.sums), "counts": chunks.put(day_counts)},
            "days": {"blob": chunks.blob, "days": chunks.put(days[0]), "offsets": chunks.put(days[1]), "lengths": chunks.put(days[2])},
            "proj_months": months,
            "blocks": {provider: chunks.put(flat) for provider, flat in blocks_state.items()},
            "index": {kind: _packed(idx, blobs, lazy_blobs, pack) for kind, idx in new_index.items()},
            "multi_sessions": multi_sessions,
            "session_counts": counts.as_state(),
            "projects": proj_counts.as_state(),
        }, blobs, lazy_blobs)
    return stats, sum(sum(c) for c in day_counts.chunks())


class _Everything:
    """Stands for the set of every day (week, month): a full run's dirty ones."""

    def __contains__(self, _item) -> bool:
        return True


_ALL = _Everything()


def _places(saved: dict, blobs: list) -> tuple:
    """The last run's days' places in ``days.bin`` (``DayStore``), read from the state file."""
    blob = blobs[saved["blob"]]
    return Column.in_blob("i", blob, saved["days"]), Column.in_blob("q", blob, saved["offsets"]), Column.in_blob("q", blob, saved["lengths"])


def _utc_days(saved: dict, blobs: list) -> tuple:
    """The last run's ``(DayDigests, rows per day)``, read from the state file."""
    blob = blobs[saved["blob"]]
    return DayDigests(days=Column.in_blob("q", blob, saved["days"]), sums=Column.in_blob("B", blob, saved["sums"])), Column.in_blob("i", blob, saved["counts"])


def _day_counts(digests: DayDigests, old: DayDigests, old_counts: Column, changed: set, source, blocks: BlockFile) -> Column:
    """Rows per day of ``digests``: an unchanged day's as recorded (it is among the old
    days, walked along), a changed one's counted."""
    out = Column("i", blocks)
    was = zip(old.days, old_counts)
    prev = (None, 0)
    for d in digests:
        if d in changed:
            out.append(len(source.day(d)))
            continue
        while prev[0] != d:
            prev = next(was)
        out.append(prev[1])
    return out


def _near_days(local_days) -> set:
    """The UTC day numbers that can overlap these local days (the day before to the day
    after: any zone's offset is less than a day)."""
    out = set()
    for day in local_days:
        n = dt.date.fromisoformat(day).toordinal() - 719163
        out.update((n - 1, n, n + 1))
    return out


def _session_units(fine: dict, multi_form: bool, batch: "UnitRuns | None" = None, projects: "ProjectCounts | None" = None):
    """``session -> [rows, None, pps, periods in the multi-tool form (if asked), several
    tools?, n rows, record]``, or with ``batch`` that batch, filled; a session's record
    (see ``ProjectCounts``) is made with ``projects``' ids. Made SESSION_CHUNK fine
    accumulators (whole sessions) at a time: only a chunk's row accumulators (with their
    session sets and month tokens) and entries are ever objects, and its fine
    accumulators go once they are bytes (a first run's sessions are most of the
    document). Consumes ``fine``."""
    # fine's keys by session, each session's in fine's order (its project is its earliest call's)
    order = sorted(fine, key=_session_of)
    out: dict = {}
    pop = fine.pop  # a chunk's accumulators go with its entries
    lo, n = 0, len(order)
    while lo < n:
        hi = min(lo + SESSION_CHUNK, n)
        while hi < n and order[hi][4] == order[hi - 1][4]:  # a session's rows stay together
            hi += 1
        recs = projects.records(order[lo:hi])
        sess_rows, project_of = session_rows_of({k: pop(k) for k in order[lo:hi]})
        lo = hi
        table = _table(sess_rows, {}, session_project_field(project_of), with_periods=multi_form, project_of=project_of)
        del sess_rows
        units = _units(table)
        del table
        if batch is None:
            for k, u in units.items():
                out[k] = [u[0], None, u[2], u[1], u[2].count(b'"provider":') > 1, u[3], recs[k]]
        else:
            for k, u in units.items():
                u.append(recs[k])
            batch.add(units)
        _ISO.clear()  # a session's first and last call are its own: no use remembering them
    fine.clear()
    return out if batch is None else batch


def _day_entry(sub: dict | None, basis_by_day: dict | None, day: str) -> list | None:
    """A local day's state ``[day rows, project rows, basis]`` from its fine accumulators
    ``sub`` (None: it has none), or None if the day has nothing at all."""
    if sub is None and (basis_by_day is None or day not in basis_by_day):
        return None
    day_rows = day_rows_of(sub) if sub else {}
    if basis_by_day is None:
        basis = {}
        for (_d, provider, _m), a in day_rows.items():
            basis[provider] = basis.get(provider, 0) + a[3] + a[4] + a[5] + a[6] + a[7] + a[8]
    else:
        basis = basis_by_day.get(day, {})
    proj_rows = project_rows_of(sub) if sub else {}
    for a in proj_rows.values():
        a[_SESS] = None  # their distinct sessions are counted from the sessions' records (ProjectCounts)
    return [day_rows, proj_rows, basis]


class FullPass:
    """One pass over every rollup row, a UTC day (all files) at a time, keeping none: the
    fine accumulators live only while their local day is incomplete or their session
    still has calls to come. A local day is made as soon as no later row can fall in it;
    a session once it has had a UTC day without calls, SESSION_CHUNK or more at a time
    (one run of ``sessions``, a ``UnitRuns``); the blocks as their slots come
    (``OnlineBlocks``). A session seen again after it was made (it resumed a day later)
    is made anew at the end from the days since its first one, its earlier unit dropped.
    Without ``blocks`` (their units): the sessions only (in the multi-tool form, say)."""

    def __init__(self, source, of_slot, filters, names: dict, sessions: "UnitRuns", projects: "ProjectCounts", multi_form: bool,
                 blocks: "UnitRuns | None" = None, days: "DayStore | None" = None):
        with_days = blocks is not None
        self.projects = projects  # where the sessions' records' ids are
        self.of_slot, self.filters, self.names = of_slot, filters, names
        self.sessions, self.multi_form = sessions, multi_form
        self.fine: dict = {}
        self.last_seen: dict = {}  # session not made yet -> the last UTC day it has rows on
        self.first_seen: dict = {}  # and the first
        self.days_state = days  # with the blocks: where the days go
        self.day_counts = Column("i", source.blocks)  # rows per UTC day, in order
        self.basis_by_day = {} if filters.active and with_days else None  # every call, filtered out or not
        self.blocks = OnlineBlocks(of_slot, filters, blocks, source.blocks) if with_days else None
        self.with_days = with_days
        for d, rows in source.iter_utc_days():
            self._add_day(d, rows)
        if with_days:
            self._make_days(None)
            self._finish_days()
        self._make_sessions(list(self.last_seen), None)
        again = sessions.duplicates()  # made in several runs: they resumed after a day or more
        if again:
            self._redo_again(source, again)

    def _add_day(self, d: int, rows: list) -> None:
        self.day_counts.append(len(rows))
        if self.basis_by_day is not None:
            _add_basis(self.basis_by_day, rows, self.of_slot)
        fold_rows(rows, self.of_slot, self.filters, False, names=self.names, into=self.fine)
        last_seen, first_seen = self.last_seen, self.first_seen
        for s in {r[4] for r in rows}:
            if s not in last_seen:
                s = self.names.setdefault(s, s)
                first_seen[s] = d
            last_seen[s] = d
        if self.blocks is not None:
            self.blocks.add_day(rows)
        # Local days before the date of UTC day d get no more rows: a local date's calls
        # are in the UTC days from the day before it to the day after it (any zone's offset
        # is less than a day), whatever the order in which the local days come.
        complete = (dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat()
        if self.with_days:
            self._make_days(complete)
        idle = [s for s, last in last_seen.items() if last < d]
        if len(idle) >= SESSION_CHUNK:
            self._make_sessions(idle, complete)

    def _make_days(self, complete: str | None) -> None:
        """The local days before ``complete`` (None: all) not made yet."""
        subs: dict = {}
        days_state = self.days_state
        made: dict = {}  # day -> made already? (asked once a day: the store's places are columns)
        for k, a in self.fine.items():
            day = k[0]
            if complete is not None and day >= complete:
                continue
            done = made.get(day)
            if done is None:
                done = made[day] = day in days_state
            if not done:
                sub = subs.get(day)
                if sub is None:
                    sub = subs[day] = {}
                sub[k] = a
        for day in sorted(subs):
            days_state.put(day, marshal.dumps(_day_entry(subs[day], self.basis_by_day, day)))

    def _finish_days(self) -> None:
        """The days whose calls were all filtered out (they count in the basis)."""
        if self.basis_by_day is not None:
            for day in self.basis_by_day:
                if day not in self.days_state:
                    self.days_state.put(day, marshal.dumps(_day_entry(None, self.basis_by_day, day)))

    def _make_sessions(self, sessions: list, complete: str | None) -> None:
        """Make these sessions (whose local days are all made: before ``complete``) one run."""
        want = set(sessions)
        fine = self.fine
        if complete is not None:
            for k in fine:
                if k[0] >= complete:
                    want.discard(k[4])
        sub = {k: a for k, a in fine.items() if k[4] in want}
        for k in sub:
            del fine[k]
        first = min(self.first_seen[s] for s in want) if want else None
        names = self.names
        for s in want:
            del self.first_seen[s], self.last_seen[s]
            names.pop(s, None)  # its string lives on in its unit's key
        if sub:
            self.sessions.new_run(first)
            _session_units(sub, self.multi_form, self.sessions, projects=self.projects)

    def _redo_again(self, source, again: dict) -> None:
        """The sessions made in several runs (``again``: session -> the first of them):
        their units anew, from the first UTC day of those runs' sessions on, as one more
        run (their earlier units dropped)."""
        self.sessions.drop(set(again))
        first = min(self.sessions.run_tags[r] for r in again.values())
        fine: dict = {}
        for _d, rows in source.iter_utc_days(first):
            fold_rows([r for r in rows if r[4] in again], self.of_slot, self.filters, False, names=self.names, into=fine)
        self.sessions.new_run()
        _session_units(fine, self.multi_form, self.sessions, projects=self.projects)


class OnlineBlocks:
    """The 5-hour blocks of a full pass, made as the UTC days come (in order): per
    provider, ``assign_blocks`` run on the slots as they come (all of a slot's rows are in
    its UTC day), the rows folded into their block's accumulators right away, and the
    blocks that ended turned into units (``units``, a ``UnitRuns``), BLOCK_CHUNK or more
    at a time."""

    def __init__(self, of_slot, filters, units: "UnitRuns", columns: BlockFile | None = None):
        self.of_slot, self.filters = of_slot, filters
        self.columns = columns
        self.names: dict = {}  # one string per session id in the blocks not made yet
        self.current: dict = {}  # provider -> [its current block's start, its last call]
        self.firsts: dict = {}  # provider -> its blocks' [first slot, start, ...] (as the state keeps them)
        self.rows: dict = {}  # (block start, provider, model) -> accumulator
        self.ended: set = set()  # (start, provider) of the blocks that ended, not made yet
        self.units = units

    def add_day(self, rows: list) -> None:
        keeps = self.filters.keeps if self.filters.active else None
        of_slot = self.of_slot
        spans: dict = {}  # (provider, slot) -> [first call, last call] of the kept rows
        for r in rows:
            if keeps is not None and not keeps(of_slot(r[0])[0], r[1], r[2], r[3]):
                continue
            sk = (r[1], r[0])
            span = spans.get(sk)
            if span is None:
                spans[sk] = [r[8], r[9]]
            else:
                if r[8] < span[0]:
                    span[0] = r[8]
                if r[9] > span[1]:
                    span[1] = r[9]
        assigned: dict = {}
        for provider, slot in sorted(spans):
            first, slot_last = spans[(provider, slot)]
            cur = self.current.get(provider)
            # assign_blocks' rule, one slot at a time
            if cur is None or first - cur[0] > BLOCK_MS or first - cur[1] > BLOCK_MS:
                if cur is not None:
                    self.ended.add((cur[0], provider))
                cur = self.current[provider] = [first - first % HOUR_MS, slot_last]
                firsts = self.firsts.get(provider)
                if firsts is None:
                    firsts = self.firsts[provider] = Column("q", self.columns)
                firsts.extend((slot, cur[0]))
            elif slot_last > cur[1]:
                cur[1] = slot_last
            mine = assigned.get(provider)
            if mine is None:
                mine = assigned[provider] = {}
            mine[slot] = cur[0]
        if assigned:
            block_rows_of(assigned, rows, of_slot, self.filters, self.names, into=self.rows)
        if len(self.ended) >= BLOCK_CHUNK:
            self._make(self.ended)
            self.ended = set()

    def finish(self) -> "UnitRuns":
        """Every block made (the units)."""
        self._make(None)
        return self.units

    def _make(self, blocks: set | None) -> None:
        """Make these blocks (None: all left) one run of units."""
        rows = self.rows
        if blocks is None:
            sub, self.rows = rows, {}
        else:
            sub = {k: a for k, a in rows.items() if (k[0], k[1]) in blocks}
            for k in sub:
                del rows[k]
        self.names = {}
        if sub:
            self.units.new_run()
            self.units.add(_units(_blocks_as_table(sub, {}, None), by_provider=True))


class SpilledBytes:
    """Byte strings (marshalled keys, records) appended to a spill, where each ends in a
    ``Column``: read back in order a few at a time (``raws``), or one (``raw``)."""

    def __init__(self, spill: "view_cache.Spill", blocks: BlockFile):
        self.spill, self.ends = spill, Column("q", blocks)

    def __len__(self) -> int:
        return len(self.ends)

    def extend(self, raws: list) -> None:
        """Append these (one write to the spill)."""
        ends = list(accumulate(map(len, raws), initial=self.spill.size))
        self.spill.append(b"".join(raws))
        self.ends.extend(ends[1:])

    def raw(self, i: int) -> bytes:
        return self.spill.read(self.ends[i - 1] if i else 0, self.ends[i])

    def raws(self, a: int, b: int, step: int):
        """Items ``a:b``, ``step`` of them read at a time."""
        start = self.ends[a - 1] if a else 0
        for i in range(a, b, step):
            ends = self.ends[i:min(b, i + step)]
            data = self.spill.read(start, ends[-1])
            at = start
            for e in ends:
                yield data[at - start:e - start]
                at = e
            start = at


def _extend_rows(cols: tuple, rows: list) -> None:
    """Append ``rows`` (tuples of one item per column) to ``cols``, a column at a time; empty ``rows``."""
    for col, items in zip(cols, zip(*rows)):
        col.extend(items)
    rows.clear()


class UnitRuns:
    """Every unit of a report kind (a run that redoes every session, or every block),
    made in *runs* as sessions (blocks) end, each run in key order: their bytes are in
    three ``view_cache.Spill`` (rows, period-providers, periods in the multi-tool form),
    each piece followed by a comma; each unit's key and record (spilled too), row count
    and lengths (what the index needs) are ``Column``s, in a temp file past a block. The
    report is written merging the runs by key, each run's units read in order a few at a
    time and its bytes through a small buffer."""

    READ = 1 << 13  # bytes read from a run's spill at a time (a buffer per run), at most
    READ_ALL = 1 << 17  # the buffers of all the runs being read together, at most (1 KB each at least)
    SPILL_LIMIT = 1 << 14  # bytes kept in memory per spill (three a kind)
    AHEAD = 1 << 10  # units (keys, counts, lengths) read ahead for all the runs merged

    def __init__(self, directory: str, kind: str = "sessions", blocks: BlockFile | None = None):
        self.kind = kind
        self.dir = directory
        self.own_blocks = blocks is None  # else the run's, closed by its owner
        self.blocks = BlockFile(directory) if blocks is None else blocks
        self.keys = SpilledBytes(view_cache.Spill(directory, self.SPILL_LIMIT), self.blocks)  # marshalled
        self.recs = SpilledBytes(view_cache.Spill(directory, self.SPILL_LIMIT), self.blocks)  # the sessions' records (ProjectCounts)
        self.n = Column("i", self.blocks)
        self.several: list = []  # indices of the units whose session is in several tools
        self.lens = tuple(Column("i", self.blocks) for _ in range(3))  # rows, pps, periods
        self.spills = tuple(view_cache.Spill(directory, self.SPILL_LIMIT) for _ in range(3))
        self.index_spills = ()  # the index's keys and records once written (write)
        self.runs = [0]  # each run's first index
        self.run_at: list = [(0, 0, 0)]  # and where its pieces start in the three spills
        self.run_tags: list = [None]  # and what its maker said of it (new_run)
        self.dropped: set = set()  # indices of units made again later
        self.multi = False

    def new_run(self, tag=None) -> None:
        if len(self.n) != self.runs[-1]:
            self.runs.append(len(self.n))
            self.run_at.append(tuple(spill.size for spill in self.spills))
            self.run_tags.append(tag)
        else:
            self.run_tags[-1] = tag

    def _run(self, a: int, b: int, at: tuple, dropped, step: int, with_rest: bool):
        """Run ``a:b``'s units in order (but ``dropped``): ``(key, index, key's bytes)``,
        and ``with_rest`` its record's bytes, row count, lengths and where its pieces are
        in the spills (``at``: the run's first unit's)."""
        if not with_rest:
            for i, raw in zip(range(a, b), self.keys.raws(a, b, step)):
                if i not in dropped:
                    yield marshal.loads(raw), i, raw
            return
        at0, at1, at2 = at
        for j in range(a, b, step):  # ``step`` units read at a time
            k = min(b, j + step)
            keys = list(self.keys.raws(j, k, step))
            recs = list(self.recs.raws(j, k, step)) if len(self.recs) else [None] * (k - j)
            ns, lens0, lens1, lens2 = self.n[j:k], self.lens[0][j:k], self.lens[1][j:k], self.lens[2][j:k]
            for x in range(k - j):
                l0, l1, l2 = lens0[x], lens1[x], lens2[x]
                if j + x not in dropped:
                    yield marshal.loads(keys[x]), j + x, keys[x], recs[x], ns[x], (l0, l1, l2), (at0, at1, at2)
                at0 += l0
                at1 += l1
                at2 += l2

    def _merged(self, dropped=(), with_rest: bool = False):
        """What ``_run`` gives of every unit (but ``dropped``), in key order (the runs merged)."""
        bounds = self.runs + [len(self.n)]
        step = max(16, self.AHEAD // len(self.runs))
        runs = [self._run(a, b, at, dropped, step, with_rest) for a, b, at in zip(bounds, bounds[1:], self.run_at)]
        return heapq.merge(*runs)  # by (key, index): no two alike

    def duplicates(self) -> dict:
        """Keys with units in several runs -> the first of those runs."""
        out: dict = {}
        prev = first = None
        for k, i, _raw in self._merged():  # a key's units in index order: its first run first
            if k != prev:
                prev, first = k, i
            elif k not in out:
                out[k] = bisect.bisect_right(self.runs, first) - 1
        return out

    def drop(self, sessions: set) -> None:
        """Drop the units made so far of these sessions (made again in a later run)."""
        n = len(self.keys)
        self.dropped.update(i for i, raw in zip(range(n), self.keys.raws(0, n, 256)) if marshal.loads(raw) in sessions)

    def add(self, units: dict) -> None:
        """Units in key order, after those of this run so far."""
        several, first = self.several, len(self.n)
        keys, recs, counts, lens_rows, lens_pps, lens_periods = [], [], [], [], [], []  # the columns' appends, in one call each
        put_rows, put_pps, put_periods = (spill.put for spill in self.spills)
        for k, u in units.items():
            if u[2].count(b'"provider":') > 1:
                several.append(first + len(counts))
            keys.append(marshal.dumps(k))
            counts.append(u[3])
            lens_rows.append(put_rows(u[0]))
            lens_pps.append(put_pps(u[2]))
            lens_periods.append(put_periods(u[1]))
            if len(u) > 4:
                recs.append(marshal.dumps(u[4]))
        self.keys.extend(keys)
        if recs:
            self.recs.extend(recs)
        self.n.extend(counts)
        for col, lens in zip(self.lens, (lens_rows, lens_pps, lens_periods)):
            col.extend(lens)

    def records(self):
        """The sessions' records (not dropped)."""
        n = len(self.recs)
        return (marshal.loads(raw) for i, raw in zip(range(n), self.recs.raws(0, n, 256)) if i not in self.dropped)

    def several_keys(self) -> list:
        return [marshal.loads(self.keys.raw(i)) for i in self.several if i not in self.dropped]

    def write(self, fh, n: int, shared_head: bytes, shared_tail: bytes, pos: int, new_index: dict, stats) -> int:
        """Write the report (the ``n``-th) at ``pos`` of ``fh``; record its index
        in ``new_index``; return the position after it."""
        # the index in key order (its keys and records in spills until the state is
        # saved), with where each unit's pieces are: the runs merged once
        self.index_spills = tuple(view_cache.Spill(self.dir, self.SPILL_LIMIT) for _ in range(2))
        keys, recs = (KeysToSave(spill, self.blocks) for spill in self.index_spills)
        counts = Column("i", self.blocks)
        lens = tuple(Column("i", self.blocks) for _ in range(3))
        at = tuple(Column("q", self.blocks) for _ in range(3))
        cols = (counts, *lens, *at)
        pending: list = []  # (count, lengths, places) of units not in the columns yet
        for _k, _i, raw, rec, count, unit_lens, unit_at in self._merged(self.dropped, True):
            keys.append_raw(raw)
            if rec is not None:
                recs.append_raw(rec)
            pending.append((count, *unit_lens, *unit_at))
            if len(pending) >= self.AHEAD:
                _extend_rows(cols, pending)
        _extend_rows(cols, pending)
        idx = {"keys": keys.saved(), "n": counts, "lens": [None] * 3, "base": [0] * 3}
        if len(self.recs):
            idx["recs"] = recs.saved()
        stats.recomputed += sum(sum(c) for c in counts.chunks())
        head = (b"," if n else b"") + b'"' + self.kind.encode() + b'":' + shared_head + b',"period_providers":['
        fh.write(head)
        pos += len(head)
        periods = 2 if self.multi else 1
        for slot, which, tail in ((2, 1, b'],"periods":['), (1, periods, b'],"rows":['), (0, 0, None)):
            idx["base"][slot] = pos
            idx["lens"][slot] = lens[which]
            pos += self._write_merged(fh, which, at[which], lens[which])
            if tail:
                fh.write(tail)
                pos += len(tail)
        fh.write(shared_tail)
        new_index[self.kind] = idx
        return pos + len(shared_tail)

    def _write_merged(self, fh, which: int, at: Column, lens: Column) -> int:
        """Write spill ``which``'s pieces at ``at`` of ``lens`` bytes each, in order (but the
        last comma); return how many bytes. Pieces next to each other in the spill are one
        read."""
        spill = self.spills[which]
        starts = [run_at[which] for run_at in self.run_at]  # each run's first piece
        run_ends = starts[1:] + [spill.size]
        bufs: dict = {}  # run -> (offset, bytes read there); a run's goes once it is read to its end
        # the runs of sessions interleave (their keys are ids), those of blocks follow each other
        step = max(1 << 10, min(self.READ, self.READ_ALL // len(self.runs)))

        def take(r: int, a: int, b: int) -> memoryview:
            got = bufs.get(r)
            if got is None or a < got[0] or b > got[0] + len(got[1]):
                got = bufs[r] = (a, spill.read(a, max(b, min(a + step, run_ends[r]))))
            if b >= run_ends[r] - 1:
                del bufs[r]  # the run's last piece (the last of all has no comma)
            return memoryview(got[1])[a - got[0]:b - got[0]]

        held = None  # [a, b, run]: the range to write next (the last one loses its comma)
        total = 0
        for a, ln in zip(at, lens):
            if not ln:
                continue
            if held is not None:
                if a == held[1] and a - held[0] < step:
                    held[1] = a + ln  # one read for pieces next to each other (up to a buffer)
                    continue
                fh.write(take(held[2], held[0], held[1]))
                total += held[1] - held[0]
            held = [a, a + ln, bisect.bisect_right(starts, a) - 1]
        if held is not None:
            fh.write(take(held[2], held[0], held[1] - 1))
            total += held[1] - 1 - held[0]
        return total

    def close(self) -> None:
        for spill in (*self.spills, *self.index_spills, self.keys.spill, self.recs.spill):
            spill.close()
        if self.own_blocks:
            self.blocks.close()


# ------------------------------------------------------------------ rollup sources
# What build reads the rollup rows through. A day's *digest* is the SHA-1 of, per rollup
# file holding rows of that UTC day (in path order), its name, the length and the SHA-1 of
# the exact bytes of those rows (as orjson writes them: ``row],[row``): equal digests mean
# equal rows. Per day they are ``Column``s (``DayDigests``), not dicts.
# ``LazyRollups`` finds the days' byte ranges in the files without parsing them and parses
# only the days asked for; ``EagerRollups`` parses everything (the first run, or whenever
# the lazy reading meets anything unexpected).


class Fallback(Exception):
    """The lazy reading met something it cannot vouch for: read everything instead."""


DIGEST = 20  # bytes of a SHA-1


def _digest(parts) -> bytes:
    """``parts``: ``(file name, row bytes' length, their SHA-1)`` of one day, in path order."""
    h = hashlib.sha1()
    for name, n, sha in parts:
        h.update(b"%d:%s%d:" % (len(name), name, n))
        h.update(sha)
    return h.digest()


def _records(col: Column, width: int):
    """A "B" column's bytes as records of ``width`` bytes, in order."""
    buf = b""
    for chunk in col.chunks():
        buf += chunk.tobytes()
        n = len(buf) - len(buf) % width
        for k in range(0, n, width):
            yield buf[k:k + width]
        buf = buf[n:]


def _find(days: Column, d: int) -> int:
    """Where day ``d`` is in the sorted column ``days`` (-1: not there)."""
    i = bisect.bisect_left(days, d)
    return i if i < len(days) and days[i] == d else -1


class DayDigests:
    """Per UTC day with rows, in order: its number and digest (``_digest``), ``Column``s
    (28 bytes a day, not a dict's ~150): iterated (the days), asked by day (a binary
    search), walked as ``items``."""

    def __init__(self, blocks: BlockFile | None = None, days: Column | None = None, sums: Column | None = None):
        self.days = days if days is not None else Column("q", blocks)
        self.sums = sums if sums is not None else Column("B", blocks)

    def append(self, d: int, digest: bytes) -> None:
        self.days.append(d)
        self.sums.extend(digest)

    def __len__(self) -> int:
        return len(self.days)

    def __iter__(self):
        return iter(self.days)

    def __contains__(self, d) -> bool:
        return _find(self.days, d) >= 0

    def items(self):
        return zip(self.days, _records(self.sums, DIGEST))

    def __eq__(self, other) -> bool:
        return self.days == other.days and self.sums == other.sums

    __hash__ = None


def _changed(new: DayDigests, old: DayDigests) -> set:
    """The days whose digest differs (or that are in one only): both walked in order."""
    out = set()
    a, b = new.items(), old.items()
    x, y = next(a, None), next(b, None)
    while x is not None or y is not None:
        if y is None or (x is not None and x[0] < y[0]):
            out.add(x[0])
            x = next(a, None)
        elif x is None or y[0] < x[0]:
            out.add(y[0])
            y = next(b, None)
        else:
            if x[1] != y[1]:
                out.add(x[0])
            x, y = next(a, None), next(b, None)
    return out


class EagerRollups:
    def __init__(self, paths, blocks: BlockFile | None = None):
        from scripts.core.report_query import read_rollup_rows

        self.files = []  # per file: {utc day: rows}
        days: dict[int, list] = {}
        for path in sorted(paths):
            rows = read_rollup_rows([path])
            per: dict[int, list] = {}
            for r in rows:
                d = r[0] // DAY_MS
                lst = per.get(d)
                if lst is None:
                    per[d] = [r]
                else:
                    lst.append(r)
            name = os.path.basename(path).encode()
            for d, lst in per.items():
                piece = _dumps(lst)[2:-2]
                days.setdefault(d, []).append((name, len(piece), hashlib.sha1(piece).digest()))
            self.files.append(per)
        self.blocks = blocks
        self.digests = DayDigests(blocks)
        for d in sorted(days):
            self.digests.append(d, _digest(days[d]))
        self.n_rows = sum(len(lst) for per in self.files for lst in per.values())

    def close(self) -> None:
        pass

    def day(self, d) -> list:
        """The rows of UTC day ``d`` (file by file)."""
        out: list = []
        for per in self.files:
            out += per.get(d, ())
        return out

    def rows_of_days(self, days) -> list:
        """The rows of these days, file by file (each file's in its order)."""
        days = sorted(days)
        return [r for per in self.files for d in days for r in per.get(d, ())]

    def all(self) -> list:
        return [r for per in self.files for d in sorted(per) for r in per[d]]

    def forget(self) -> None:
        pass

    def iter_utc_days(self, first: int | None = None):
        """``(utc day, its rows in every file, file by file)``, days in order (from ``first``)."""
        for d in sorted(set().union(*self.files)):
            if first is None or d >= first:
                yield d, self.day(d)

    def count(self, d) -> int:
        return sum(len(per.get(d, ())) for per in self.files)


_HEAD = b'{"columns":' + orjson.dumps(list(COLUMNS)) + b',"rows":['  # how normalize writes a rollup (sorted keys, compact)
_TAIL = b'],"schema_version":'


def _slot_at(inner: bytes, pos: int) -> int:
    end = inner.find(b",", pos, pos + 24)
    if end < 0:
        raise Fallback("no slot")
    try:
        return int(inner[pos:end])
    except ValueError:
        raise Fallback("no slot") from None


def _day_ranges(inner: bytes, start: int = 0, end: int | None = None) -> list:
    """``[(utc day, start, end)]`` of the rows ``row],[row...`` in ``inner[start:end]``
    (sorted by slot): each day's first row by a binary search on byte offsets (the row
    starts after an offset are found with ``find``). Checked by the caller (parse or
    digest)."""
    n = len(inner) if end is None else end
    out = []
    pos = start
    find = inner.find
    guess = 1 << 14
    while pos < n:
        d = _slot_at(inner, pos) // DAY_MS
        target = (d + 1) * DAY_MS

        def next_start(x):
            p = find(b"],[", x - 3 if x > start + 3 else start, n)
            return n if p < 0 else p + 3

        def ok(x):  # the first row start >= x is the end or a row of a later day
            q = next_start(x)
            return q >= n or _slot_at(inner, q) >= target

        lo, hi = pos + 1, min(n, pos + guess)
        if not ok(hi):
            lo, hi = hi + 1, n
        while lo < hi:
            m = (lo + hi) >> 1
            if ok(m):
                hi = m
            else:
                lo = m + 1
        end = next_start(lo)
        if end < n:
            if inner[end - 3:end] != b"],[":
                raise Fallback("no row boundary")
            out.append((d, pos, end - 3))
        else:
            out.append((d, pos, n))
        if out[-1][1] >= out[-1][2] or (len(out) > 1 and out[-2][0] >= d):
            raise Fallback("rows not sorted")
        guess = max(1 << 10, 2 * (end - pos))
        pos = end
    return out


READ_BYTES = 1 << 16  # a rollup file is scanned this much at a time (its peak: a few times this)


def _scan_rollup(fd: int, blocks: BlockFile | None) -> tuple:
    """``((days, starts, ends), sums)``: each UTC day of a rollup file's rows, in order,
    their absolute offsets and their bytes' SHA-1 (``Column``s). Read READ_BYTES at a
    time: a day is complete once a later day's row starts after it; the bytes from the
    last day's start on are carried to the next read."""
    size = os.fstat(fd).st_size
    head = os.pread(fd, len(_HEAD) + 1, 0)
    if head[:len(_HEAD)] != _HEAD:
        raise Fallback("head")
    back = min(size, 4096)
    end_piece = os.pread(fd, back, size - back)
    k = end_piece.rfind(_TAIL)
    if k < 0 or size - back + k < len(_HEAD):
        raise Fallback("tail")
    try:
        tail = orjson.loads(b"{" + end_piece[k + 2:])
    except orjson.JSONDecodeError:
        raise Fallback("tail") from None
    if not isinstance(tail, dict) or tail.get("schema_version") != 1 or set(tail) != {"schema_version", "slot_ms", "source"}:
        raise Fallback("tail")
    k += size - back  # the rows array is bytes len(_HEAD) - 1 .. k: ``[]`` or ``[[...],...,[...]]``
    days, starts, ends, sums = Column("q", blocks), Column("q", blocks), Column("q", blocks), Column("B", blocks)
    out = ((days, starts, ends), sums)
    if k == len(_HEAD):
        return out
    start, end = len(_HEAD) + 1, k - 1
    if head[len(_HEAD):] != b"[" or end_piece[k - 1 - (size - back):k + 1 - (size - back)] != b"]]" or start >= end:
        raise Fallback("rows")
    base, buf, read_to, last = start, b"", start, None
    while True:
        if read_to < end:
            piece = os.pread(fd, min(READ_BYTES, end - read_to), read_to)
            if not piece:
                raise Fallback("file changed")
            read_to += len(piece)
            buf = buf + piece if buf else piece
        final = read_to >= end
        lim = len(buf) if final else buf.rfind(b"],[")
        if lim <= 0:
            continue  # no whole row yet
        ranges = _day_ranges(buf, 0, lim)
        mv = memoryview(buf)
        for d, a, b in ranges if final else ranges[:-1]:
            if last is not None and d <= last:
                raise Fallback("rows not sorted")
            last = d
            days.append(d)
            starts.append(base + a)
            ends.append(base + b)
            sums.extend(hashlib.sha1(mv[a:b]).digest())
        mv.release()
        if final:
            return out
        cut = ranges[-1][1]  # the last day may go on in the next read
        buf = buf[cut:]
        base += cut


class LazyRollups:
    """The rollup files' rows, parsed per UTC day on demand. Any day that is parsed is
    checked (its bytes are rows, each of that day); a day not parsed is trusted only
    through its digest (equal to the last run's, whose rows were checked). Since each
    day's bytes are checked to be whole rows, the day boundaries found are row
    boundaries. Anything else raises ``Fallback``."""

    def __init__(self, paths, blocks: BlockFile | None = None):
        self.files = []  # per file: an open descriptor (what was read, even if replaced since)
        self.ranges = []  # per file: its days, their starts and ends (absolute offsets), Columns
        self.blocks = blocks
        names, sums = [], []
        try:
            for path in sorted(paths):
                fh = open(path, "rb")
                self.files.append(fh)
                rng, file_sums = _scan_rollup(fh.fileno(), blocks)
                self.ranges.append(rng)
                names.append(os.path.basename(path).encode())
                sums.append(file_sums)
        except BaseException:
            self.close()
            raise
        self.digests = self._digests(names, sums)
        self._parsed: dict = {}  # (file index, day) -> rows

    def _digests(self, names: list, sums: list) -> DayDigests:
        """Every day's digest from the files' (walked together, day by day)."""
        out = DayDigests(self.blocks)
        walks = [zip(days, starts, ends, _records(s, DIGEST)) for (days, starts, ends), s in zip(self.ranges, sums)]
        heads = [next(w, None) for w in walks]
        while True:
            d = min((h[0] for h in heads if h is not None), default=None)
            if d is None:
                return out
            parts = []
            for i, h in enumerate(heads):
                if h is not None and h[0] == d:
                    parts.append((names[i], h[2] - h[1], h[3]))
                    heads[i] = next(walks[i], None)
            out.append(d, _digest(parts))

    def _range(self, i: int, d: int) -> tuple | None:
        """``(start, end)`` of day ``d`` in file ``i`` (None: it has no row there)."""
        days, starts, ends = self.ranges[i]
        j = _find(days, d)
        return None if j < 0 else (starts[j], ends[j])

    def close(self) -> None:
        for fh in self.files:
            fh.close()

    def _file_day(self, i: int, d: int) -> list:
        key = (i, d)
        rows = self._parsed.get(key)
        if rows is None:
            rows = self._parsed[key] = self._parse(i, d)
        return rows

    def _parse(self, i: int, d: int) -> list:
        ab = self._range(i, d)
        if ab is None:
            return []
        piece = os.pread(self.files[i].fileno(), ab[1] - ab[0], ab[0])
        if len(piece) != ab[1] - ab[0]:
            raise Fallback("file changed")
        try:
            rows = orjson.loads(b"[[" + piece + b"]]")
        except orjson.JSONDecodeError:
            raise Fallback("day does not parse") from None
        lo, hi = d * DAY_MS, d * DAY_MS + DAY_MS
        for r in rows:
            if r.__class__ is not list or len(r) < 16 or r[0].__class__ is not int or not lo <= r[0] < hi:
                raise Fallback("row outside its day")
        return rows

    def forget(self) -> None:
        """Drop the rows parsed so far (a day asked for again is parsed again)."""
        self._parsed.clear()

    def iter_utc_days(self, first: int | None = None):
        """``(utc day, its rows in every file, file by file)``, days in order (from
        ``first``): parsed on the way and not kept (what a full run reads)."""
        for d in self.digests:  # every day of every file
            if first is not None and d < first:
                continue
            out: list = []
            for i in range(len(self.files)):
                rows = self._parsed.get((i, d))
                out += rows if rows is not None else self._parse(i, d)
            yield d, out

    def day(self, d) -> list:
        out: list = []
        for i in range(len(self.files)):
            out += self._file_day(i, d)
        return out

    def rows_of_days(self, days) -> list:
        days = sorted(days)
        return [r for i in range(len(self.files)) for d in days for r in self._file_day(i, d)]

    def all(self) -> list:
        return [r for i, rng in enumerate(self.ranges) for d in rng[0] for r in self._file_day(i, d)]

    def count(self, d) -> int:
        return len(self.day(d))
