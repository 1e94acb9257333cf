"""A stage's forked copy that lets the next stages start before it has finished.

On a first run (or FORCE) refresh runs normalize in a forked copy of itself. What the
later stages read from normalize is its rollups; the day files of events/ (145 MB copied
at 200k calls) and the parse cache's index are for the user and the next run. So once
every rollup is written, normalize calls ``release()``: refresh stops waiting, runs
aggregate and price on one core while the copy finishes the day files on the other, and
waits for it (``finish()``) before the run summary, so a run still ends only when all of
it is written. aggregate, also forked on a first run, releases refresh the same way once
aggregates.json is written, and saves its state for the next run while price works.
Outside refresh (a stage run alone) ``release()`` does nothing.

Later runs parse little, and normalize gives each changed source a process of its own
(bundle_normalize._one_process_per_source): there each source's process hands its counts
to normalize once its rollup is written, then writes its day files and saves its parse
cache, and touches its ``.normalized`` stamp last. normalize ``track``s it; run alone,
normalize waits for it before it ends; under refresh (``deferred``) refresh does.
"""
from __future__ import annotations

import os

# refresh runs the later stages itself: a stage leaves its released children to it
deferred = False
_release_fd: int | None = None  # the write end refresh gave this forked copy
_release_pid = 0  # ... and which process may use it (not a grandchild)
_running: list[tuple[int, str]] = []  # (pid, stage) released copies still running


def prepare_child(write_fd: int) -> None:
    """In the forked copy: where ``release()`` tells the parent it may go on."""
    global _release_fd, _release_pid
    _release_fd = write_fd
    _release_pid = os.getpid()
    _idle_work.clear()  # the parent's, queued before the fork: the parent does it


def release() -> None:
    """Tell the waiting parent the outputs later stages read are complete (once)."""
    global _release_fd
    if _release_fd is not None and os.getpid() == _release_pid:
        try:
            os.write(_release_fd, b"1")
        except OSError:
            pass  # the parent is gone; finishing our own writes is all that is left
        os.close(_release_fd)
        _release_fd = None


def close_inherited() -> None:
    """In a worker forked from the copy: drop the inherited write end, so the parent
    sees the pipe close when the copy itself ends, not when its last worker does."""
    global _release_fd
    if _release_fd is not None and os.getpid() != _release_pid:
        try:
            os.close(_release_fd)
        except OSError:
            pass
        _release_fd = None


def wait_for_release(read_fd: int) -> bool:
    """In the parent: True once the copy released it, False when it ended first."""
    try:
        got = os.read(read_fd, 1)
    finally:
        os.close(read_fd)
    return got == b"1"


_idle_work: list = []  # what to do while waiting for children (refresh: import later stages)


def when_idle(work) -> None:
    """Queue ``work`` for the next time this process waits on its children."""
    _idle_work.append(work)


def do_idle_work() -> None:
    """Run the queued work: normalize calls it once its source processes are started,
    refresh once it has forked a stage's copy (a first run's normalize); either has
    nothing else to do until they hand their results over."""
    while _idle_work:
        _idle_work.pop(0)()


def drop_idle_work() -> None:
    """Forget work no wait came for (a normalize with no source processes)."""
    _idle_work.clear()


def track(pid: int, stage: str) -> None:
    _running.append((pid, stage))


def finish() -> list[tuple[str, int]]:
    """Wait for every released copy; return (stage, exit code) of those that failed (each
    has said why on stderr, in one line)."""
    failed = []
    while _running:
        pid, stage = _running.pop(0)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code:
            failed.append((stage, code if code > 0 else 1))
    return failed
