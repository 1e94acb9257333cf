"""Source listings taken in a forked child while the parent is still importing.

`make all` is one Python process (``refresh --check``). Before its first stage it spends
~30 ms importing click, orjson and the stages, on one core; stating every log (3,800
files at 200k calls, ~14 ms) needs none of that. So refresh forks this child first thing:
it lists every source (``sources.list_source``, the same code cache-check runs) on the
other core and hands the listings over a pipe; cache-check takes them instead of stating
again. A listing is a snapshot of the files either way; this one is a few milliseconds
older. Without fork, or when the child fails, cache-check lists the sources itself.

Only this module and refresh's start know about it (``take`` returns None otherwise).
"""
from __future__ import annotations

import marshal
import os

_child: tuple[int, int] | None = None  # (pid, read end of the pipe)


def start() -> None:
    """Fork the child that lists every source (no-op where fork is missing)."""
    global _child
    if _child is not None or not hasattr(os, "fork"):
        return
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            from scripts import adapters
            from scripts.core.sources import list_source

            listings = [list_source(source) for source in adapters.available()]
            # the stamps' facts and the manifests' bytes, not the listings: refresh then
            # holds no object per log file (sources.ListingSummary)
            summaries = [listing.summary().as_tuple() for listing in listings]
            # not shared_io.write_all: that module imports orjson, which this child avoids
            view = memoryview(marshal.dumps(summaries))
            while view:
                view = view[os.write(write_end, view):]
        except BaseException:  # noqa: BLE001 - the parent then lists by itself
            pass
        os._exit(0)
    os.close(write_end)
    _child = (pid, read_end)


def take() -> dict | None:
    """The prefetched ``sources.ListingSummary`` by source, once; None when there is none."""
    global _child
    if _child is None:
        return None
    pid, read_end = _child
    _child = None
    from scripts.shared_io import read_marshalled

    try:
        raw = read_marshalled(read_end)
    finally:
        os.waitpid(pid, 0)
    if raw is None:
        return None  # the child failed before writing all of it
    from scripts.core.sources import ListingSummary

    return {values[0]: ListingSummary(*values) for values in raw}
