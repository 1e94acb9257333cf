"""Columns: per-period numbers and names kept in a file, a block at a time in memory.

The incremental price stage keeps, per period of a report, its name, its key and a dozen
numbers (where its entries lie, how many there are, how long its output is). A long
history has thousands of periods (sessions: 7,900 at 400 days of 1,000 calls a day), and
as arrays these grew with it (~250 bytes a period, a dozen arrays at once). A ``Column``
holds at most one block being filled and one block last read; its full blocks go to a
``BlockFile`` (one unnamed temp file shared by a run's columns), or, for a column loaded
from a state, stay in the state file. Every use is in period order (appends, walks, a
cursor), so a block read serves the next few hundred asks. The incremental aggregate keeps
what it has per day, block and unit in them too (a day is also found by binary search).
"""
from __future__ import annotations

from array import array
from itertools import accumulate

from scripts.core.view_cache import Spill, nbytes

BLOCK = 1 << 12  # bytes of a column held in memory for appending, and for reading


class BlockFile(Spill):
    """Blocks appended to one unnamed temp file in ``directory`` (made on first use; None:
    kept in memory, for tests and small uses), read back by range: a ``Spill`` that holds
    nothing back in memory (a column already holds its block being filled)."""

    def __init__(self, directory: str | None):
        super().__init__(directory, limit=0)


