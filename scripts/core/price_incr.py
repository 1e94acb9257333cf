"""Incremental ``price run --out-dir``: price only the periods whose aggregate entries changed.

The reports are those ``costing.price_aggregates`` + ``render`` give, byte for byte (the
tests compare the two). A table's entries are grouped by period (a day, week, month,
session, project or block start): a period's priced rows, period and period-provider
entries and Markdown lines depend only on its own aggregate entries, the pricing book
and, for a provider with a subscription fee, the allocation basis. So each period is
keyed by a SHA-1 of its entries' bytes in ``aggregates.json`` (with the whole basis when
the book has a fee: then any new call re-prices every period, as a full run would). The
state (``cache/price/state.bin``, see view_cache.py) keeps per report the periods' keys
in order, each one's byte length in the previous ``reports/<kind>.json`` and ``.md`` (so a
run of unchanged periods is one slice of the previous file), and each one's money sums
(per model, per provider, in all; unpriced models) with the table's: the whole-range
entries are the previous sums less the periods gone plus the periods priced now
(integers, so exactly what a full run adds up). Per-period data is in ``Column``s
(columns.py), not objects, and stays on disk: a table's columns are one blob of the
state file, read a block at a time as that table is priced (``_unpack``); each period's
sums are marshalled on their own into another (only the few periods gone are read; the
next state gets the kept runs copied from it).
The state is keyed by the book's hash and the code: a price change re-prices everything
(and re-aggregates nothing).

A run told the file it priced keeps a hard link to it (``cache/price/aggregates.previous.json``,
recorded in the state by inode, size and mtime); the next run lays each region of the new
document over the same region of that one (``_walk``): the aggregate stage copies its
unchanged units as bytes, so long runs of periods are found unchanged by comparing bytes
(they keep their key), and only the rest is cut into entries and hashed. Not with a
subscription fee (every key depends on the basis), nor when the kept file is not the one
recorded: then every period is cut out and hashed.

The aggregates document is not parsed whole: its arrays of entries are cut out at the
byte level (objects whose values are scalars, lists and flat objects: ``},{"`` only
occurs between two of them, since a quote inside a string is escaped), and the rest (the
skeleton) is parsed and checked. Anything unexpected (a backslash in an entry, a
skeleton that does not match) prices the whole document as before. The command hands
the file over as a ``FileDocument``: it is scanned a block at a time for the arrays, and
a table's arrays are read out of it only when that table is priced.

No report, no document and no table's entries as objects are ever whole in memory: a
table's arrays are read from the file as they are used (``_Region``, a block at a
time), the periods to price are parsed and priced a chunk at a time (``_Batch``), their
output bytes and sums go to ``view_cache.Spill``s (unnamed temp files once past
``SPILL_BYTES``: a first run prices every session), and each report is written into its
temp file as soon as its table is priced (``_Outputs``; renamed at the end, every ``.md``
before any ``.json``). Nor is any per-period column: the cut, the layouts, the keys, the
places to price, the batch's offsets and the new index are ``Column``s in one temp file
(``columns.BlockFile``), the last index is read from the state file, each a block at a
time, and the new index is written to a spill as each table is done (``_pack``). What is
in memory per period is what changed: the periods that differ (a walk), and the keys
looked up among the last run's (all of a table's only when it is cut whole with a last
state: a walk that found too much changed).
"""
from __future__ import annotations

import contextlib
import hashlib
import heapq
import marshal
import os
import re
from array import array
from bisect import bisect_left
from itertools import accumulate, chain

import orjson

from scripts.core import view_cache
from scripts.core.columns import BlobParts, BlockFile, Column, Names, Prefix
from scripts.core.costing import REPORT_SCHEMA_VERSION, Pricer, price_entries, whole_range
from scripts.core.render import markdown_foot, markdown_head, markdown_rows
from scripts.shared_io import AtomicFile

STATE = "state.bin"
PREVIOUS = "aggregates.previous.json"  # a hard link to the document the state describes
_OPT = orjson.OPT_SORT_KEYS
_SEP = b'},{"'
_ARRAYS = (b'"period_providers":[', b'],"periods":[', b'],"rows":[', b'],"totals":{')
_PERIOD_RE = re.compile(rb'"period":"([^"]*)"')
CHUNK_ENTRIES = 250  # entries parsed and priced at a time (what a batch holds as objects)
CHUNK_BYTES = 1 << 15  # and their bytes at most: parsed, ~8x the JSON (a long history's days filled 250 entries with 64 KB)
LEN = "i"  # the typecode of per-period lengths and counts (4 bytes; offsets are "q")
SPILL_BYTES = 1 << 14  # a batch's bytes past this go to a temp file instead of memory


class Unsplittable(Exception):
    """The document is not in the form the byte-level cut expects: price it whole."""


def _dumps(obj) -> bytes:
    return orjson.dumps(obj, option=_OPT)


class FileDocument:
    """The aggregates document in an open file, read a piece at a time (``pread``): the
    byte-level cut finds its arrays by scanning blocks, and a table's arrays are read only
    when that table is priced, so the document is never whole in memory (7 MB at 400k
    calls). Offers what ``split`` uses of ``bytes``: ``len``, ``find``, slices."""

    BLOCK = 1 << 14

    def __init__(self, fd: int):
        self.fd = fd
        self.size = os.fstat(fd).st_size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, s: slice) -> bytes:
        start, stop, _ = s.indices(self.size)
        if stop <= start:
            return b""
        data = os.pread(self.fd, stop - start, start)
        while len(data) < stop - start:  # a regular file reads short only at its end
            more = os.pread(self.fd, stop - start - len(data), start + len(data))
            if not more:
                raise Unsplittable("the document ended early")
            data += more
        return data

    def find(self, sub: bytes, start: int = 0) -> int:
        pos = start
        while pos < self.size:
            block = self[pos:pos + self.BLOCK + len(sub) - 1]
            at = block.find(sub)
            if at >= 0:
                return pos + at
            pos += self.BLOCK
        return -1


def _same_bytes(data, a: int, b: int, n: int) -> bool:
    """``data[a:a + n] == data[b:b + n]``, a block at a time (not two whole copies)."""
    step = FileDocument.BLOCK
    return all(data[a + i:a + min(i + step, n)] == data[b + i:b + min(i + step, n)] for i in range(0, n, step))


