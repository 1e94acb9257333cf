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
