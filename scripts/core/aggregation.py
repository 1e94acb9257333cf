"""Token totals by period, pricing-independent: the arithmetic behind ``aggregate``.

Input is slot rollup rows (see rollup.py); output is one table per report kind
(daily, weekly, monthly, sessions, projects, blocks). Every table has the same shape:

- ``rows``: one per (period, provider, model)
- ``periods``: one per period (all providers and models together)
- ``period_providers``: one per (period, provider)
- ``by_provider`` / ``by_model``: the whole range, per provider / per model
- ``totals``: everything

Each row carries every usage bucket, ``total_tokens``, ``events``, ``sessions``
(distinct), the first and last call time, ``month_tokens`` (its tokens per month, which
is what a subscription fee is spread by) and ``long_context`` (the part of its usage
from requests whose prompt exceeded a long-context threshold, for tiered prices).
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from scripts.core.event import USAGE_KEYS, format_ms
from scripts.core.periods import Periods
from scripts.core.rollup import N_KEY

AGGREGATES_SCHEMA_VERSION = 1
REPORT_KINDS = ("daily", "weekly", "monthly", "sessions", "projects", "blocks")
BLOCK_MS = 5 * 3600 * 1000
HOUR_MS = 3600 * 1000
N_USAGE = len(USAGE_KEYS)
# acc layout: [events, first_ms, last_ms, *usage, sessions:set, month_tokens:dict, long_context:dict]
_I_SESS = 3 + N_USAGE
_I_MONTH = _I_SESS + 1
_I_LONG = _I_MONTH + 1


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

    def keeps(self, day: str, provider: str, model: str, project) -> bool:
        if self.since and day < self.since:
            return False
        if self.until and day > self.until:
            return False
        if self.providers and provider not in self.providers:
            return False
        if self.models and model not in self.models:
            return False
        if self.projects and (project or "") not in self.projects:
            return False
        return True


def _new_acc() -> list:
    return [0, None, None] + [0] * N_USAGE + [set(), {}, {}]


def _add(acc: list, events: int, first: int, last: int, usage: list, session: str, month: str, ctx: int) -> None:
    acc[0] += events
    if acc[1] is None or first < acc[1]:
        acc[1] = first
    if acc[2] is None or last > acc[2]:
        acc[2] = last
    for i in range(N_USAGE):
        acc[3 + i] += usage[i]
    acc[_I_SESS].add(session)
    tokens = usage[0] + usage[1] + usage[2] + usage[3] + usage[4] + usage[5]
    mt = acc[_I_MONTH]
    mt[month] = mt.get(month, 0) + tokens
    if ctx:
        lc = acc[_I_LONG].get(ctx)
        if lc is None:
            lc = acc[_I_LONG][ctx] = [0] * N_USAGE
        for i in range(N_USAGE):
            lc[i] += usage[i]


def _merge(acc: list, other: list) -> None:
    acc[0] += other[0]
    if acc[1] is None or (other[1] is not None and other[1] < acc[1]):
        acc[1] = other[1]
    if acc[2] is None or (other[2] is not None and other[2] > acc[2]):
        acc[2] = other[2]
    for i in range(N_USAGE):
        acc[3 + i] += other[3 + i]
    acc[_I_SESS] |= other[_I_SESS]
    for m, n in other[_I_MONTH].items():
        acc[_I_MONTH][m] = acc[_I_MONTH].get(m, 0) + n
    for ctx, lc in other[_I_LONG].items():
        mine = acc[_I_LONG].setdefault(ctx, [0] * N_USAGE)
        for i in range(N_USAGE):
            mine[i] += lc[i]


def _row(acc: list, **keys) -> dict:
    row = dict(keys)
    for i, k in enumerate(USAGE_KEYS):
        row[k] = acc[3 + i]
    row["total_tokens"] = sum(acc[3 : 3 + 6])
    row["events"] = acc[0]
    row["sessions"] = len(acc[_I_SESS])
    row["first_timestamp"] = format_ms(acc[1]) if acc[1] is not None else None
    row["last_timestamp"] = format_ms(acc[2]) if acc[2] is not None else None
    row["month_tokens"] = dict(sorted(acc[_I_MONTH].items()))
    row["long_context"] = {
        str(ctx): {k: lc[i] for i, k in enumerate(USAGE_KEYS)} for ctx, lc in sorted(acc[_I_LONG].items())
    }
    return row


def _table(fine: dict, period_of) -> dict:
    """Group ``fine`` entries ((day, provider, model, project, session), acc) by
    ``period_of(key)`` (None drops the entry) into the standard report table."""
    rows: dict[tuple, list] = {}
    periods: dict[str, list] = {}
    period_providers: dict[tuple, list] = {}
    by_provider: dict[str, list] = {}
    by_model: dict[tuple, list] = {}
    total = _new_acc()
    for key, acc in fine.items():
        period = period_of(key)
        if period is None:
            continue
        provider, model = key[1], key[2]
        for table, k in (
            (rows, (period, provider, model)),
            (periods, period),
            (period_providers, (period, provider)),
            (by_provider, provider),
            (by_model, (provider, model)),
        ):
            a = table.get(k)
            if a is None:
                a = table[k] = _new_acc()
            _merge(a, acc)
        _merge(total, acc)
    return {
        "rows": [_row(a, period=k[0], provider=k[1], model=k[2]) for k, a in sorted(rows.items())],
        "periods": [_row(a, period=k) for k, a in sorted(periods.items())],
        "period_providers": [_row(a, period=k[0], provider=k[1]) for k, a in sorted(period_providers.items())],
        "by_provider": [_row(a, provider=k) for k, a in sorted(by_provider.items())],
        "by_model": [_row(a, provider=k[0], model=k[1]) for k, a in sorted(by_model.items())],
        "totals": _row(total),
    }


def aggregate_rollups(rollup_rows: Iterable[list], zone_name: str, filters: Filters, kinds=REPORT_KINDS, now_ms: int | None = None) -> dict:
    """All report tables from rollup rows, bucketed in ``zone_name``."""
    periods = Periods(zone_name)
    of_ms = periods.of_ms
    basis: dict[str, dict[str, int]] = {}
    # fine: (day, provider, model, project, session) -> acc, the common refinement of every report
    fine: dict[tuple, list] = {}
    # per provider slot series for blocks: provider -> {slot: acc-by-model}
    slots: dict[str, dict[int, dict[str, list]]] = {}
    want_blocks = "blocks" in kinds
    for row in rollup_rows:
        slot, provider, model, project, session, _device, ctx = row[:N_KEY]
        events, first, last = row[N_KEY], row[N_KEY + 1], row[N_KEY + 2]
        usage = row[N_KEY + 3 :]
        day, _week, month = of_ms(slot)
        tokens = usage[0] + usage[1] + usage[2] + usage[3] + usage[4] + usage[5]
        b = basis.setdefault(month, {})
        b[provider] = b.get(provider, 0) + tokens
        if not filters.keeps(day, provider, model, project):
            continue
        key = (day, provider, model, project, session)
        acc = fine.get(key)
        if acc is None:
            acc = fine[key] = _new_acc()
        _add(acc, events, first, last, usage, session, month, ctx)
        if want_blocks:
            by_model = slots.setdefault(provider, {}).setdefault(slot, {})
            a = by_model.get(model)
            if a is None:
                a = by_model[model] = _new_acc()
            _add(a, events, first, last, usage, session, month, ctx)

    week_of_day: dict[str, str] = {}

    def week(key):
        d = key[0]
        w = week_of_day.get(d)
        if w is None:
            y, n, _ = dt.date.fromisoformat(d).isocalendar()
            w = week_of_day[d] = f"{y}-W{n:02d}"
        return w

    makers = {
        "daily": lambda key: key[0],
        "weekly": week,
        "monthly": lambda key: key[0][:7],
        "sessions": lambda key: key[4],
        "projects": lambda key: key[3] or "(none)",
    }
    reports = {kind: _table(fine, makers[kind]) for kind in kinds if kind in makers}
    if "sessions" in reports:
        _annotate_sessions(reports["sessions"], fine)
    if want_blocks:
        reports["blocks"] = block_table(slots, now_ms)
    return {
        "schema_version": AGGREGATES_SCHEMA_VERSION,
        "kind": "aggregates",
        "timezone": zone_name,
        "filters": filters.as_dict(),
        "allocation_basis": {m: dict(sorted(v.items())) for m, v in sorted(basis.items())},
        "reports": reports,
    }


def _annotate_sessions(table: dict, fine: dict) -> None:
    """Session rows also say which project the session ran in."""
    project_of: dict[str, str] = {}
    for (_day, _p, _m, project, session) in fine:
        if project and session not in project_of:
            project_of[session] = project
    for row in table["rows"] + table["periods"]:
        row["project"] = project_of.get(row["period"])


def block_table(slots: dict[str, dict[int, dict[str, list]]], now_ms: int | None) -> dict:
    """5-hour billing blocks per provider, as ccusage ``blocks`` draws them: a block
    starts at the hour of the first call after a gap (or after the previous block's 5
    hours ran out) and lasts 5 hours. ``now_ms`` decides which block is active."""
    fine: dict[tuple, list] = {}
    blocks_meta: list[dict] = []
    for provider in sorted(slots):
        series = slots[provider]
        start = None
        last_ms = None
        members: list[int] = []

        def close():
            if start is None:
                return
            first = min(series[s][m][1] for s in members for m in series[s])
            last = max(series[s][m][2] for s in members for m in series[s])
            period = format_ms(start)
            for s in members:
                for model, acc in series[s].items():
                    key = (period, provider, model)
                    a = fine.get(key)
                    if a is None:
                        a = fine[key] = _new_acc()
                    _merge(a, acc)
            active = (now_ms - last < BLOCK_MS and now_ms < start + BLOCK_MS) if now_ms is not None else None
            blocks_meta.append(
                {"period": period, "provider": provider, "start": period, "end": format_ms(start + BLOCK_MS),
                 "first_timestamp": format_ms(first), "last_timestamp": format_ms(last), "active": active}
            )

        for slot in sorted(series):
            accs = series[slot]
            first = min(a[1] for a in accs.values())
            last = max(a[2] for a in accs.values())
            if start is None or first - start > BLOCK_MS or first - last_ms > BLOCK_MS:
                close()
                start = first - first % HOUR_MS
                members = []
                last_ms = None
            members.append(slot)
            last_ms = last if last_ms is None else max(last_ms, last)
        close()

    table = _table({(k[0], k[1], k[2], None, None): a for k, a in fine.items()}, lambda key: key[0])
    # a block's identity is (provider, start): periods per provider
    per_block: dict[tuple, list] = {}
    for (period, provider, _model), acc in fine.items():
        a = per_block.get((period, provider))
        if a is None:
            a = per_block[(period, provider)] = _new_acc()
        _merge(a, acc)
    meta = {(b["period"], b["provider"]): b for b in blocks_meta}
    table["periods"] = [dict(_row(a, period=k[0], provider=k[1]), **_block_fields(meta[k])) for k, a in sorted(per_block.items())]
    return table


def _block_fields(meta: dict) -> dict:
    out = {"start": meta["start"], "end": meta["end"]}
    if meta["active"] is not None:
        out["active"] = meta["active"]
    return out