def split(data):
    """``(skeleton document, {kind: spans})``: where each table's arrays (pps, periods,
    rows) lie in ``data`` (bytes or a FileDocument), as ``(start, end)`` of each; blocks
    and sessions, whose periods are their pps, have the pps span for both (see
    ``read_regions``)."""
    spans = []
    skeleton = []
    pos = 0
    at = data.find(b'"reports":{')
    if at < 0:
        raise Unsplittable("no reports")
    while True:
        a0 = data.find(_ARRAYS[0], at)
        if a0 < 0:
            break
        a1 = data.find(_ARRAYS[1], a0)
        a2 = data.find(_ARRAYS[2], a1)
        a3 = data.find(_ARRAYS[3], a2)
        if min(a1, a2, a3) < 0:
            raise Unsplittable("table arrays not found")
        s0, s1, s2 = a0 + len(_ARRAYS[0]), a1 + len(_ARRAYS[1]), a2 + len(_ARRAYS[2])
        # blocks and sessions list the same entries as periods and period_providers: one copy
        same = a2 - s1 == a1 - s0 and _same_bytes(data, s0, s1, a1 - s0)
        spans.append(((s0, a1), (s0, a1) if same else (s1, a2), (s2, a3)))
        skeleton += [data[pos:s0], data[a1:s1], data[a2:s2]]
        pos = at = a3
    skeleton.append(data[pos:])
    try:
        doc = orjson.loads(b"".join(skeleton))
    except orjson.JSONDecodeError:
        raise Unsplittable("skeleton is not JSON") from None
    if not isinstance(doc, dict) or doc.get("kind") != "aggregates" or doc.get("schema_version") != 1 or not isinstance(doc.get("reports"), dict):
        raise Unsplittable("not an aggregates document")
    kinds = sorted(doc["reports"])
    if len(kinds) != len(spans) or list(doc["reports"]) != kinds:
        raise Unsplittable("tables not where expected")
    for kind in kinds:
        t = doc["reports"][kind]
        if not isinstance(t, dict) or t.get("rows") != [] or t.get("periods") != [] or t.get("period_providers") != []:
            raise Unsplittable("tables not where expected")
    return doc, dict(zip(kinds, spans))


def read_regions(data, spans):
    """A table's arrays ``(pps, periods, rows)``, out of ``data``: of a FileDocument,
    ``_Region``s read only as they are used, else bytes (one object for pps and periods
    where they are the same bytes)."""
    (p0, p1), (q0, q1), (r0, r1) = spans
    if isinstance(data, FileDocument):
        pps = _Region(data.fd, p0, p1)
        return pps, pps if (q0, q1) == (p0, p1) else _Region(data.fd, q0, q1), _Region(data.fd, r0, r1)
    pps = data[p0:p1]
    return pps, pps if (q0, q1) == (p0, p1) else data[q0:q1], data[r0:r1]


def _groups(region, blocks: BlockFile | None = None):
    """``(periods, starts, ends, counts)``: per run of consecutive entries of one period,
    in ``region``'s order, the period (in a ``Names``), the run's byte range in
    ``region`` (whole objects, comma-separated) and its entries; ``Column``s in
    ``blocks``, not an object per run. Read a piece of about
    SPLIT_BYTES at a time (cut where entries meet): a region may be a ``_Region`` of the
    file, and splitting a whole one at once copied all of it (4.5 MB, sessions' rows at
    400k calls) beside it."""
    n = len(region)
    periods = Names(blocks)
    starts, ends, counts = Column("q", blocks), Column("q", blocks), Column(LEN, blocks)
    if not n:
        return periods, starts, ends, counts
    if b"\\" in region:
        raise Unsplittable("escaped characters")
    cur = None
    first = 0  # the current run's first entry
    i = 0  # entries so far
    pstart = 0  # where entry i's piece of ``region.split(_SEP)`` begins
    pos = 0
    while pos < n:
        # a piece's runs gathered here, then added to the columns in one call each
        names_p, starts_p, ends_p, counts_p = [], array("q"), array("q"), array(LEN)
        cut = region.find(_SEP, pos + SPLIT_BYTES) if pos + SPLIT_BYTES < n else -1
        stop = n if cut < 0 else cut
        # from the separator's quote on: an entry's first key may be its period
        piece = region[pos - 1 if pos else 0:stop]
        found = _PERIOD_RE.findall(piece)
        lens = list(map(len, piece.split(_SEP)))
        if pos:
            lens[0] -= 1
        if len(found) != len(lens):
            raise Unsplittable("entries without a period, or nested ones")
        for period, size in zip(found, lens):
            if period != cur:
                start = pstart - 2 if i else 0  # entry i (i > 0) starts at its separator's '{'
                if cur is not None:
                    ends_p.append(start - 1)
                    counts_p.append(i - first)
                names_p.append(period)
                starts_p.append(start)
                first = i
                cur = period
            i += 1
            pstart += size + len(_SEP)
        pos = stop + len(_SEP)
        periods.extend(names_p)
        starts.extend(starts_p)
        ends.extend(ends_p)
        counts.extend(counts_p)
    ends.append(n)
    counts.append(i - first)
    return periods, starts, ends, counts


SPLIT_BYTES = 1 << 14  # a region is split into its entries this much at a time


