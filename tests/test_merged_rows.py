"""The merged rollup is kept a session at a time, marshalled, and written a chunk at a
time (event_cache.MergedState): its rows must come out exactly as one sort of them all
would put them (slot first; a None project before any other), whatever the sessions' spans."""
from __future__ import annotations

import random

from scripts.core.event_cache import MergedState, _row_sort_key
from scripts.core.rollup import SLOT_MS


def _random_state(rng: random.Random, sessions: int) -> tuple[MergedState, list[list]]:
    m = MergedState()
    every: list[list] = []
    for s in range(sessions):
        session = f"s{s:04d}"
        start = rng.randrange(0, 2000)
        # most sessions span a few slots; some span days (their rows wait longest)
        span = rng.choice([1, 2, 3, 5, 8]) if rng.random() < 0.9 else rng.randrange(100, 3000)
        acc: dict[tuple, list] = {}
        for _ in range(rng.randrange(1, 12)):
            slot = (start + rng.randrange(0, span)) * SLOT_MS
            key = (slot, rng.choice(["claude", "codex"]), rng.choice(["m-a", "m-b"]), rng.choice(["alpha", "beta", None]),
                   session, "", rng.choice([0, 1]))
            acc[key] = [1, slot, slot] + [rng.randrange(0, 1000) for _ in range(8)]
        m.set_session(session, acc)
        every += [list(k) + v for k, v in acc.items()]
    return m, every


def test_chunks_are_the_rows_in_rollup_order():
    for seed in range(6):
        rng = random.Random(seed)
        m, every = _random_state(rng, sessions=rng.choice([1, 30, 400]))
        want = sorted(every, key=_row_sort_key)
        for chunk in (1, 7, 64, 4096):
            got = [row for rows in m.sorted_chunks(chunk) for row in rows]
            assert got == want, (seed, chunk)


def test_a_session_without_rows_goes():
    m = MergedState()
    m.set_session("a", {(0, "claude", "m", "p", "a", "", 0): [1, 0, 0] + [0] * 8})
    m.set_session("a", {})
    assert len(m.rows) == 0 and list(m.sorted_chunks()) == []


def test_rows_that_wait_past_the_bound_go_through_a_temp_file_in_order(tmp_path):
    """Sessions resumed long after they began leave rows far ahead of the walk: past
    ``wait_rows`` of them they wait in sorted runs in a temp file, and still come out in
    rollup order."""
    for seed in range(4):
        rng = random.Random(100 + seed)
        m, every = _random_state(rng, sessions=400)
        m.spill_dir = str(tmp_path) if seed % 2 else None  # in a file, or in memory
        want = sorted(every, key=_row_sort_key)
        for chunk, wait_rows in ((1, 3), (7, 10), (64, 40), (128, 1000)):
            got = [row for rows in m.sorted_chunks(chunk, wait_rows) for row in rows]
            assert got == want, (seed, chunk, wait_rows)


def test_resumed_sessions_rows_do_not_wait_in_memory(tmp_path):
    """A history where every session was resumed at its end (the bench's appends): the
    walk holds a bounded number of rows however many sessions there are."""
    import tracemalloc

    def peak(sessions: int) -> int:
        m = MergedState(spill_dir=str(tmp_path))
        end = 40_000 * SLOT_MS
        for s in range(sessions):
            session = f"s{s:05d}"
            start = s * 8 * SLOT_MS
            acc = {(start, "claude", "m-a", "alpha", session, "", 0): [1, start, start] + [7] * 8}
            for k in range(6):  # resumed at the end: rows far ahead of the walk
                slot = end + (s * 6 + k) * SLOT_MS
                acc[(slot, "claude", "m-b", "alpha", session, "", 0)] = [1, slot, slot] + [3] * 8
            m.set_session(session, acc)
        tracemalloc.start()
        try:
            n = sum(len(rows) for rows in m.sorted_chunks(128, 512))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert n == sessions * 7

    small, large = peak(600), peak(4800)
    assert large < small + 256 * 1024, (small, large)  # 4,200 more sessions' rows: 8.5 MB if they all waited
