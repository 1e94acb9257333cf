"""Slot rollups: events summed per 15-minute UTC slot, provider, model, project, session,
device and long-context class.

Every time zone's offset is a multiple of 15 minutes, so any local day, ISO week or month
is a union of whole slots, and so is every 5-hour block (blocks start on the hour). That
makes a rollup enough to answer every report exactly, at a fraction of the events'
size: the aggregate stage reads rollups, not the full event history. ``first_ms`` and
``last_ms`` keep the exact call times that blocks and sessions need.

A row is a list (compact, fast to load):
``[slot_ms, provider, model, project, session_id, device, ctx_class, events, first_ms,
last_ms, <the USAGE_KEYS counts in order>]``
"""
from __future__ import annotations

from typing import Iterable

from scripts.core.event import LONG_CONTEXT_THRESHOLDS, USAGE_KEYS, context_class, minute_ms

ROLLUP_SCHEMA_VERSION = 1
SLOT_MS = 15 * 60 * 1000
KEY_FIELDS = ("slot_ms", "provider", "model", "project", "session_id", "device", "ctx_class")
VALUE_FIELDS = ("events", "first_ms", "last_ms") + USAGE_KEYS
COLUMNS = KEY_FIELDS + VALUE_FIELDS
N_KEY = len(KEY_FIELDS)
I_EVENTS, I_FIRST, I_LAST = 0, 1, 2
_FIRST_THRESHOLD = LONG_CONTEXT_THRESHOLDS[0]
assert USAGE_KEYS == (
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "tool_input_tokens",
    "tool_output_tokens",
    "reasoning_tokens",
    "cache_write_1h_tokens",
), "add_event spells the usage keys out in this order"


class Rollup:
    """An accumulator: ``key tuple -> [events, first_ms, last_ms, *usage]``."""

    __slots__ = ("acc",)

    def __init__(self) -> None:
        self.acc: dict[tuple, list[int]] = {}

    def add_event(self, ev: dict) -> None:
        t = ev["timestamp"]
        # timestamp_ms, inlined: this runs once per call of a first run
        ts = minute_ms(t[:16]) + int(t[17:19]) * 1000 + int(t[20:23])
        u = ev["usage"]
        counts = [
            u["input_tokens"],
            u["output_tokens"],
            u["cache_write_tokens"],
            u["cache_read_tokens"],
            u["tool_input_tokens"],
            u["tool_output_tokens"],
            u["reasoning_tokens"],
            u["cache_write_1h_tokens"],
        ]
        prompt = counts[0] + counts[2] + counts[3] + counts[4]
        ctx = 0
        if prompt > _FIRST_THRESHOLD:
            ctx = context_class(u)
        key = (ts - ts % SLOT_MS, ev["provider"], ev["model"], ev.get("project"), ev["session_id"], ev.get("device") or "", ctx)
        vals = self.acc.get(key)
        if vals is None:
            self.acc[key] = [1, ts, ts] + counts
            return
        vals[0] += 1
        if ts < vals[1]:
            vals[1] = ts
        if ts > vals[2]:
            vals[2] = ts
        vals[3] += counts[0]
        vals[4] += counts[1]
        vals[5] += counts[2]
        vals[6] += counts[3]
        vals[7] += counts[4]
        vals[8] += counts[5]
        vals[9] += counts[6]
        vals[10] += counts[7]

    def add_row(self, row: list) -> None:
        key = tuple(row[:N_KEY])
        vals = self.acc.get(key)
        if vals is None:
            self.acc[key] = list(row[N_KEY:])
            return
        vals[0] += row[N_KEY]
        if row[N_KEY + 1] < vals[1]:
            vals[1] = row[N_KEY + 1]
        if row[N_KEY + 2] > vals[2]:
            vals[2] = row[N_KEY + 2]
        for i in range(3, len(vals)):
            vals[i] += row[N_KEY + i]

    def add_rows(self, rows: Iterable[list]) -> None:
        for row in rows:
            self.add_row(row)

    def rows(self) -> list[list]:
        return [list(k) + v for k, v in sorted(self.acc.items(), key=_sort_key)]


def _sort_key(item):
    k = item[0]
    return (k[0], k[1], k[2], k[3] or "", k[4], k[5], k[6])


def rollup_events(events: Iterable[dict]) -> list[list]:
    r = Rollup()
    for ev in events:
        r.add_event(ev)
    return r.rows()


def document(source: str, rows: list[list]) -> dict:
    return {"schema_version": ROLLUP_SCHEMA_VERSION, "source": source, "slot_ms": SLOT_MS, "columns": list(COLUMNS), "rows": rows}
