"""Columns (scripts/core/columns.py): price's per-period numbers and names, kept in a temp
file or a state file and read a block at a time. They must read back exactly what was
appended, however it was appended, and hold no more than a block or two in memory
whatever their length: that is what keeps price's memory flat as the history grows."""
from __future__ import annotations

import os
import random
import tracemalloc
from array import array

import pytest

from scripts.core.columns import BLOCK, BlockFile, Column, Names


@pytest.fixture
def blocks(tmp_path):
    b = BlockFile(str(tmp_path))
    yield b
    b.close()


def test_a_column_reads_back_what_was_appended_in_any_mix_of_calls(blocks):
    rng = random.Random(5)
    want = array("q")
    col = Column("q", blocks)
    while len(want) < 5 * BLOCK:  # several blocks in the file, and a tail
        how = rng.randrange(3)
        if how == 0:
            x = rng.randrange(-(1 << 40), 1 << 40)
            col.append(x)
            want.append(x)
        elif how == 1:
            xs = [rng.randrange(1000) for _ in range(rng.randrange(1, 700))]
            col.extend(xs)
            want.extend(xs)
        else:
            other = Column.of("q", want[: rng.randrange(len(want) + 1)], blocks)
            a = rng.randrange(len(other) + 1)
            b = rng.randrange(a, len(other) + 1)
            col.extend_range(other, a, b)
            want.extend(want[a:b])
    assert len(col) == len(want) and list(col) == list(want)
    for _ in range(300):
        i = rng.randrange(-len(want), len(want))
        assert col[i] == want[i]
        a = rng.randrange(len(want) + 1)
        b = rng.randrange(a, min(len(want), a + 3 * BLOCK) + 1)
        assert col[a:b] == want[a:b]
        assert sum(map(len, col.chunks(a, b))) == b - a
    with pytest.raises(IndexError):
        col[len(want)]
    assert col == Column.of("q", want) and col != Column.of("q", want[:-1])


def test_a_loaded_column_reads_its_bytes_from_where_they_were_saved(blocks, tmp_path):
    col = Column.of("i", range(-3000, 7000, 3), blocks)
    path = tmp_path / "saved.bin"
    path.write_bytes(b"head" + b"".join(col.pieces()) + b"tail")
    fd = os.open(path, os.O_RDONLY)
    try:
        loaded = Column.loaded("i", lambda a, b: os.pread(fd, b - a, 4 + a), col.nbytes)
        assert len(loaded) == len(col) and list(loaded) == list(range(-3000, 7000, 3))
        assert loaded[-1] == 6999 and loaded[1234] == col[1234] and loaded[100:2100] == col[100:2100]
        assert loaded == col
    finally:
        os.close(fd)


def test_names_read_back_in_order_and_at_any_place(blocks):
    rng = random.Random(9)
    want = [("p%05d-" % i + "x" * rng.randrange(0, 90)).encode() for i in range(3000)]
    names = Names(blocks)
    at = 0
    while at < len(want):
        if rng.random() < 0.5:
            names.append(want[at])
            at += 1
        else:
            k = rng.randrange(1, 50)
            names.extend(want[at:at + k])
            at += k
    assert len(names) == len(want) and list(names) == want and names == want
    for _ in range(200):
        i = rng.randrange(len(want))
        j = rng.randrange(i, len(want) + 1)
        assert names[i] == want[i] and names[i:j] == want[i:j] and list(names.iter_range(i, j)) == want[i:j]
    copy = Names(blocks)
    copy.extend_from(names, 0, 1000)
    copy.extend_from(names, 2000, 3000)
    assert list(copy) == want[:1000] + want[2000:]
    assert Names.of(want) == names and Names.of(want[:-1]) != names


def test_a_long_column_holds_a_block_or_two_in_memory(blocks):
    """The point of columns: memory does not grow with the number of periods."""
    tracemalloc.start()
    try:
        col = Column("q", blocks)
        names = Names(blocks)
        for i in range(200_000):
            col.append(i)
            if i % 10 == 0:
                names.append(b"session-%08d" % i)
        total = 0
        for x in col:
            total += x
        first_names = sum(1 for _ in names)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == sum(range(200_000)) and first_names == 20_000
    # 1.6 MB of numbers and 0.3 MB of names went by; a few blocks and the offsets stayed
    assert peak < 12 * BLOCK + 64 * 1024, peak


def test_a_block_file_without_a_directory_keeps_its_blocks_in_memory():
    col = Column.of("q", range(3 * BLOCK))
    assert col.blocks.fd is None and list(col) == list(range(3 * BLOCK))
