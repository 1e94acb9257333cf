"""Token totals by period, pricing-independent: the arithmetic behind ``aggregate``.

Input is slot rollup rows (see rollup.py); output is one table per report kind
(daily, weekly, monthly, sessions, projects, blocks). Every table has the same shape:

- ``rows``: one per (period, provider, model)
- ``periods``: one per period (all providers and models together)
- ``period_providers``: one per (period, provider)
- ``by_provider`` / ``by_model``: the whole range, per provider / per model
- ``totals``: everything

Each entry carries every usage bucket, ``total_tokens``, ``events``, ``sessions``
(distinct) and the first and last call time. ``rows`` also carry ``month_tokens`` (their
tokens per month, which is what a subscription fee is spread by) and ``long_context``
(the part of their usage from requests whose prompt exceeded a long-context threshold,
for tiered prices): money is computed per row and summed, so nothing else needs them.

How it stays fast (a 200k-call history is ~16k rollup rows): one pass folds rollup rows
into *fine* accumulators per (local day, provider, model, project, session); days,
projects and sessions are grouped from those, weeks and months from the day rows, and
the whole-range tables (by provider, by model, totals) are computed once and shared by
every report, since every report covers the same filtered calls. Output entries are
built as dict literals, and a period with a single row reuses that row's accumulator.
"""
from __future__ import annotations

import datetime as dt
import gc
from typing import Iterable

from scripts.core.periods import Periods

AGGREGATES_SCHEMA_VERSION = 1
REPORT_KINDS = ("daily", "weekly", "monthly", "sessions", "projects", "blocks")
BLOCK_MS = 5 * 3600 * 1000
HOUR_MS = 3600 * 1000
DAY_MS = 86_400_000
SLOT_MS = 900_000
NO_PROJECT = "(none)"

# An accumulator is a list:
#   [events, first_ms, last_ms, u0..u7 (USAGE_KEYS order), long_context, sessions, month_tokens]
# long_context: None or {ctx_class: [8 usage counts]}; sessions: set of session ids;
# month_tokens: {YYYY-MM: tokens} (None on fine accumulators, whose month is their day's).
_LC, _SESS, _MONTH = 11, 12, 13


# a memo's entries at most (slots: ~3 weeks' worth; a pass asks for a few days' at a time);
# cleared when full, so it weighs the same (~0.2 MB with the timestamps') whatever the history
CACHE_ENTRIES = 1 << 11
DAY_ENTRIES = 1 << 6  # days remembered by a SlotCalendar (their names, week, month)


class Filters:
    def __init__(self, since: str | None = None, until: str | None = None, providers=(), models=(), projects=()):
        self.since = since or None
        self.until = until or None
        self.providers = frozenset(providers or ())
        self.models = frozenset(models or ())
        self.projects = frozenset(projects or ())

    def as_dict(self) -> dict:
        return {
            "since": self.since,
            "until": self.until,
            "providers": sorted(self.providers),
            "models": sorted(self.models),
            "projects": sorted(self.projects),
        }

    @property
    def active(self) -> bool:
        return bool(self.since or self.until or self.providers or self.models or self.projects)

    def keeps(self, day: str, provider: str, model: str, project) -> bool:
        if self.since and day < self.since:
            return False
        if self.until and day > self.until:
            return False
        if self.providers and provider not in self.providers:
            return False
        if self.models and model not in self.models:
            return False
        if self.projects and (project or "") not in self.projects and not (project is None and NO_PROJECT in self.projects):
            return False
        return True


