"""fold_changes sorts a run's new id hashes a 64th at a time (a first run adds every
call's): the result is the whole sorted array and the hashes held more than once. A later
run searches the base in the index file a block at a time (SortedHashes), and merges its
additions and removals into the next base."""
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


def _on_file(values: list[int]):
    """``values`` (sorted) as a SortedHashes in a file, as a later run loads them."""
    import io

    from scripts.core.event_cache import FileAt, SortedHashes

    raw = b"xyz" + array("Q", values).tobytes()
    return SortedHashes(FileAt(io.BytesIO(raw)), 3, len(values))


def test_a_base_in_a_file_counts_as_the_array_does():
    rng = random.Random(7)
    pool = [rng.getrandbits(64) for _ in range(400)] + [0, (1 << 64) - 1]
    # runs of one hash longer than a block, across block boundaries
    values = sorted([rng.choice(pool) for _ in range(6000)] + [pool[0]] * 1500)
    on_file = _on_file(values)
    for h in pool + [1, 5, (1 << 64) - 2]:
        assert on_file.count(h) == values.count(h), h
    index = HashIndex(on_file)
    assert index.present(array("Q", sorted(pool[:50] + [3]))) == [h for h in sorted(pool[:50] + [3]) if h in values]


def test_additions_and_removals_merge_into_the_next_base():
    rng = random.Random(8)
    pool = [rng.getrandbits(64) for _ in range(300)]
    values = sorted(rng.choice(pool) for _ in range(5000))
    for base in (_on_file(values), array("Q", values)):
        index = HashIndex(base)
        index.add(array("Q", sorted(rng.choice(pool) for _ in range(1200)) + [(1 << 64) - 1]))
        gone = [rng.choice(values) for _ in range(600)] + [12345]  # one never held
        index.remove(gone)
        want = list(values) + index.added
        for h in gone:
            if h in want:
                want.remove(h)
        assert index.needs_merge()
        got = array("Q")
        got.frombytes(b"".join(bytes(p) for p in index.merged_pieces()))
        assert got.tolist() == sorted(want)
        assert len(index) == len(values) + len(index.added) - len(gone)  # the count, not the merge


def test_runs_written_to_a_spill_are_searched_as_one_array(tmp_path):
    from scripts.core.event_cache import SortedHashes
    from scripts.core.view_cache import Spill

    class SmallSpill(Spill):
        LIMIT = 1000  # some runs straddle the file and the buffer

    rng = random.Random(9)
    values = sorted(rng.getrandbits(64) for _ in range(5000)) + [(1 << 64) - 1] * 3
    spill = SmallSpill(str(tmp_path))
    spill.append(b"before")
    cuts = sorted(rng.sample(range(1, len(values)), 40))
    runs = [array("Q", values[a:b]) for a, b in zip([0] + cuts, cuts + [len(values)])]
    on_spill = SortedHashes.written(spill, iter(runs))
    assert on_spill.sample.tolist() == values[::SortedHashes.BLOCK]
    assert b"".join(bytes(p) for p in on_spill.pieces()) == array("Q", values).tobytes()
    for h in values[::97] + [5, (1 << 64) - 1]:
        assert on_spill.count(h) == values.count(h)
    spill.close()


def test_sorted_through_spilled_buckets_equals_sorted_at_once(tmp_path, monkeypatch):
    """A first build's hashes go through buckets spilled a run at a time (in a temp file,
    or in memory without a directory): the same runs and repeats as one sort."""
    from scripts.core import event_merge

    rng = random.Random(10)
    pool = [rng.getrandbits(64) for _ in range(2000)] + [0, (1 << 64) - 1, 1 << 62, (1 << 62) - 1, 3 << 62]
    arrays = [array("Q", sorted(rng.choice(pool) for _ in range(rng.randrange(0, 80)))) for _ in range(150)]
    arrays.append(array("Q", sorted(rng.choice(pool) for _ in range(3000))))  # a file with many calls
    want, want_repeated = _sorted_hashes(arrays)
    for run_length in (1, 5, 128):
        monkeypatch.setattr(event_merge, "BUCKET_RUN", run_length)
        for directory in (str(tmp_path), None):
            repeated: set[int] = set()
            got = array("Q")
            for run in event_merge._sorted_runs_spilled(iter(arrays), repeated, directory):
                got.extend(run)
            assert got == want and repeated == want_repeated, (run_length, directory)


def test_a_first_runs_log_gives_back_every_record_in_order(tmp_path):
    """event_merge.FreshLog: a first run's results, walked a chunk at a time, whatever the
    chunk and wherever the records are (memory, temp file)."""
    import marshal
    from types import SimpleNamespace

    from scripts.core.event_merge import FreshLog

    rng = random.Random(9)
    for limit in (0, 100, 1 << 18):
        log = FreshLog(str(tmp_path), limit=limit)
        log.CHUNK = 1000
        want = []
        for i in range(300):
            res = SimpleNamespace(path=f"/logs/{i}.jsonl", fno=i, rollup=marshal.dumps([[i] * rng.randrange(0, 300)]),
                                  hashes=bytes(rng.randrange(0, 3000)))
            log.keep(res)
            want.append((res.path, res.fno, res.rollup, res.hashes))
        assert list(log.records()) == want and list(log.records()) == want
        log.close()