class _Region:
    """Bytes ``start:end`` of an open file, read as they are used, the last block read
    kept (a table's arrays are MBs: sessions' rows 4.5 MB at 400k calls): what the cut
    uses of ``bytes``: ``len``, slices, ``find``, ``in``."""

    BLOCK = 1 << 14

    def __init__(self, fd: int, start: int, end: int):
        self.fd, self.base, self.n = fd, start, end - start
        self.blk, self.at = b"", 0  # the last block read and where it starts

    def __len__(self) -> int:
        return self.n

    def _read(self, a: int, b: int) -> bytes:
        data = os.pread(self.fd, b - a, self.base + a)
        while len(data) < b - a:  # a regular file reads short only at its end
            more = os.pread(self.fd, b - a - len(data), self.base + a + len(data))
            if not more:
                raise Unsplittable("the document ended early")
            data += more
        return data

    def _block(self, a: int, need: int):
        """``(block, where it starts)`` holding bytes ``a:a + need`` (or to the end)."""
        b = min(a + need, self.n)
        if not (self.at <= a and b <= self.at + len(self.blk)):
            self.blk, self.at = self._read(a, min(self.n, a + max(self.BLOCK, need))), a
        return self.blk, self.at

    def __getitem__(self, s: slice) -> bytes:
        a, b, _ = s.indices(self.n)
        if b <= a:
            return b""
        if b - a > self.BLOCK:
            return self._read(a, b)
        blk, at = self._block(a, b - a)
        return blk[a - at:b - at]

    def find(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        end = self.n if end is None else min(end, self.n)
        k = len(sub)
        pos = start
        while end - pos >= k:
            blk, at = self._block(pos, k)
            stop = min(end, at + len(blk))
            i = blk.find(sub, pos - at, stop - at)
            if i >= 0:
                return at + i
            pos = stop - k + 1
        return -1

    def __contains__(self, sub: bytes) -> bool:
        return self.find(sub) >= 0


def _equal(x, i: int, y, j: int, size: int) -> bool:
    """``x[i:i + size] == y[j:j + size]`` (False past the end of either), a block at a
    time: x and y may be ``_Region``s of MBs."""
    if i + size > len(x) or j + size > len(y):
        return False
    step = _Region.BLOCK
    for k in range(0, size, step):
        m = min(step, size - k)
        if x[i + k:i + k + m] != y[j + k:j + k + m]:
            return False
    return True


class _Units:
    """Where the entries of each of a table's periods (``periods``, sorted) lie in its
    regions: per slot (rows, periods, pps) columns of start, end and entries, in periods
    order (start -1: none there); ``Column``s, not objects per period (a first run cuts
    every period of the history)."""

    def __init__(self, periods: Names, blocks: BlockFile | None = None):
        self.periods = periods
        self.blocks = blocks
        self.cols: list = [None, None, None]

    def set_slot(self, slot: int, cut) -> None:
        """Slot ``slot``'s columns from its region's cut (``_groups``)."""
        names, starts, ends, counts = cut
        if names is self.periods or names == self.periods:  # the usual case: every period has entries there
            self.cols[slot] = (starts, ends, counts)
            return
        cols = self.cols[slot] = (Column("q", self.blocks), Column("q", self.blocks), Column(LEN, self.blocks))
        if _increasing(names):  # the region's order is the periods': a cursor
            there = zip(names, starts, ends, counts)
            nxt = next(there, None)
            for p in self.periods:
                if nxt is not None and nxt[0] == p:
                    cols[0].append(nxt[1])
                    cols[1].append(nxt[2])
                    cols[2].append(nxt[3])
                    nxt = next(there, None)
                else:
                    cols[0].append(-1)
                    cols[1].append(0)
                    cols[2].append(0)
            return
        # a document ``aggregate`` did not write: its places through a dict, in memory
        m = len(self.periods)
        s, e, c = array("q", [-1]) * m, array("q", [0]) * m, array(LEN, [0]) * m
        for k, o in enumerate(_ordinals(names, self.periods)):
            s[o], e[o], c[o] = starts[k], ends[k], counts[k]
        for col, values in zip(cols, (s, e, c)):
            col.extend(values)

    def unit(self, o: int, _period=None):
        """``[rows range, periods range, pps range]`` of period ``o`` (``(start, end,
        entries)``, None where it has none)."""
        return [None if c[0][o] < 0 else (c[0][o], c[1][o], c[2][o]) for c in self.cols]

    def units(self, _periods):
        """Every period's ``unit``, in order (the columns read a block at a time)."""
        for r in zip(*self.cols[0], *self.cols[1], *self.cols[2]):
            yield [None if r[0] < 0 else r[0:3], None if r[3] < 0 else r[3:6], None if r[6] < 0 else r[6:9]]


class _ByPeriod(dict):
    """The units of a walked table's periods that differ (``{period: unit}``), asked like
    ``_Units``."""

    def unit(self, _o: int, period):
        return self.get(period)

    def units(self, periods):
        return map(self.get, periods)


def _increasing(names) -> bool:
    it = iter(names)
    before = next(it, None)
    for name in it:
        if not before < name:
            return False
        before = name
    return True


def _ordinals(names, periods):
    """Each of ``names``' place in ``periods`` (sorted, holding them all), ``names`` not in
    order (else a cursor does it: ``_Units.set_slot``)."""
    names = list(names)
    if len(set(names)) != len(names):
        raise Unsplittable("a period's entries are not together")
    at = {p: i for i, p in enumerate(periods)}
    return [at[p] for p in names]


def _units(regions, blocks: BlockFile | None = None):
    """``(periods in order, their _Units, layouts)`` (layouts: see ``_layout``, the pps
    one None when it is the periods one), all ``Column``s in ``blocks``."""
    pps, periods, rows = regions
    cuts = [_groups(rows, blocks)]
    cuts.append(_groups(periods, blocks))
    cuts.append(cuts[1] if pps is periods else _groups(pps, blocks))
    for slot in (1, 2):  # one list of the periods where regions have the same (sessions: 7,600)
        if cuts[slot][0] is not cuts[0][0] and cuts[slot][0] == cuts[0][0]:
            cuts[slot] = (cuts[0][0], *cuts[slot][1:])
    layouts = [_layout(cuts[0], blocks), _layout(cuts[1], blocks), None if pps is periods else _layout(cuts[2], blocks)]
    names = [c[0] for c in cuts]
    periods_now = _all_periods(names, blocks)
    units = _Units(periods_now, blocks)
    for slot in (0, 1, 2):
        units.set_slot(slot, cuts[slot])
    return periods_now, units, layouts


def _all_periods(names: list, blocks: BlockFile | None):
    """The periods of a table's regions (each a ``Names``), sorted, once each."""
    if names[0] is names[1] is names[2] and _increasing(names[0]):
        return names[0]  # blocks, sessions: every period in every region
    if all(map(_increasing, names)):
        out = Names(blocks)
        last = None
        for p in heapq.merge(*names):
            if p != last:
                out.append(p)
                last = p
        return out
    return Names.of(sorted(set(names[0]).union(names[1], names[2])), blocks)


def _layout(cut, blocks: BlockFile | None = None):
    """A region's periods in their order there: ``(periods, each one's bytes + 1 for its
    separator, each one's entries)``, what the next run lays its region over (``_walk``)."""
    names, starts, ends, counts = cut
    return names, Column.of(LEN, map(lambda a, b: b - a + 1, starts, ends), blocks), counts


class _Places:
    """A period's place in a list of periods (``get``, None if not there): by bisection
    where the list is sorted (a region's periods are, in the documents ``aggregate``
    writes), else through a dict."""

    def __init__(self, periods: list):
        self.periods = periods
        self.map = None if _increasing(periods) else dict(zip(periods, range(len(periods))))

    def get(self, period):
        if self.map is not None:
            return self.map.get(period)
        k = bisect_left(self.periods, period)
        return k if k < len(self.periods) and self.periods[k] == period else None


def _walk(new, old, layout, blocks: BlockFile | None = None):
    """Lay a region ``new`` over the same region of the last run's document (``old``),
    whose periods were ``layout``, to find the periods whose entries differ without
    cutting the whole region up: runs of periods whose bytes are the same are found by
    comparing bytes (a galloping search, each probe comparing only what the last left),
    only the rest is cut into entries. Either region may be a ``_Region`` of its file.
    ``(layout of new, periods whose entries differ, are new or are gone, spots)``, or
    None where the region is not as expected (the caller cuts it whole) or too much
    changed; ``spots``: ``{period: (start, end, entries)}`` of the periods it cut out of
    ``new`` (those that differ among them). The layouts are ``Column``s in ``blocks``."""
    if b"\\" in new:
        return None
    periods, lens, counts = layout
    m = len(periods)
    off = Column.of("q", accumulate(lens, initial=0), blocks)  # unit i is old[off[i]:off[i + 1] - 1]; off[m] = len(old) + 1
    where = _Places(periods)
    limit = max(64, m // 4)
    n = len(new)
    search = _PERIOD_RE.search
    findall = _PERIOD_RE.findall
    out_p = Names(blocks)
    out_l = Column(LEN, blocks)
    out_c = Column(LEN, blocks)
    changed: set = set()
    spots: dict = {}
    i = c = 0
    while c < n:
        # the longest run of units i..j-1 whose bytes are those at c
        j = i
        if i < m and _equal(old, off[i], new, c, lens[i] - 1):
            base = off[i]

            def more(lo, t):
                # units i..lo-1 are the same: are units lo..t-1 too (with the separators)?
                return _equal(old, off[lo] - 1, new, c + off[lo] - 1 - base, off[t] - off[lo])

            lo, step, hi = i + 1, 1, 0
            while lo < m:
                t = min(lo + step, m)
                if more(lo, t):
                    lo = t
                    step += step
                else:
                    hi = t
                    break
            if hi:
                while hi - lo > 1:
                    mid = (lo + hi) >> 1
                    if more(lo, mid):
                        lo = mid
                    else:
                        hi = mid
            j = lo
            e = c + off[j] - base - 1  # where the run ends in new
            if e < n:
                # the run ends where new's entry ends, and the next entry is another period's
                # (else its last period goes on: that one differs)
                if new[e - 1:e + 3] != _SEP:
                    j -= 1
                else:
                    s = new.find(_SEP, e + 1)
                    nxt = search(new[e + 1:n if s < 0 else s + 1])
                    if nxt is None:
                        return None
                    if nxt.group(1) == periods[j - 1]:
                        j -= 1
        if j > i:
            out_p.extend_from(periods, i, j)
            out_l.extend_range(lens, i, j)
            out_c.extend_range(counts, i, j)
            c += off[j] - off[i]
            i = j
            continue
        # entries that differ from unit i: the ones of the period at c
        first = None
        pos = c
        count = 0
        end = c
        while pos < n:
            s = new.find(_SEP, pos)
            stop = n if s < 0 else s + 1
            found = findall(new[pos:stop])
            if len(found) != 1:
                return None
            if first is None:
                first = found[0]
            elif found[0] != first:
                break
            count += 1
            end = stop
            pos = stop + 1
        k = where.get(first)
        if k is None:
            if first in changed:
                return None  # a new period's entries in two places
            changed.add(first)
        elif k < i:
            return None  # not in the order of the last run
        else:
            if k > i:
                changed.update(periods[i:k])  # gone from this region
            if end - c != lens[k] - 1 or not _equal(old, off[k], new, c, lens[k] - 1):
                changed.add(first)
            i = k + 1
        out_p.append(first)
        out_l.append(end - c + 1)
        out_c.append(count)
        spots[first] = (c, end, count)
        c = end + 1
        if len(changed) > limit:
            return None
    changed.update(periods[i:])
    return (out_p, out_l, out_c), changed, spots


def build(data, book, out_dir: str, cache_dir: str, on_unpriced: str, force: bool = False, source=None):
    """Write reports/<kind>.json and .md for the aggregates document ``data``; return
    ``(stats, first report's unpriced list)``. Raises Unsplittable before writing anything.

    ``data`` is the document: a FileDocument (read a piece at a time: what the command
    gives it), its bytes, or a list holding them (taken out of it).

    ``source``: ``(path, file_identity)`` of the file ``data`` was read from, if it is one:
    it is kept (a hard link in the cache) so that the next run finds the periods that
    changed by comparing bytes with it (``_walk``) rather than by cutting up and hashing
    every period. A FileDocument must still be that file when the reports are done
    (else Unsplittable: the caller prices the file whole)."""
    if isinstance(data, list):
        data = data.pop()
    doc, spans = split(data)
    stats = view_cache.Stats()
    described = book.describe()
    fees = any(book.subscription(p) for p in getattr(book, "providers", {}) or {})
    basis = doc.get("allocation_basis") or {}
    identity = {
        "stage": "price",
        "code": view_cache.code_hash("scripts.core.costing", "scripts.core.render", "scripts.core.pricing_book", "scripts.core.price_incr", "scripts.core.view_cache",
                                     "scripts.core.event"),
        "pricing": described,
        "out_dir": os.path.abspath(out_dir),
        "timezone": doc.get("timezone"),
        "filters": doc.get("filters"),
    }
    # the basis matters only where a fee is spread: then every period depends on it
    context = _dumps(basis) if fees else b""
    state_path = os.path.join(cache_dir, STATE)
    prev_path = os.path.join(cache_dir, PREVIOUS)
    state = _load_state(state_path, identity, force, stats)
    # what the new state's index refers to until it is written: the last state's sums left
    # in its file, this run's spilled ones (closed at the end)
    held = contextlib.ExitStack()
    for blob in state["blobs"] if state is not None else ():
        if isinstance(blob, view_cache.FileBlob):
            held.callback(blob.close)
    with held:
        # the last run's document, where the state says which periods its regions held (not
        # with a fee: then every key depends on the allocation basis); kept open, a table's
        # regions read from it as the table is laid over them
        prev = None
        if state is not None and not fees and state.get("previous") is not None:
            prev = view_cache.PreviousOutput.open(prev_path, state["previous"])
        pricer = Pricer(book, basis)
        os.makedirs(out_dir, exist_ok=True)  # a large batch spills there before any report is opened
        outputs = _Outputs(out_dir)
        try:
            blobs: list = []  # the new state's blobs (see _pack)
            lazy: list = []  # those of them the next run leaves in the file
            # each table's packed columns, written as it is done until the state is
            spill = view_cache.Spill(cache_dir, limit=SPILL_BYTES)
            held.callback(spill.close)
            blocks = BlockFile(cache_dir)  # every column of the run, past its block in memory
            held.callback(blocks.close)
            written, unpriced_now, new_index = _price_kinds(doc, data, spans, state, prev, context, described, pricer, out_dir, stats, outputs, blobs,
                                                            lazy, held, spill, blocks)
            if isinstance(data, FileDocument) and source is not None and view_cache.file_identity(data.fd) != list(source[1]):
                raise Unsplittable("the document changed while it was read")
            if unpriced_now and on_unpriced == "error":
                outputs.discard()
                return stats, unpriced_now, None
            # every .md before any .json: Make and refresh judge this stage by the .json files
            outputs.commit()
        except BaseException:
            outputs.discard()
            raise
        finally:
            if prev is not None:
                prev.close()
        files = {}
        for kind in written:
            for ext in ("json", "md"):
                files[f"{kind}.{ext}"] = view_cache.file_identity(os.path.join(out_dir, f"{kind}.{ext}"))
        previous = _keep(source, prev_path) if source is not None and not fees else None
        view_cache.save_parts(state_path, identity, {"index": new_index, "files": files, "previous": previous}, blobs, lazy)
        return stats, unpriced_now, sorted(written)


def _price_kinds(doc, data, spans, state, prev, context, described, pricer, out_dir, stats, outputs, blobs: list, lazy: list, held, spill, blocks):
    """Price each table's changed periods and write its report (JSON and Markdown) into
    ``outputs``, one table at a time (its arrays read out of ``data`` only then); ``(kinds
    written, first report's unpriced list, the new index)``, the index's packed arrays
    appended to ``blobs`` (see ``_pack`` for ``lazy``); what the index refers to until
    the state is written is closed by ``held`` (an ExitStack)."""
    new_index: dict = {}
    first_unpriced = None
    for kind in spans:
        table = doc["reports"][kind]
        pps_r, periods_r, rows_r = regions = read_regions(data, spans[kind])
        same = periods_r is pps_r  # read_regions gives one object for the same bytes
        mode = "pps" if same and periods_r else ("provider" if b'"provider":' in periods_r[:periods_r.find(b"}") + 1] else "period")
        old = None
        old_json = old_md = None
        if state is not None and kind in state["index"]:
            old = _unpack(state["index"].pop(kind), state["blobs"])
            old_json = view_cache.PreviousOutput.open(os.path.join(out_dir, f"{kind}.json"), state["files"].get(f"{kind}.json"))
            old_md = view_cache.PreviousOutput.open(os.path.join(out_dir, f"{kind}.md"), state["files"].get(f"{kind}.md"))
            if old_json is None or old_md is None:
                for prev_file in (old_json, old_md):
                    if prev_file is not None:
                        prev_file.close()
                old = None
                old_json = old_md = None
                stats.state = "output"
        old_keys = old["keys"] if old is not None else Column("B")
        n_old = len(old_keys) // KEY
        sums = _Sums(old["sums"] if old is not None else None)
        prefix = kind.encode() + (b"|same|" if same else b"|") + mode.encode() + b"|" + context
        walked = None
        if prev is not None and old is not None and old.get("walk") is not None and old["walk"][0] == prefix:
            walked = _walk_kind(regions, prev, old["walk"], same, blocks)
        if walked is None:
            periods_now, units, layouts = _units(regions, blocks)
            old_at = None
        else:
            # only the periods that differ are cut out and hashed; the others keep their key
            units, layouts, periods_now = walked
            old_at = _Ordinals(old["periods"])
        keys, olds, asked = _keys(periods_now, units, old_at, old_keys, prefix, (rows_r, periods_r, pps_r), blocks)
        found = _find_keys(old_keys, set(asked)) if asked and n_old else {}
        # per period in order: runs of periods kept from the last run are ["old", first,
        # last] (its ordinals), runs of periods priced now ["new", a, b] (their places in
        # ``todo``)
        segments: list = []
        todo = Column("q", blocks)  # the periods to price now (their places in periods_now)
        for o_new, o in enumerate(olds):
            if o < -1:
                o = found.get(asked[-2 - o], -1)
            last = segments[-1] if segments else None
            if o >= 0:
                if last is not None and last[0] == "old" and last[2] == o - 1:
                    last[2] = o
                else:
                    segments.append(["old", o, o])
                continue
            if last is not None and last[0] == "new":
                last[2] += 1
            else:
                segments.append(["new", len(todo), len(todo) + 1])
            todo.append(o_new)
        del olds, asked, found
        batch = _Batch(kind, todo, periods_now, units, (rows_r, periods_r, pps_r), same, mode, pricer, out_dir, blocks) if len(todo) else None
        if batch is not None:
            held.callback(batch.contrib.data.close)
        del todo, units, regions, pps_r, periods_r, rows_r
        # the money sums: the previous ones, less the periods gone, plus the new ones
        kept = bytearray(n_old)
        for seg in segments:
            if seg[0] == "old":
                kept[seg[1]:seg[2] + 1] = b"\x01" * (seg[2] - seg[1] + 1)
                stats.reused += sum(map(sum, old["n"].chunks(seg[1], seg[2] + 1)))
        if old is not None and kept.count(0):
            for i in range(n_old):
                if not kept[i]:
                    sums.add(marshal.loads(old["contrib"][i]), -1)
        if batch is not None:
            sums.add(batch.total, 1)
            stats.recomputed += batch.n_rows
        per_model, per_provider, grand, unpriced = sums.as_costing()
        whole = whole_range(table, pricer, [], [], [], per_model, per_provider, grand, unpriced)
        report = {
            "schema_version": REPORT_SCHEMA_VERSION, "kind": kind, "timezone": doc["timezone"], "filters": doc["filters"],
            "currency": "USD", "pricing": described, **whole,
        }
        if first_unpriced is None:
            first_unpriced = report["unpriced"]
        # the JSON, assembled in sorted key order
        idx = {"keys": keys, "periods": periods_now, "contrib": _BlobRuns(blocks), "n": Column(LEN, blocks), "lens": [None] * 4, "base": [0] * 4,
               "sums": sums.state(), "walk": (prefix, layouts, spans[kind])}
        del keys
        for seg in segments:
            if seg[0] == "old":
                idx["contrib"].extend(old["contrib"], seg[1], seg[2] + 1)
                idx["n"].extend_range(old["n"], seg[1], seg[2] + 1)
            else:
                idx["contrib"].extend(batch.contrib, seg[1], seg[2])
                idx["n"].extend_range(batch.n, seg[1], seg[2])
        out = _Assembly(outputs.open(f"{kind}.json"), old, old_json, segments, batch, idx, blocks)
        out.put(b'{"by_model":' + _dumps(report["by_model"]) + b',"by_provider":' + _dumps(report["by_provider"])
                + b',"currency":"USD","filters":' + _dumps(report["filters"]) + b',"kind":' + _dumps(kind) + b',"period_providers":[')
        out.entries(2)
        out.put(b'],"periods":[')
        out.entries(1)
        out.put(b'],"pricing":' + _dumps(described) + b',"rows":[')
        out.entries(0)
        out.put(b'],"schema_version":' + str(REPORT_SCHEMA_VERSION).encode() + b',"timezone":' + _dumps(report["timezone"])
                + b',"totals":' + _dumps(report["totals"]) + b',"unpriced":' + _dumps(report["unpriced"]) + b"}\n")
        if old_json is not None:
            old_json.close()
        # the Markdown: head, each period's lines, foot
        md = _Assembly(outputs.open(f"{kind}.md"), old, old_md, segments, batch, idx, blocks)
        md.put(("\n".join(markdown_head(report)) + "\n").encode())
        md.entries(3, trailing=True)
        md.put(("\n".join(markdown_foot(report)) + "\n").encode())
        if old_md is not None:
            old_md.close()
        if batch is not None:
            batch.close()
        new_index[kind] = _pack(idx, blobs, lazy, spill)
    return list(new_index), first_unpriced or [], new_index


def _keys(periods_now: Names, units, old_at, old_keys: Column, prefix: bytes, regions, blocks: BlockFile):
    """Each period's key, in order: the last run's where its bytes are the same (``units``
    has none for it: a walked table), else a SHA-1 of its entries. ``(keys, olds,
    asked)``: the keys (a ``Column`` of KEY-byte records), each period's ordinal in the
    last run where it is known, else ``-2 - i`` (its key is ``asked[i]``: found among the
    last run's keys in one pass, ``_find_keys``), -1 where there is no last run. A table
    cut whole with a last run asks every key: the one list that grows with the history,
    in a run that found too much changed to walk it."""
    rows_r, periods_r, pps_r = regions
    keys = Column("B", blocks)
    olds = Column("q", blocks)
    asked: list = []
    buf, olds_buf = bytearray(), array("q")  # keys hashed and ordinals not yet added to the columns
    run = None  # [first, last] ordinal of the last run's periods kept in a row, whose keys are still to copy
    sha1 = hashlib.sha1
    first_run = not len(old_keys)
    for period, u in zip(periods_now, units.units(periods_now)):
        if len(olds_buf) >= 1024:
            olds.extend(olds_buf)
            del olds_buf[:]
        if u is None:  # the same bytes as in the last run
            o = old_at.of(period)
            olds_buf.append(o)
            if run is not None and run[1] == o - 1:
                run[1] = o
                continue
            if run is not None:
                keys.extend_range(old_keys, run[0] * KEY, (run[1] + 1) * KEY)
            elif buf:
                keys.extend(buf)
                del buf[:]
            run = [o, o]
            continue
        if run is not None:
            keys.extend_range(old_keys, run[0] * KEY, (run[1] + 1) * KEY)
            run = None
        r, q, pp = u
        key = sha1(prefix + (rows_r[r[0]:r[1]] if r else b"\x00") + b"\x01" + (periods_r[q[0]:q[1]] if q else b"\x00")
                   + b"\x01" + (pps_r[pp[0]:pp[1]] if pp else b"\x00")).digest()
        buf += key
        if len(buf) >= 1 << 12:
            keys.extend(buf)
            del buf[:]
        if first_run:  # nothing to find it among
            olds_buf.append(-1)
            continue
        olds_buf.append(-2 - len(asked))
        asked.append(key)
    if run is not None:
        keys.extend_range(old_keys, run[0] * KEY, (run[1] + 1) * KEY)
    keys.extend(buf)
    olds.extend(olds_buf)
    return keys, olds, asked


class _Outputs:
    """The report files, each written into a temp file beside it as soon as its table is
    priced (so no report is held in memory) and renamed into place only by ``commit``:
    every ``.md`` before any ``.json``, since Make and refresh judge this stage by the
    ``.json`` files alone (a run killed midway leaves none of them new with a ``.md``
    missing). ``discard`` removes the temp files."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.files: list = []  # (name, AtomicFile)

    def open(self, name: str):
        af = AtomicFile(os.path.join(self.out_dir, name))
        fh = af.__enter__()
        self.files.append((name, af))
        return fh

    def commit(self) -> None:
        for ext in (".md", ".json"):
            for name, af in self.files:
                if name.endswith(ext):
                    af.__exit__(None, None, None)
        self.files = []

    def discard(self) -> None:
        for _name, af in self.files:
            af.__exit__(Exception, None, None)
        self.files = []


def _keep(source, prev_path: str):
    """Hard-link the document just priced as ``prev_path``; its identity if that is the
    file as it was read (else None: the next run cuts every region up)."""
    path, read_as = source
    # named like AtomicFile's temp files, so that a killed run's is cleaned up the same way
    tmp = os.path.join(os.path.dirname(prev_path), f".{os.path.basename(prev_path)}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    try:
        os.makedirs(os.path.dirname(prev_path) or ".", exist_ok=True)
        os.link(path, tmp)
        os.replace(tmp, prev_path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return None
    now = view_cache.file_identity(prev_path)
    return now if now == list(read_as) else None


def _walk_kind(regions, prev, walk, same: bool, blocks: BlockFile):
    """``(units of the periods that differ, layouts, all periods in order)`` of a table,
    its regions laid over the last run's (``_walk``; ``prev``: that document, open), or
    None to cut them whole."""
    _prefix, layouts, spans = walk
    pps, periods, rows = regions
    new = [None, None, None]
    spots = [None, None, None]
    changed: set = set()
    for slot, region, (start, end) in ((0, rows, spans[2]), (1, periods, spans[1]), (2, pps, spans[0])):
        if slot == 2 and same:
            new[2], spots[2] = new[1], spots[1]
            break
        # the last run's region read from its file as it is compared (not whole)
        r = None if end > os.fstat(prev.fd).st_size else _walk(region, _Region(prev.fd, start, end), layouts[slot], blocks)
        if r is None:
            return None
        new[slot], ch, spots[slot] = r
        if slot and new[slot][0] == new[0][0]:
            # one list of the periods where regions have the same (as _units): the state keeps it once
            new[slot] = (new[0][0], *new[slot][1:])
        changed |= ch
    units = _ByPeriod()
    for slot in range(3):
        if not changed:
            break
        if slot == 2 and same:
            for u in units.values():
                u[2] = u[1]
            break
        pl, ll, cl = new[slot]
        at = off = None  # where the periods are, asked only for one this region holds unchanged
        for p in changed:
            spot = spots[slot].get(p)
            if spot is None:
                if at is None:
                    at, off = _Places(pl), Column.of("q", accumulate(ll, initial=0), blocks)
                q = at.get(p)
                if q is None:
                    continue
                spot = (off[q], off[q] + ll[q] - 1, cl[q])
            u = units.get(p)
            if u is None:
                u = units[p] = [None, None, None]
            u[slot] = spot
    periods_now = _all_periods([new[0][0], new[1][0], new[2][0]], blocks)
    return units, [new[0], new[1], None if same else new[2]], periods_now


KEY = 20  # bytes of a period's key (a SHA-1 digest)


def _find_keys(keys: Column, wanted: set) -> dict:
    """``{key: ordinal}`` of the ``wanted`` keys among the last run's (``keys``: their
    KEY-byte records one after another), in one pass a block at a time."""
    found: dict = {}
    carry = b""
    o = 0
    for chunk in keys.chunks():
        buf = carry + chunk.tobytes()
        stop = len(buf) - len(buf) % KEY
        for at in range(0, stop, KEY):
            key = buf[at:at + KEY]
            if key in wanted and key not in found:
                found[key] = o
            o += 1
        carry = buf[stop:]
    return found


class _Ordinals:
    """The ordinal of a period among the last run's, asked in their (sorted) order: a
    cursor that reads them on, rather than a dict of every period."""

    def __init__(self, periods: Names):
        self.it, self.at, self.cur = iter(periods), -1, None

    def of(self, period) -> int:
        while self.cur is None or self.cur < period:
            self.cur = next(self.it, None)
            self.at += 1
            if self.cur is None:
                raise KeyError(period)
        if self.cur != period:
            raise KeyError(period)
        return self.at


class _Blobs:
    """A list of bytes kept as one blob and where each ends (the periods' marshalled money
    sums: thousands of small objects otherwise): ``data`` is the last state's blob left
    in its file (``view_cache.FileBlob``: the few periods gone are read from it), or this
    run's, written to a ``view_cache.Spill`` (a temp file once large); ``ends`` a
    ``Column``."""

    def __init__(self, data, ends: Column):
        self.data = data
        self.ends = ends

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> bytes:
        return self.data[self.ends[i - 1] if i else 0:self.ends[i]]

    def append(self, b: bytes) -> None:
        self.data.append(b)
        self.ends.append(self.data.size)

    def piece(self, a: int, b: int):
        """Items ``a:b`` as one piece of a state blob (``view_cache.save_parts``)."""
        start, stop = self.ends[a - 1] if a else 0, self.ends[b - 1]
        return self.data.piece(start, stop) if hasattr(self.data, "piece") else memoryview(self.data)[start:stop]


class _BlobRuns:
    """Runs of items of other ``_Blobs`` (the last run's index, this run's batch), views
    rather than copies: a new index's sums, written to the state as they are."""

    def __init__(self, blocks: BlockFile):
        self.pieces: list = []
        self.ends = Column("q", blocks)
        self.size = 0

    def extend(self, other: _Blobs, a: int, b: int) -> None:
        """Add items ``a:b`` of ``other``."""
        if b <= a:
            return
        start, stop = other.ends[a - 1] if a else 0, other.ends[b - 1]
        self.pieces.append(other.piece(a, b))
        shift = self.size - start
        for chunk in other.ends.chunks(a, b):
            self.ends.extend([e + shift for e in chunk])
        self.size += stop - start

    def state(self):
        return self.pieces, self.ends


def _pack(idx: dict, blobs: list, lazy: list, spill: view_cache.Spill) -> dict:
    """A table's index as the state keeps it: its columns one blob of the state
    (``columns.BlobParts``: copied to ``spill`` as the table is done), by their ``(start,
    end)`` in it; that blob and the sums' (read only for the periods that change) are
    left in the file by the next run, which reads a table's columns from it only as it
    prices that table."""
    data, ends = idx["contrib"].state()
    blobs.append(data)
    lazy.append(len(blobs) - 1)
    contrib = len(blobs) - 1
    parts = BlobParts(blobs, lazy, spill)
    put = parts.put
    put_names = {}  # id of a Names -> its places (the index's and the layouts' are one)

    def names(lst: Names):
        at = put_names.get(id(lst))
        if at is None:
            at = put_names[id(lst)] = (put(lst.data), put(lst.ends))
        return at

    prefix, layouts, spans = idx["walk"]
    return {**idx, "keys": put(idx["keys"]), "periods": names(idx["periods"]), "contrib": (contrib, put(ends)), "n": put(idx["n"]),
            "lens": [put(a) for a in idx["lens"]],
            "walk": (prefix, [None if lay is None else (names(lay[0]), put(lay[1]), put(lay[2])) for lay in layouts], spans),
            "blob": parts.blob}


def _unpack(saved: dict, blobs: list) -> dict:
    """``_pack``'s inverse: the table's columns left in its blob of the state file (closed
    with the others when the run ends), read a block at a time as they are asked."""
    table = blobs[saved["blob"]]
    blobs[saved["blob"]] = None

    def col(typecode: str, at) -> Column:
        return Column.in_blob(typecode, table, at)

    got_names: dict = {}

    def names(at) -> Names:
        if at not in got_names:
            got_names[at] = Names(data=col("B", at[0]), ends=col("q", at[1]))
        return got_names[at]

    prefix, layouts, spans = saved["walk"]
    return {**saved, "keys": col("B", saved["keys"]), "periods": names(saved["periods"]),
            "contrib": _Blobs(blobs[saved["contrib"][0]], col("q", saved["contrib"][1])), "n": col(LEN, saved["n"]),
            "lens": [col(LEN, at) for at in saved["lens"]],
            "walk": (prefix, [None if lay is None else (names(lay[0]), col(LEN, lay[1]), col(LEN, lay[2])) for lay in layouts], spans)}


def _load_state(path: str, identity: dict, force: bool, stats):
    """The last run's state (its packed arrays under ``"blobs"``), or None; ``stats.state``
    says which and why (as ``view_cache.load_unless_forced``)."""
    if force:
        stats.state = "bypassed"
        return None
    loaded, why = view_cache.load_parts(path, identity, lazy=True)
    stats.state = why or "used"
    if loaded is None:
        return None
    state, blobs = loaded
    state["blobs"] = blobs
    return state


class _Batch:
    """The periods priced in this run, a chunk of them at a time (so that only one chunk's
    entries are ever objects): per slot (rows, periods, period_providers, Markdown lines)
    the entries' bytes, each followed by its separator (``,`` or a newline), in a
    ``view_cache.Spill`` (in an unnamed temp file beside the reports once past
    SPILL_BYTES: a first run's batch is every period of the history), and where each
    period's entries start there (``starts[slot][j]``; the last item is the end), so that
    any run of periods is one byte range; per period its money sums and row count; the
    sums of them all. ``todo``: the periods to price, as places in ``order`` (the table's
    periods) and ``units``. The per-period numbers are ``Column``s in ``blocks``."""

    def __init__(self, kind: str, todo: Column, order: Names, units, regions, same: bool, mode: str, pricer, spill_dir: str, blocks: BlockFile):
        rows_r, periods_r, pps_r = regions
        def store():
            return view_cache.Spill(spill_dir, limit=SPILL_BYTES)

        pps_store = store()
        self.stores = [store(), pps_store if same else store(), pps_store, store()]
        pps_starts = Column.of("q", [0], blocks)
        self.starts = [Column.of("q", [0], blocks), pps_starts if same else Column.of("q", [0], blocks), pps_starts, Column.of("q", [0], blocks)]
        self.n = Column(LEN, blocks)  # each period's rows
        self.n_rows = 0
        # each period's sums marshalled on their own, into a spill: the next run reads
        # only the few periods that change (to take them off the sums) from the state
        self.contrib = _Blobs(store(), Column("q", blocks))
        empty = marshal.dumps(({}, {}, [0, 0, 0, 0, 0], {}))
        sums = _Sums()
        for part in _parts(todo, order, units):
            mini = {"rows": orjson.loads(b"[" + _join(rows_r, part, 0) + b"]"),
                    "period_providers": orjson.loads(b"[" + _join(pps_r, part, 2) + b"]")}
            mini["periods"] = mini["period_providers"] if same else orjson.loads(b"[" + _join(periods_r, part, 1) + b"]")
            per_unit: dict = {}
            rows_out, periods, pps, pm, pp, g, unp = price_entries(mini, pricer, mode, per_unit)
            del mini
            counts = [[u[slot][2] if u[slot] is not None else 0 for _k, _p, u in part] for slot in (0, 1, 2)]
            self._add(0, rows_out, counts[0])
            if not same:
                self._add(1, periods, counts[1])
            self._add(2, pps, counts[2])
            self._add_markdown(kind, rows_out, counts[0])
            if self.starts[0][-1] != self.stores[0].size or self.starts[2][-1] != self.stores[2].size:
                raise AssertionError("priced entries do not line up with their periods")
            self.n.extend(counts[0])
            self.n_rows += len(rows_out)
            del rows_out, periods, pps
            # per unpriced model, how many periods hold it (what a period gone takes off)
            holders: dict = {}
            for _k, period, _u in part:
                pu = per_unit.get(period.decode())
                if pu is None:
                    self.contrib.append(empty)
                    continue
                gr = pu[2]
                self.contrib.append(marshal.dumps((pu[0], pu[1], [gr[0], int(gr[1]), gr[2], gr[3], gr[4]], pu[3])))
                for k in pu[3]:
                    holders[k] = holders.get(k, 0) + 1
            sums.add((pm, pp, g, {k: (v["events"], v["tokens"], holders[k]) for k, v in unp.items()}), 1)
        self.total = (sums.model, sums.provider, sums.grand, {k: tuple(v) for k, v in sums.unpriced.items()})

    def _add(self, slot: int, entries: list, counts: list[int]) -> None:
        """Store a chunk's entries of ``slot``; ``counts``: how many each period has."""
        whole = _dumps(entries)
        sizes = _entry_sizes(whole, entries)
        store = self.stores[slot]
        if entries:
            store.append(whole[1:-1])
            store.append(b",")
        self._starts(slot, sizes, counts)

    def _add_markdown(self, kind: str, rows_out: list, counts: list[int]) -> None:
        if not rows_out:
            self._starts(3, [], counts)
            return
        lines = markdown_rows(kind, rows_out)
        text = "\n".join(lines)
        md = (text + "\n").encode()
        self.stores[3].append(md)
        self._starts(3, [len(x) + 1 for x in lines] if len(md) == len(text) + 1 else [len(x.encode()) + 1 for x in lines], counts)

    def _starts(self, slot: int, sizes: list[int], counts: list[int]) -> None:
        st = self.starts[slot]
        at = list(accumulate(sizes, initial=st[-1]))  # at[i]: where entry i of the chunk starts
        st.extend(at[c] for c in accumulate(counts))

    def close(self) -> None:
        for store in self.stores:
            store.close()


def _picked(todo: Column, periods: Names, units):
    """``(period, unit)`` of each place in ``todo`` (increasing)."""
    if len(todo) * 8 <= len(periods):
        for o in todo:
            period = periods[o]
            yield period, units.unit(o, period)
        return
    wanted = iter(todo)
    nxt = next(wanted, None)
    for o, (period, u) in enumerate(zip(periods, units.units(periods))):
        if o == nxt:
            yield period, u
            nxt = next(wanted, None)
            if nxt is None:
                return


def _parts(todo: Column, periods: Names, units):
    """The periods to price (``todo``: places in ``periods``, in order), ``(None, period,
    unit)`` each, in lists holding about CHUNK_ENTRIES entries or CHUNK_BYTES of them,
    whichever comes first (a period is never split): read along the table's periods where
    most of them are priced (a first run prices every one), else each read at its place."""
    part: list = []
    n = size = 0
    for period, u in _picked(todo, periods, units):
        part.append((None, period, u))
        for r in u:
            if r is not None:
                n += r[2]
                size += r[1] - r[0]
        if n >= CHUNK_ENTRIES or size >= CHUNK_BYTES:
            yield part
            part, n, size = [], 0, 0
    if part:
        yield part


def _join(region: bytes, part: list, slot: int) -> bytes:
    """The entries of ``slot`` of the periods in ``part``, comma-separated: one slice of
    ``region`` for each run of periods that lie next to each other there."""
    pieces = []
    start = end = -2
    for _k, _p, u in part:
        r = u[slot]
        if r is None:
            continue
        if r[0] == end + 1:
            end = r[1]
            continue
        if end >= 0:
            pieces.append(region[start:end])
        start, end = r[0], r[1]
    if end >= 0:
        pieces.append(region[start:end])
    return pieces[0] if len(pieces) == 1 else b",".join(pieces)


def _entry_sizes(whole: bytes, entries: list) -> list[int]:
    """Each entry's length in the dump of the list, plus its separator (see
    view_cache.entry_bytes for why ``},{"`` separates them)."""
    if not entries:
        return []
    pieces = whole[3:-2].split(_SEP)
    if len(pieces) != len(entries):
        raise Unsplittable("entries with nested objects")
    return [n + 4 for n in map(len, pieces)]


class _Sums:
    """A table's money sums over its periods, kept so that a run only adds the periods
    priced anew and takes off the ones gone: ``[var, n with var, sub, savings, unpriced
    tokens]`` per (provider, model), per provider and in all; ``[events, tokens, n]`` per
    unpriced model. Integers, so the result is exactly the sum a full run makes."""

    def __init__(self, saved=None):
        if saved is None:
            self.model, self.provider, self.grand, self.unpriced = {}, {}, [0, 0, 0, 0, 0], {}
        else:
            self.model = {k: list(v) for k, v in saved[0]}
            self.provider = {k: list(v) for k, v in saved[1]}
            self.grand = list(saved[2])
            self.unpriced = {k: list(v) for k, v in saved[3]}

    def add(self, contrib, sign: int) -> None:
        for acc, items in ((self.model, contrib[0]), (self.provider, contrib[1])):
            for k, v in items.items():
                a = acc.get(k)
                if a is None:
                    a = acc[k] = [0, 0, 0, 0, 0]
                a[0] += sign * v[0]
                a[1] += sign * int(v[1])
                a[2] += sign * v[2]
                a[3] += sign * v[3]
                a[4] += sign * v[4]
        for i in range(5):
            self.grand[i] += sign * contrib[2][i]
        for k, v in contrib[3].items():
            a = self.unpriced.get(k)
            if a is None:
                a = self.unpriced[k] = [0, 0, 0]
            a[0] += sign * v[0]
            a[1] += sign * v[1]
            # how many periods hold the model: a period's own sums are (events, tokens), a
            # batch's say how many of its periods held it
            a[2] += sign * (v[2] if len(v) > 2 else 1)

    def as_costing(self):
        """per_model, per_provider, grand and unpriced as costing.whole_range takes them."""
        def money(v):
            return [v[0], v[1] > 0, v[2], v[3], v[4]]

        g = self.grand
        unpriced = {k: {"events": v[0], "model": k[1], "provider": k[0], "tokens": v[1]} for k, v in self.unpriced.items() if v[2] > 0}
        return ({k: money(v) for k, v in self.model.items()}, {k: money(v) for k, v in self.provider.items()},
                [g[0], g[1] > 0, g[2], g[3], g[4]], unpriced)

    def state(self):
        return (sorted(self.model.items()), sorted(self.provider.items()), self.grand,
                sorted((k, v) for k, v in self.unpriced.items() if v[2] > 0))


class _Assembly:
    """An output written from runs of the previous output's bytes and runs of new entries.

    Per slot (0 rows, 1 periods, 2 period_providers, 3 Markdown lines) the index keeps
    where its entries begin (``base``) and each period's length with one separator
    (``lens``: 0 for a period with no entry there), so a run of periods kept from the
    last run is one slice of the previous output."""

    def __init__(self, fh, old, old_file, segments, batch, idx, blocks: BlockFile):
        self.fh = fh
        self.pos = 0
        self.old, self.old_file, self.segments, self.batch, self.idx = old, old_file, segments, batch, idx
        self.blocks = blocks

    def put(self, b: bytes) -> None:
        self.fh.write(b)
        self.pos += len(b)

    def entries(self, slot: int, trailing: bool = False) -> None:
        """Each period's entries of ``slot``, comma-separated (or each ended by a newline)."""
        write = self.fh.write
        lens = Column(LEN, self.blocks)
        self.idx["base"][slot] = self.pos
        wrote = False
        cut = 0 if trailing else 1  # a run's bytes end with its last entry's separator
        if self.old is not None:
            old_lens = self.old["lens"][slot]
            base = self.old["base"][slot]
            pre = Prefix(old_lens)
        batch = self.batch
        for kind, i, k in self.segments:
            if kind == "old":
                k += 1
                lens.extend_range(old_lens, i, k)
                a, b = pre.at(i), pre.at(k)
                if b == a:
                    continue
                if wrote and not trailing:
                    write(b",")
                    self.pos += 1
                self.old_file.copy(self.fh, base + a, base + b - cut)
                self.pos += b - cut - a
            else:
                st = batch.starts[slot]
                before = st[i]
                for chunk in st.chunks(i + 1, k + 1):  # each period's length: where the next starts less where it does
                    lens.extend(map(int.__sub__, chunk, chain((before,), chunk)))
                    before = chunk[-1]
                if st[k] == st[i]:
                    continue
                if wrote and not trailing:
                    write(b",")
                    self.pos += 1
                batch.stores[slot].write_range(self.fh, st[i], st[k] - cut)
                self.pos += st[k] - cut - st[i]
            wrote = True
        self.idx["lens"][slot] = lens