# ------------------------------------------------------------------ calendar
class SlotCalendar:
    """``(day, iso_week, month)`` of 15-minute UTC slots in one zone, fast.

    The zone's UTC offset is looked up once per UTC hour (and per slot only in an hour
    where it changes); a local day number maps to its strings once."""

    def __init__(self, zone_name: str):
        self.periods = Periods(zone_name)
        self.utc = zone_name == "UTC"
        self._slot: dict[int, tuple[str, str, str]] = {}
        self._hour: dict[int, int | None] = {}
        self._day: dict[int, tuple[str, str, str]] = {}

    def _offset(self, hour_ms: int) -> int | None:
        tz = self.periods.tz
        a = dt.datetime.fromtimestamp(hour_ms / 1000, tz=tz).utcoffset()
        b = dt.datetime.fromtimestamp((hour_ms + HOUR_MS - 1) / 1000, tz=tz).utcoffset()
        return int(a.total_seconds() * 1000) if a == b else None

    def _of_day(self, day_num: int) -> tuple[str, str, str]:
        hit = self._day.get(day_num)
        if hit is None:
            if len(self._day) >= DAY_ENTRIES:
                self._day.clear()  # days are asked in time order: a history's every day is not needed
            d = dt.date(1970, 1, 1) + dt.timedelta(days=day_num)
            y, w, _ = d.isocalendar()
            iso = d.isoformat()
            hit = self._day[day_num] = (iso, f"{y}-W{w:02d}", iso[:7])
        return hit

    def of_slot(self, slot: int) -> tuple[str, str, str]:
        hit = self._slot.get(slot)
        if hit is not None:
            return hit
        if self.utc:
            hit = self._of_day(slot // DAY_MS)
        else:
            hour = slot - slot % HOUR_MS
            off = self._hour.get(hour, False)
            if off is False:
                if len(self._hour) >= CACHE_ENTRIES:
                    self._hour.clear()
                off = self._hour[hour] = self._offset(hour)
            hit = self._of_day((slot + off) // DAY_MS) if off is not None else self.periods.of_ms(slot)
        if len(self._slot) >= CACHE_ENTRIES:
            self._slot.clear()  # slots come in time order: the recent ones are what is asked again
        self._slot[slot] = hit
        return hit


_DAY_TEXT: dict[int, str] = {}
_ISO: dict[int, str] = {}


def iso_ms(ms: int) -> str:
    """``2026-08-06T17:49:45.767Z`` (what event.format_ms writes), memoized."""
    hit = _ISO.get(ms)
    if hit is not None:
        return hit
    d, r = divmod(ms, DAY_MS)
    day = _DAY_TEXT.get(d)
    if day is None:
        if len(_DAY_TEXT) >= DAY_ENTRIES:
            _DAY_TEXT.clear()
        day = _DAY_TEXT[d] = (dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat()
    h, r = divmod(r, HOUR_MS)
    m, r = divmod(r, 60_000)
    s, f = divmod(r, 1000)
    if len(_ISO) >= CACHE_ENTRIES:
        _ISO.clear()
    hit = _ISO[ms] = f"{day}T{h:02d}:{m:02d}:{s:02d}.{f:03d}Z"
    return hit


# ------------------------------------------------------------------ accumulators
def _fold_row(a: list, row: list) -> None:
    """Add a rollup row's values (events, first/last time, usage) into accumulator ``a``."""
    a[0] += row[7]
    if row[8] < a[1]:
        a[1] = row[8]
    if row[9] > a[2]:
        a[2] = row[9]
    a[3] += row[10]
    a[4] += row[11]
    a[5] += row[12]
    a[6] += row[13]
    a[7] += row[14]
    a[8] += row[15]
    a[9] += row[16]
    a[10] += row[17]


def _fold(a: list, b: list) -> None:
    """Add accumulator ``b`` into ``a`` (usage, counts, times, long context)."""
    a[0] += b[0]
    if b[1] < a[1]:
        a[1] = b[1]
    if b[2] > a[2]:
        a[2] = b[2]
    a[3] += b[3]
    a[4] += b[4]
    a[5] += b[5]
    a[6] += b[6]
    a[7] += b[7]
    a[8] += b[8]
    a[9] += b[9]
    a[10] += b[10]
    blc = b[_LC]
    if blc:
        alc = a[_LC]
        if alc is None:
            a[_LC] = {c: list(v) for c, v in blc.items()}
        else:
            for c, v in blc.items():
                mine = alc.get(c)
                if mine is None:
                    alc[c] = list(v)
                else:
                    for i in range(8):
                        mine[i] += v[i]


def _start(b: list, sessions: set, month_tokens: dict | None) -> list:
    """A new group accumulator holding ``b``."""
    lc = b[_LC]
    return [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
            {c: list(v) for c, v in lc.items()} if lc else None, sessions, month_tokens]


def _tokens(a: list) -> int:
    return a[3] + a[4] + a[5] + a[6] + a[7] + a[8]


# Entries are dict literals with their keys in sorted order: the JSON writer sorts keys,
# and sorting already-sorted keys is nearly free (it was a third of the write).
def _fields(a: list) -> dict:
    return {
        "cache_read_tokens": a[6],
        "cache_write_1h_tokens": a[10],
        "cache_write_tokens": a[5],
        "events": a[0],
        "first_timestamp": iso_ms(a[1]),
        "input_tokens": a[3],
        "last_timestamp": iso_ms(a[2]),
        "output_tokens": a[4],
        "reasoning_tokens": a[9],
        "sessions": len(a[_SESS]),
        "tool_input_tokens": a[7],
        "tool_output_tokens": a[8],
        "total_tokens": a[3] + a[4] + a[5] + a[6] + a[7] + a[8],
    }


def _row_entry(period: str, provider: str, model: str, a: list, project=False) -> dict:
    mt = a[_MONTH]
    lc = a[_LC]
    d = {
        "cache_read_tokens": a[6],
        "cache_write_1h_tokens": a[10],
        "cache_write_tokens": a[5],
        "events": a[0],
        "first_timestamp": iso_ms(a[1]),
        "input_tokens": a[3],
        "last_timestamp": iso_ms(a[2]),
        "long_context": {str(c): lc[c] for c in sorted(lc)} if lc else {},
        "model": model,
        "month_tokens": dict(sorted(mt.items())) if len(mt) > 1 else mt,
        "output_tokens": a[4],
        "period": period,
    }
    if project is not False:
        d["project"] = project
    d["provider"] = provider
    d["reasoning_tokens"] = a[9]
    d["sessions"] = len(a[_SESS])
    d["tool_input_tokens"] = a[7]
    d["tool_output_tokens"] = a[8]
    d["total_tokens"] = a[3] + a[4] + a[5] + a[6] + a[7] + a[8]
    return d


# ------------------------------------------------------------------ tables
def _table(rows: dict[tuple, list], shared: dict, extra=None, with_periods: bool = True, project_of=None, distinct=None) -> dict:
    """The standard table from row accumulators keyed (period, provider, model).

    ``shared`` holds the whole-range entries (by_provider, by_model, totals). Period
    and period-provider entries are lean: the key, the distinct ``sessions`` (which no
    sum of rows can give) and kind-specific fields from ``extra(entry, period,
    provider_or_None)``; their token sums are the sums of their rows, which the price
    stage adds up along with the money. ``project_of(period)`` gives rows a
    ``project`` (sessions). Sorted keys put each period's rows (and each
    period-provider's) next to each other, so the summaries are one pass.
    ``distinct(period, provider_or_None)`` (if given) counts the period and
    period-provider sessions instead of their rows' session sets."""
    keys = sorted(rows)
    if project_of is None:
        out_rows = [_row_entry(k[0], k[1], k[2], rows[k]) for k in keys]
    else:
        out_rows = [_row_entry(k[0], k[1], k[2], rows[k], project_of(k[0])) for k in keys]
    periods: list[dict] = []
    pps: list[dict] = []
    i, n = 0, len(keys)
    while i < n:
        period = keys[i][0]
        j = i + 1
        while j < n and keys[j][0] == period:
            j += 1
        if with_periods:
            d = {"period": period, "sessions": distinct(period, None) if distinct else _distinct(rows, keys, i, j)}
            if extra:
                extra(d, period, None)
            periods.append(d)
        a = i
        while a < j:
            provider = keys[a][1]
            b = a + 1
            while b < j and keys[b][1] == provider:
                b += 1
            d = {"period": period, "provider": provider, "sessions": distinct(period, provider) if distinct else _distinct(rows, keys, a, b)}
            if extra:
                extra(d, period, provider)
            pps.append(d)
            a = b
        i = j
    return {"rows": out_rows, "periods": periods, "period_providers": pps, **shared}


def _distinct(rows: dict, keys: list, i: int, j: int) -> int:
    if j - i == 1:
        return len(rows[keys[i]][_SESS])
    seen: set = set()
    for k in keys[i:j]:
        seen |= rows[k][_SESS]
    return len(seen)


def _merged(accs: list[list]) -> list:
    if len(accs) == 1:
        return accs[0]
    a = _start(accs[0], set(accs[0][_SESS]), None)
    for b in accs[1:]:
        _fold(a, b)
        a[_SESS] |= b[_SESS]
    return a


def aggregate_rollups(rollup_rows: Iterable[list], zone_name: str, filters: Filters, kinds=REPORT_KINDS, now_ms: int | None = None) -> dict:
    """All report tables from rollup rows, bucketed in ``zone_name``.

    ``now_ms`` (tests, interactive use) marks each block ``active``; the aggregate stage
    never passes it, so artifacts hold no clock."""
    # Tens of thousands of short-lived lists and dicts, none cyclic: the cyclic garbage
    # collector would only rescan them over and over (a third of the run time).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _aggregate(rollup_rows, zone_name, filters, kinds, now_ms)
    finally:
        if was_enabled:
            gc.enable()


def fold_rows(rollup_rows, of_slot, filters: Filters, want_blocks: bool, basis: dict | None = None,
              names: dict | None = None, into: dict | None = None):
    """One pass over rollup rows: ``fine`` accumulators per (local day, provider, model,
    project, session) of the rows the filters keep, and (``want_blocks``) the kept rows per
    (provider, slot). ``basis`` (if given, and only when filters are active) gets every
    row's tokens per (month, provider), filtered out or not.
    ``names`` (if given) is where project and session strings are made one object each;
    ``into`` (if given) is the ``fine`` to fold into (rows read a day at a time)."""
    # fine: (day, provider, model, project, session) -> accumulator (sessions and
    # month_tokens unset: one session, the day's month)
    fine: dict[tuple, list] = {} if into is None else into
    # blocks: (provider, slot) -> its rollup rows
    slot_rows: dict[tuple, list[list]] = {}
    keeps = filters.keeps if filters.active else None
    if names is None:
        names = {}
    for row in rollup_rows:
        slot = row[0]
        day = of_slot(slot)[0]
        provider = row[1]
        if keeps is not None:
            # the subscription basis counts every call, filtered out or not
            if basis is not None:
                bk = (day[:7], provider)
                basis[bk] = basis.get(bk, 0) + row[10] + row[11] + row[12] + row[13] + row[14] + row[15]
            if not keeps(day, provider, row[2], row[3]):
                continue
        key = (day, provider, row[2], row[3], row[4])
        a = fine.get(key)
        ctx = row[6]
        if a is None:
            # one string per project and session id, however many rows (each parsed anew) name it
            project, session = row[3], row[4]
            key = (day, provider, row[2], names.setdefault(project, project) if project else project, names.setdefault(session, session))
            a = fine[key] = [row[7], row[8], row[9], row[10], row[11], row[12], row[13],
                             row[14], row[15], row[16], row[17], None, None, None]
        else:
            _fold_row(a, row)
        if ctx:
            lc = a[_LC]
            if lc is None:
                lc = a[_LC] = {}
            part = lc.get(ctx)
            if part is None:
                lc[ctx] = row[10:18]
            else:
                part[0] += row[10]
                part[1] += row[11]
                part[2] += row[12]
                part[3] += row[13]
                part[4] += row[14]
                part[5] += row[15]
                part[6] += row[16]
                part[7] += row[17]
        if want_blocks:
            sk = (provider, slot)
            lst = slot_rows.get(sk)
            if lst is None:
                slot_rows[sk] = [row]
            else:
                lst.append(row)
    return fine, slot_rows


def day_rows_of(fine: dict[tuple, list]) -> dict[tuple, list]:
    """Row accumulators per (day, provider, model), with sessions and month_tokens."""
    day_rows: dict[tuple, list] = {}
    for (day, provider, model, _project, session), b in fine.items():
        k = (day, provider, model)
        a = day_rows.get(k)
        if a is None:
            day_rows[k] = _start(b, {session}, None)
        else:
            _fold(a, b)
            a[_SESS].add(session)
    for (day, _p, _m), a in day_rows.items():
        a[_MONTH] = {day[:7]: _tokens(a)}
    return day_rows


def project_rows_of(fine: dict[tuple, list]) -> dict[tuple, list]:
    """Row accumulators per (project, provider, model), with sessions and month_tokens."""
    proj_rows: dict[tuple, list] = {}
    for (day, provider, model, project, session), b in fine.items():
        k = (project or NO_PROJECT, provider, model)
        a = proj_rows.get(k)
        tokens = b[3] + b[4] + b[5] + b[6] + b[7] + b[8]
        if a is None:
            proj_rows[k] = _start(b, {session}, {day[:7]: tokens})
        else:
            _fold(a, b)
            a[_SESS].add(session)
            mt = a[_MONTH]
            mt[day[:7]] = mt.get(day[:7], 0) + tokens
    return proj_rows


def _aggregate(rollup_rows, zone_name: str, filters: Filters, kinds, now_ms) -> dict:
    cal = SlotCalendar(zone_name)
    of_slot = cal.of_slot
    basis: dict[tuple, int] = {}
    want_blocks = "blocks" in kinds
    keeps = filters.keeps if filters.active else None
    fine, slot_rows = fold_rows(rollup_rows, of_slot, filters, want_blocks, basis)

    # day rows (also the source of weeks, months and the whole-range tables)
    day_rows = day_rows_of(fine)

    if keeps is None:
        for (day, provider, _m), a in day_rows.items():
            bk = (day[:7], provider)
            basis[bk] = basis.get(bk, 0) + a[3] + a[4] + a[5] + a[6] + a[7] + a[8]
    shared = _whole_range(day_rows)
    reports: dict[str, dict] = {}
    if "daily" in kinds:
        reports["daily"] = _table(day_rows, shared)
    if "weekly" in kinds:
        week_of = {}
        for k in day_rows:
            if k[0] not in week_of:
                week_of[k[0]] = cal._of_day(dt.date.fromisoformat(k[0]).toordinal() - 719163)[1]
        reports["weekly"] = _table(_group((((week_of[k[0]], k[1], k[2]), a) for k, a in day_rows.items()), True), shared)
    if "monthly" in kinds:
        reports["monthly"] = _table(_group((((k[0][:7], k[1], k[2]), a) for k, a in day_rows.items()), True), shared)
    if "projects" in kinds:
        reports["projects"] = _table(project_rows_of(fine), shared)
    if "sessions" in kinds:
        reports["sessions"] = _session_table(fine, shared)
    if want_blocks:
        reports["blocks"] = _block_table(slot_rows, of_slot, shared, now_ms)
    reports = {k: reports[k] for k in REPORT_KINDS if k in reports}
    allocation: dict[str, dict[str, int]] = {}
    for (month, provider), n in sorted(basis.items()):
        allocation.setdefault(month, {})[provider] = n
    return {
        "schema_version": AGGREGATES_SCHEMA_VERSION,
        "kind": "aggregates",
        "timezone": zone_name,
        "filters": filters.as_dict(),
        "allocation_basis": allocation,
        "reports": reports,
    }


def session_rows_of(fine: dict[tuple, list]):
    """Row accumulators per (session, provider, model) and ``project_of(session)``.
    Consumes ``fine``: most sessions have one fine accumulator (one day, one model),
    which becomes their row as it is. A session's project is the one of its earliest
    call that has one."""
    sess_rows: dict[tuple, list] = {}
    owned: set[tuple] = set()
    session_project: dict[str, tuple[int, str]] = {}
    for (day, provider, model, project, session), b in fine.items():
        if project:
            sp = session_project.get(session)
            if sp is None or b[1] < sp[0]:
                session_project[session] = (b[1], project)
        k = (session, provider, model)
        tokens = b[3] + b[4] + b[5] + b[6] + b[7] + b[8]
        a = sess_rows.get(k)
        if a is None:
            b[_SESS] = {session}
            b[_MONTH] = {day[:7]: tokens}
            sess_rows[k] = b
            continue
        if k not in owned:
            # a second fine accumulator: fold into a copy, not into the first one
            a = sess_rows[k] = _start(a, a[_SESS], dict(a[_MONTH]))
            owned.add(k)
        _fold(a, b)
        mt = a[_MONTH]
        mt[day[:7]] = mt.get(day[:7], 0) + tokens

    def project_of(session):
        sp = session_project.get(session)
        return sp[1] if sp else None

    return sess_rows, project_of


def session_project_field(project_of):
    """The ``extra`` of session period entries: the session's project."""

    def with_project(d, period, _provider):
        d["project"] = project_of(period)

    return with_project


def _session_table(fine: dict[tuple, list], shared: dict) -> dict:
    """Rows per (session, provider, model); see session_rows_of."""
    sess_rows, project_of = session_rows_of(fine)
    with_project = session_project_field(project_of)
    table = _table(sess_rows, shared, with_project, with_periods=False, project_of=project_of)
    if len(table["period_providers"]) == len({k[0] for k in sess_rows}):
        # a session runs in one tool: its entry names that provider, and the per-period
        # list is the per-period-provider one (as for blocks)
        table["periods"] = table["period_providers"]
        return table
    return _table(sess_rows, shared, with_project, project_of=project_of)


def _whole_range(day_rows: dict[tuple, list]) -> dict:
    """by_provider, by_model and totals: the same for every report kind."""
    by_provider = _group(((k[1],), a) for k, a in day_rows.items()) if day_rows else {}
    by_model = _group(((k[1], k[2]), a) for k, a in day_rows.items()) if day_rows else {}
    total = _merged(list(day_rows.values())) if day_rows else None
    return whole_range_entries(by_provider, by_model, total)


def whole_range_entries(by_provider: dict, by_model: dict, total: list | None) -> dict:
    """The whole-range entries from the group accumulators per ``(provider,)``, per
    ``(provider, model)`` and of everything (None: no row)."""
    bp = []
    for k in sorted(by_provider):
        d = _fields(by_provider[k])
        d["provider"] = k[0]
        bp.append(d)
    bm = []
    for k in sorted(by_model):
        d = _fields(by_model[k])
        d["provider"] = k[0]
        d["model"] = k[1]
        bm.append(d)
    totals = _fields(total) if total is not None else _empty_fields()
    return {"by_provider": bp, "by_model": bm, "totals": totals}


def _empty_fields() -> dict:
    d = _fields([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None, set(), None])
    d["first_timestamp"] = d["last_timestamp"] = None
    return d


def _group(entries, with_months: bool = False, into: dict | None = None) -> dict[tuple, list]:
    """Group ``(key, acc)`` pairs (accs with sessions, and month_tokens if asked) by key
    (into the groups ``into``, if given)."""
    out: dict[tuple, list] = {} if into is None else into
    for key, b in entries:
        a = out.get(key)
        if a is None:
            out[key] = _start(b, set(b[_SESS]), dict(b[_MONTH]) if with_months else None)
            continue
        _fold(a, b)
        a[_SESS] |= b[_SESS]
        if with_months:
            mt = a[_MONTH]
            for m, n in b[_MONTH].items():
                mt[m] = mt.get(m, 0) + n
    return out


# ------------------------------------------------------------------ 5-hour blocks
def assign_blocks(spans: dict[int, list]) -> dict[int, int]:
    """Block start (epoch ms) of each slot of one provider, by ccusage's rule.

    ``spans``: slot -> [first call ms, last call ms] in that slot. A block starts at the
    UTC hour of the first call after a gap of more than 5 hours since the block's last
    call, or of the first call more than 5 hours after the block's start; it lasts 5
    hours. Block starts are on the hour, so block ends fall on slot boundaries and every
    slot belongs to exactly one block."""
    out: dict[int, int] = {}
    start = None
    last = 0
    for slot in sorted(spans):
        first, slot_last = spans[slot]
        if start is None or first - start > BLOCK_MS or first - last > BLOCK_MS:
            start = first - first % HOUR_MS
            last = slot_last
        elif slot_last > last:
            last = slot_last
        out[slot] = start
    return out


def _block_table(slot_rows: dict[tuple, list[list]], of_slot, shared: dict, now_ms: int | None, firsts: dict | None = None) -> dict:
    """The blocks table; ``firsts`` (if given) gets, per provider, ``{block start: its
    first slot}`` (what the incremental aggregate keeps)."""
    spans: dict[str, dict[int, list]] = {}
    for (provider, slot), rows in slot_rows.items():
        if len(rows) == 1:
            span = [rows[0][8], rows[0][9]]
        else:
            span = [min(r[8] for r in rows), max(r[9] for r in rows)]
        spans.setdefault(provider, {})[slot] = span
    block_rows: dict[tuple, list] = {}
    split_months: list[tuple] = []  # blocks that cross a local month boundary (rare)
    for provider, provider_spans in spans.items():
        months: dict[int, str] = {}
        assigned = assign_blocks(provider_spans)
        if firsts is not None:
            mine = firsts[provider] = {}
            for slot, start in assigned.items():  # slots ascending
                if start not in mine:
                    mine[start] = slot
        for slot, start in assigned.items():
            month = of_slot(slot)[2]
            if months.setdefault(start, month) != month:
                split_months.append((provider, start))
            for row in slot_rows[(provider, slot)]:
                k = (start, provider, row[2])
                a = block_rows.get(k)
                if a is None:
                    a = block_rows[k] = [row[7], row[8], row[9], row[10], row[11], row[12], row[13], row[14],
                                         row[15], row[16], row[17], None, {row[4]}, month]
                else:
                    _fold_row(a, row)
                    a[_SESS].add(row[4])
                if row[6]:
                    _fold_long_context(a, row)
    # month_tokens: a block's tokens are in its first slot's month, unless it crosses
    # into the next month (at most once: a block is 5 hours), then split per slot
    for a in block_rows.values():
        a[_MONTH] = {a[_MONTH]: _tokens(a)}
    for provider, start in split_months:
        parts: dict[str, dict[str, int]] = {}
        for slot, s in assign_blocks(spans[provider]).items():
            if s != start:
                continue
            month = of_slot(slot)[2]
            for row in slot_rows[(provider, slot)]:
                mt = parts.setdefault(row[2], {})
                mt[month] = mt.get(month, 0) + row[10] + row[11] + row[12] + row[13] + row[14] + row[15]
        for model, mt in parts.items():
            block_rows[(start, provider, model)][_MONTH] = mt
    return _blocks_as_table(block_rows, shared, now_ms)



def _fold_long_context(a: list, row: list) -> None:
    """Add a rollup row's usage to its block row's long-context part (``row[6]`` its class)."""
    ctx = row[6]
    lc = a[_LC]
    if lc is None:
        a[_LC] = {ctx: row[10:18]}
        return
    part = lc.get(ctx)
    if part is None:
        lc[ctx] = row[10:18]
        return
    for i in range(8):
        part[i] += row[10 + i]


def block_rows_of(assigned: dict[str, dict[int, int]], rows, of_slot, filters: Filters, names: dict | None = None,
                  into: dict | None = None) -> dict[tuple, list]:
    """Block row accumulators per (block start, provider, model) from a pass over rollup
    rows (those ``filters`` keep), each slot in the block ``assigned[provider][slot]``:
    what ``_block_table`` adds up from the rows it is given, for rows read again rather
    than kept (sums, sessions and month_tokens do not depend on the order). ``into`` (if
    given) is the accumulators to fold into (rows read a day at a time)."""
    keeps = filters.keeps if filters.active else None
    block_rows: dict[tuple, list] = {} if into is None else into
    # one string per session id, however many rows (each parsed anew) and blocks name it
    if names is None:
        names = {}
    for row in rows:
        slot = row[0]
        provider = row[1]
        cal = of_slot(slot)
        if keeps is not None and not keeps(cal[0], provider, row[2], row[3]):
            continue
        k = (assigned[provider][slot], provider, row[2])
        tokens = row[10] + row[11] + row[12] + row[13] + row[14] + row[15]
        session = names.setdefault(row[4], row[4])
        a = block_rows.get(k)
        if a is None:
            a = block_rows[k] = [row[7], row[8], row[9], row[10], row[11], row[12], row[13], row[14],
                                 row[15], row[16], row[17], None, {session}, {cal[2]: tokens}]
        else:
            _fold_row(a, row)
            a[_SESS].add(session)
            mt = a[_MONTH]
            mt[cal[2]] = mt.get(cal[2], 0) + tokens
        if row[6]:
            _fold_long_context(a, row)
    return block_rows


def _blocks_as_table(block_rows: dict[tuple, list], shared: dict, now_ms: int | None) -> dict:
    """The blocks table from its row accumulators (keyed by block start in ms)."""
    keyed = {}
    start_ms = {}  # each start's ms, kept (parsing the strings back memoized every block's minute)
    for k, a in block_rows.items():
        start = iso_ms(k[0])
        start_ms[start] = k[0]
        keyed[(start, k[1], k[2])] = a

    ends = {}

    def block_fields(d, period, provider):
        end = ends.get(period)
        if end is None:
            end = ends[period] = iso_ms(start_ms[period] + BLOCK_MS)
        d["start"] = period
        d["end"] = end
        if now_ms is not None:
            a = block_rows_by_start[(period, provider)]
            d["active"] = now_ms - a < BLOCK_MS and now_ms < start_ms[period] + BLOCK_MS

    block_rows_by_start: dict[tuple, int] = {}
    for (start, provider, _model), a in keyed.items():
        k = (start, provider)
        if a[2] > block_rows_by_start.get(k, -1):
            block_rows_by_start[k] = a[2]

    table = _table(keyed, shared, block_fields, with_periods=False)
    # a block's identity is (start, provider): the per-block list is period_providers
    table["periods"] = table["period_providers"]
    return table

