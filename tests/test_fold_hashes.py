"""fold_changes sorts a run's new id hashes a sixteenth at a time (a first run adds every
call's): the result is the whole sorted array and the hashes held more than once. Each
file's hashes come sorted (event_cache.id_hashes), so a sixteenth of them is a slice."""
from __future__ import annotations

import random
from array import array

from scripts.core.event_cache import HashIndex, id_hash, id_hashes
from scripts.core.event_merge import _sorted_hashes


def test_sorted_hashes_equal_a_plain_sort():
    rng = random.Random(5)
    pool = [rng.getrandbits(64) for _ in range(3000)] + [0, (1 << 64) - 1, 1 << 60, (1 << 60) - 1]
    arrays = [array("Q", sorted(rng.choice(pool) for _ in range(rng.randrange(0, 60)))) for _ in range(200)]
    everything = [h for a in arrays for h in a]
    out, repeated = _sorted_hashes(arrays)
    assert out.tolist() == sorted(everything)
    assert repeated == {h for h in everything if everything.count(h) > 1}
    index = HashIndex()
    index.add(out)
    assert len(index) == len(everything) and all(index.count(h) == everything.count(h) for h in pool[:50])
    index.add(array("Q", sorted(pool[:3])))  # later additions, as an array too
    assert len(index) == len(everything) + 3 and index.count(pool[0]) == everything.count(pool[0]) + 1


def test_a_files_id_hashes_are_its_ids_hashes_sorted():
    ids = [f"claude:msg_{i}:req_{i % 7}" for i in range(300)] + ["codex:s:1:2", "claude:msg_1:req_1", "caf\u00e9", ""]
    got = array("Q")
    got.frombytes(id_hashes(ids))
    assert got.tolist() == sorted(map(id_hash, ids))
