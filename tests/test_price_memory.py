"""Price's memory does not grow with the history (issue 6: peak RSS flat as it grows).

The same calls a day over 8x as many days give 8x the periods (sessions, blocks, days)
to price; a first run and a later one must hold no more at their peak (traced by
tracemalloc: deterministic, unlike RSS) than on the short history, bar a small margin.
Before price's per-period data went into columns (scripts/core/columns.py), a period
cost ~250 bytes: this test's long history held 0.55-0.6 MB more than its short one. What
is left (~90 KB) is not per period: buffers that fill only once a table is large enough
(a region's block, a batch's spills, a chunk of 16 KB), and a project's rows in the
aggregates carry its tokens per month (for the subscription share), ~20 bytes a month.
"""
from __future__ import annotations

import random
import tracemalloc

from scripts.core import columns, price_incr, view_cache
from scripts.core.aggregation import Filters
from scripts.core.pricing_book import load_book
from test_views_incremental import HOUR, T0, History, _book, assert_reports_from_scratch, build

DAY = 24 * HOUR
SESSIONS_A_DAY = 6
MARGIN = 160 * 1024  # bytes the long history may hold beyond the short one (found: ~90 KB)


def _days(h: History, first: int, days: int) -> None:
    rng = random.Random(first)
    for d in range(first, first + days):
        for s in range(SESSIONS_A_DAY):
            start = T0 + d * DAY + rng.randrange(0, 20 * HOUR)
            provider = rng.choice(["claude", "codex"])
            for _ in range(rng.randrange(1, 5)):
                h.call(start + rng.randrange(0, 3 * HOUR), provider=provider, session=f"d{d}-s{s}")


def _peaks(tmp_path, days: int) -> tuple[int, int]:
    """Price's traced peak on a first run over ``days`` days, then on a later run after one
    more day (beyond what it held before the run: the aggregates are built first)."""
    h = History(seed=11)
    _days(h, 0, days)
    agg = tmp_path / "aggregates.json"
    build(h.rollup_rows(), "UTC", Filters(), str(agg), str(tmp_path / "cache-agg"))
    out = tmp_path / "reports"
    out.mkdir()
    book = load_book(str(_book(tmp_path)))
    peaks = []
    for round_no in range(2):
        if round_no:
            _days(h, days, 1)
            build(h.rollup_rows(), "UTC", Filters(), str(agg), str(tmp_path / "cache-agg"))
        data = agg.read_bytes()
        source = (str(agg), view_cache.file_identity(str(agg)))
        with open(agg, "rb") as fh:
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                stats = price_incr.build(price_incr.FileDocument(fh.fileno()), book, str(out), str(tmp_path / "cache-price"), "warn", source=source)[0]
                peaks.append(tracemalloc.get_traced_memory()[1] - base)
            finally:
                tracemalloc.stop()
        assert stats.state == ("used" if round_no else "missing")
        assert_reports_from_scratch(f"{days} days, round {round_no}", data, book, out, stats)
    return peaks[0], peaks[1]


def test_price_holds_no_more_for_a_longer_history(tmp_path, monkeypatch):
    # each column holds a block being filled and one read (4 KB each): a bound reached at
    # ~500 periods, by the short history too with smaller blocks
    monkeypatch.setattr(columns, "BLOCK", 256)
    short = _peaks(tmp_path / "short", 45)
    long = _peaks(tmp_path / "long", 360)
    assert long[0] - short[0] < MARGIN, (short, long)
    assert long[1] - short[1] < MARGIN, (short, long)