class Column:
    """Numbers of one array typecode, one after another. Made with a ``BlockFile``, it is
    appended to (``append``, ``extend``, ``extend_range``); ``loaded`` over bytes that
    ``read(start, end)`` gives (a state file's), it is only read. Asked like an array:
    ``len``, an item (negative too), a slice (an array: ask for short ones), iteration;
    ``chunks`` gives it a block at a time."""

    __slots__ = ("typecode", "per", "n", "tail", "offsets", "blocks", "read", "cached", "cache")

    def __init__(self, typecode: str, blocks: BlockFile | None = None):
        self.typecode = typecode
        self.per = BLOCK // array(typecode).itemsize  # items a block
        self.n = 0
        self.tail = array(typecode)  # the items after the full blocks (fewer than a block)
        self.offsets = array("q")  # where each full block is in ``blocks``
        self.blocks = blocks if blocks is not None else BlockFile(None)
        self.read = None
        self.cached, self.cache = -1, None  # the block last read

    @classmethod
    def loaded(cls, typecode: str, read, nbytes: int) -> "Column":
        col = cls(typecode)
        col.read = read
        col.n = nbytes // array(typecode).itemsize
        return col

    @classmethod
    def in_blob(cls, typecode: str, blob, at) -> "Column":
        """The column ``BlobParts.put`` gave the place ``at`` = ``(start, end)`` in a blob
        read by ``blob.read(start, end)`` (a state's ``view_cache.FileBlob``)."""
        return cls.loaded(typecode, lambda a, b: blob.read(at[0] + a, at[0] + b), at[1] - at[0])

    @classmethod
    def of(cls, typecode: str, items, blocks: BlockFile | None = None) -> "Column":
        col = cls(typecode, blocks)
        col.extend(items)
        return col

    def __len__(self) -> int:
        return self.n

    def _full(self) -> int:
        """Items in full blocks (the rest is ``tail``)."""
        return self.n if self.read is not None else len(self.offsets) * self.per

    def _block(self, k: int) -> array:
        if k != self.cached:
            if self.read is not None:
                size = array(self.typecode).itemsize
                data = self.read(k * BLOCK, min(self.n * size, (k + 1) * BLOCK))
            else:
                data = self.blocks.read(self.offsets[k], self.offsets[k] + BLOCK)
            self.cache = array(self.typecode)
            self.cache.frombytes(data)
            self.cached = k
        return self.cache

    def __getitem__(self, i):
        if isinstance(i, slice):
            a, b, step = i.indices(self.n)
            if step != 1:
                raise ValueError("a column is sliced with step 1")
            out = array(self.typecode)
            for chunk in self.chunks(a, b):
                out += chunk
            return out
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError("column index out of range")
        full = self._full()
        if i >= full:
            return self.tail[i - full]
        return self._block(i // self.per)[i % self.per]

    def chunks(self, a: int = 0, b: int | None = None):
        """Items ``a:b`` as arrays, a block at most each."""
        b = self.n if b is None else min(b, self.n)
        full = self._full()
        per = self.per
        while a < b and a < full:
            k = a // per
            blk = self._block(k)
            stop = min(b, (k + 1) * per, full)
            yield blk[a - k * per:stop - k * per]
            a = stop
        if a < b:
            yield self.tail[a - full:b - full]

    def __iter__(self):
        for chunk in self.chunks():
            yield from chunk

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        if len(self) != len(other):
            return False
        if isinstance(other, Column):
            return all(x == y for x, y in zip(self.chunks(), other.chunks()))
        return all(x == y for x, y in zip(self, other))

    __hash__ = None

    def append(self, x) -> None:
        self.tail.append(x)
        self.n += 1
        if len(self.tail) >= self.per:
            self._flush()

    def extend(self, items) -> None:
        before = len(self.tail)
        if self.typecode == "B" and isinstance(items, (bytes, bytearray)):
            self.tail.frombytes(items)  # bytes into a column of "B": one copy, not an int a byte
        else:
            self.tail.extend(items)
        self.n += len(self.tail) - before
        if len(self.tail) >= self.per:
            self._flush()

    def extend_range(self, other: "Column", a: int, b: int) -> None:
        """Append ``other``'s items ``a:b`` (a block at a time)."""
        for chunk in other.chunks(a, b):
            self.extend(chunk)

    def _flush(self) -> None:
        per, tail = self.per, self.tail
        done = 0
        while len(tail) - done >= per:
            self.offsets.append(self.blocks.append(tail[done:done + per].tobytes()))
            done += per
        del tail[:done]

    def pieces(self):
        """The column's bytes, a block at a time (what a state saves)."""
        for chunk in self.chunks():
            yield chunk.tobytes()

    @property
    def nbytes(self) -> int:
        return self.n * array(self.typecode).itemsize


class Prefix:
    """Sums of a column's first items (``at(x)``: of items ``0:x``), asked mostly at
    growing ``x`` (a walk in order): each sum goes on from the last one. Where a run of
    the last report's units starts and ends in its file, from their lengths."""

    def __init__(self, col: Column):
        self.col, self.x, self.sum = col, 0, 0

    def at(self, x: int) -> int:
        if x < self.x:
            self.x, self.sum = 0, 0
        self.sum += sum(map(sum, self.col.chunks(self.x, x)))
        self.x = x
        return self.sum


class BlobParts:
    """Parts written one after another as one blob after a state's body (its place in
    ``blobs``, and in ``lazy``: the next run leaves it in the file and reads it a block at
    a time, ``Column.in_blob``): ``put`` gives a part's place ``(start, end)`` in the
    blob. A ``Column`` is copied to ``spill`` (its blocks are in a temp file, among other
    columns'); buffers and ``view_cache.Piece``s go as they are."""

    def __init__(self, blobs: list, lazy: list, spill: Spill):
        self.parts: list = []
        self.size = 0
        self.spill = spill
        blobs.append(self.parts)
        lazy.append(len(blobs) - 1)
        self.blob = len(blobs) - 1

    def put(self, part) -> tuple:
        if isinstance(part, Column):
            spill = self.spill
            at = spill.size
            for piece in part.pieces():
                spill.append(piece)
            part = spill.piece(at, spill.size)
        self.parts.append(part)
        start = self.size
        self.size += nbytes(part)
        return start, self.size


class Names:
    """Byte strings (period names) one after another: their bytes (a ``Column`` of "B")
    and where each ends (a ``Column`` of "q"). Asked like a list of bytes: ``len``, an
    item, a slice (a list), iteration, ``==``."""

    __slots__ = ("data", "ends", "at_end")

    def __init__(self, blocks: BlockFile | None = None, data: Column | None = None, ends: Column | None = None):
        self.data = data if data is not None else Column("B", blocks)
        self.ends = ends if ends is not None else Column("q", blocks)
        self.at_end = len(self.data)

    @classmethod
    def of(cls, names, blocks: BlockFile | None = None) -> "Names":
        out = cls(blocks)
        for name in names:
            out.append(name)
        return out

    def __len__(self) -> int:
        return len(self.ends)

    def append(self, raw: bytes) -> None:
        self.data.extend(raw)  # an array of "B" takes bytes
        self.at_end += len(raw)
        self.ends.append(self.at_end)

    def extend(self, names: list) -> None:
        """Append each of ``names`` (a loop's piece at a time: one call, not one a name)."""
        if not names:
            return
        self.data.extend(b"".join(names))
        ends = list(accumulate(map(len, names), initial=self.at_end))
        self.ends.extend(ends[1:])
        self.at_end = ends[-1]

    def extend_from(self, other: "Names", i: int, j: int) -> None:
        """Append ``other``'s names ``i:j``."""
        if j <= i:
            return
        a = other.ends[i - 1] if i else 0
        b = other.ends[j - 1]
        self.data.extend_range(other.data, a, b)
        shift = self.at_end - a
        for chunk in other.ends.chunks(i, j):
            self.ends.extend([e + shift for e in chunk])
        self.at_end += b - a

    def _item(self, i: int) -> bytes:
        a = self.ends[i - 1] if i else 0
        return self.data[a:self.ends[i]].tobytes()

    def __getitem__(self, i):
        if isinstance(i, slice):
            a, b, _ = i.indices(len(self))
            return list(self.iter_range(a, b))
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("names index out of range")
        return self._item(i)

    def iter_range(self, i: int, j: int):
        """Names ``i:j`` in order (their bytes read a block at a time)."""
        a = self.ends[i - 1] if i else 0
        buf, base = b"", a  # bytes from ``base`` on, read ahead
        for chunk in self.ends.chunks(i, j):
            for e in chunk:
                if e - base > len(buf):
                    buf = buf[a - base:] + self.data[base + len(buf):max(e, base + len(buf) + BLOCK)].tobytes()
                    base = a
                yield buf[a - base:e - base]
                a = e

    def __iter__(self):
        return self.iter_range(0, len(self))

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        if isinstance(other, Names):
            return self.ends == other.ends and self.data == other.data
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None
