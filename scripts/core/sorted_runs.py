"""Tuples added in any order and given back sorted by their first item, with a bounded
number of them in memory: past ``RUN`` they go, sorted, to a temp file without a name
(marshal, a block at a time), and the runs are merged as they are read back.

The listing child of ``refresh --check`` sorts each source's files by path with it
(``sources.summarize_source``), so its memory does not grow with the number of log files.
It imports little (that child runs while refresh imports, and should not wait on heavy
imports), ``heapq`` only once a run is spilled.
"""
from __future__ import annotations

import marshal
import os
from itertools import islice
from operator import itemgetter

from scripts.fd_io import temp_dir, unnamed_temp, write_all

_FIRST = itemgetter(0)


class RunFile:
    """Sorted runs of tuples (or lists) in one unnamed temp file in ``directory`` (default:
    the system's), marshalled ``BLOCK`` at a time: ``write`` a run, ``read`` it back (an
    iterator holding one block at a time). What ``SortedRuns`` spills to, and normalize's
    rows that wait for its walk (``event_cache._WaitingRuns``)."""

    BLOCK = 64  # items a run is written and read back at a time

    def __init__(self, directory: str | None = None, block: int | None = None):
        self._directory = directory
        self._block = block or self.BLOCK
        self._fd = -1
        self._end = 0  # where the next block goes in the temp file

    def write(self, items) -> list[tuple[int, int]] | None:
        """Append a sorted run; its blocks' ``(offset, length)``, or None when no temp file
        can be had (no temp dir writable)."""
        if self._fd < 0:
            try:
                self._fd = unnamed_temp(self._directory or temp_dir())
            except OSError:
                return None
        blocks: list[tuple[int, int]] = []
        block: list = []
        for item in items:
            block.append(item)
            if len(block) >= self._block:
                blocks.append(self._write_block(block))
                block = []
        if block:
            blocks.append(self._write_block(block))
        return blocks

    def _write_block(self, block: list) -> tuple[int, int]:
        data = marshal.dumps(block)
        write_all(self._fd, data)  # only this object writes the file: its offset is the end
        at = (self._end, len(data))
        self._end += len(data)
        return at

    def read(self, blocks: list[tuple[int, int]]):
        for offset, length in blocks:
            yield from marshal.loads(os.pread(self._fd, length, offset))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class SortedRuns:
    """``add`` tuples (their first item the key: a str, an int...), then ``sorted()``
    gives them all back by that key, stable (equal keys in the order they were added), as
    ``sorted(items, key=first)`` would. Close it (or use ``with``) to drop the temp file."""

    RUN = 1024  # tuples held before they are sorted and spilled (~0.35 MB of file listing)
    FAN_IN = 16  # runs merged at once: past it, the runs so far are merged into one

    def __init__(self, directory: str | None = None):
        self._file = RunFile(directory)
        self._held: list[tuple] = []
        self._runs: list[list[tuple[int, int]]] = []  # each run: its blocks' (offset, length)
        self._can_spill = True

    def add(self, item: tuple) -> None:
        self._held.append(item)
        if len(self._held) >= self.RUN and self._can_spill:
            self._spill_held()

    def extend(self, items) -> None:
        """``add`` each of ``items``, a run's worth at a time."""
        items = iter(items)
        while self._can_spill:
            self._held.extend(islice(items, self.RUN - len(self._held)))
            if len(self._held) < self.RUN:
                return
            self._spill_held()
        self._held.extend(items)

    @property
    def spilled_runs(self) -> int:
        return len(self._runs)

    def sorted(self):
        """Every tuple added, by key (an iterator, once: the runs are read as it goes)."""
        self._held.sort(key=_FIRST)
        if not self._runs:
            return iter(self._held)
        import heapq

        # the held tuples were added last: after the runs among equal keys (merge is stable)
        return heapq.merge(*map(self._file.read, self._runs), self._held, key=_FIRST)

    def _spill_held(self) -> None:
        self._held.sort(key=_FIRST)
        if not self._write_run(self._held):
            return
        self._held = []
        if len(self._runs) >= self.FAN_IN:
            # one block of each run is held while merging: fold them into one run so that
            # many files never mean many runs' blocks at once
            import heapq

            runs, self._runs = self._runs, []
            self._write_run(heapq.merge(*map(self._file.read, runs), key=_FIRST))

    def _write_run(self, items) -> bool:
        """Append a sorted run to the temp file; False when there is none to be had: the
        tuples are then held, as if ``RUN`` were unbounded."""
        blocks = self._file.write(items)
        if blocks is None:
            self._can_spill = False
            return False
        self._runs.append(blocks)
        return True

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "SortedRuns":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
