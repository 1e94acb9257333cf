"""Aggregate's memory hardly grows with the history (issue 6: peak RSS flat as it grows).

The same calls a day over 8x as many days: a first run and a later one (one more day)
must hold little more at their peak (traced by tracemalloc: deterministic, unlike RSS)
than on the short history. Before the per-day and per-unit state went into columns
(scripts/core/columns.py), the long history held ~0.63 MB more on a first run and
~0.8 MB more on a later one (the state's per-day dicts, the index read whole, the
rollup files' ranges and digests per day, the calendar's memo). What is left is smaller:
a first run's units' keys, counts and lengths until the report is written (~40 bytes a
session), a project's tokens per month, memos that fill up to their bound.
"""
from __future__ import annotations

import tracemalloc

import test_views_incremental as tvi
from scripts.core import aggregate_incr, columns
from scripts.core.aggregation import Filters
from test_price_memory import _days
from test_views_incremental import History, build

COLD_MARGIN = 420 * 1024  # bytes the long history may hold beyond the short one (found: ~310 KB)
LATER_MARGIN = 200 * 1024  # on a later run (found: ~105 KB)


def _peaks(tmp_path, days: int, monkeypatch) -> list:
    """Aggregate's traced peaks on a first run over ``days`` days and on a later run after
    one more day; both checked against a from-scratch run."""
    peaks: list = []
    run = aggregate_incr.build_from_files

    def traced(*args, **kwargs):
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            out = run(*args, **kwargs)
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
        finally:
            tracemalloc.stop()
        return out

    monkeypatch.setattr(tvi, "build_from_files", traced)
    h = History(seed=11)
    _days(h, 0, days)
    agg, cache = tmp_path / "aggregates.json", tmp_path / "cache"
    for round_no in range(2):
        if round_no:
            _days(h, days, 1)
        stats = build(h.rollup_rows(), "UTC", Filters(), str(agg), str(cache))
        assert stats.state == ("used" if round_no else "missing")
        build(h.rollup_rows(), "UTC", Filters(), str(tmp_path / "scratch.json"), str(tmp_path / "cache-scratch"), force=True)
        assert agg.read_bytes() == (tmp_path / "scratch.json").read_bytes()
    return peaks[0::2]  # the runs measured (not the from-scratch ones)


def test_aggregate_holds_little_more_for_a_longer_history(tmp_path, monkeypatch):
    # a column holds a block being filled and one read: small blocks, so that the short
    # history's columns are past their first block too
    monkeypatch.setattr(columns, "BLOCK", 256)
    short = _peaks(tmp_path / "short", 45, monkeypatch)
    long = _peaks(tmp_path / "long", 360, monkeypatch)
    assert long[0] - short[0] < COLD_MARGIN, (short, long)
    assert long[1] - short[1] < LATER_MARGIN, (short, long)
