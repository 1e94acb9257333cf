"""Source listings made in a forked child: while refresh is still importing, and never in
the process the stages run in.

`make all` is one Python process (``refresh --check``). Before its first stage it spends
~30 ms importing click, orjson and the stages, on one core; stating every log (3,800
files at 200k calls, ~14 ms) needs none of that. So refresh forks this child first thing:
it lists every source (``sources.list_source``, the same code cache-check runs) on the
other core and hands over a pipe per source the stamp's facts (``sources.ListingSummary``),
while the manifests' bytes go to a temp file without a name that refresh opened before
forking it (``sources.ManifestSpool``). cache-check takes these instead of stating again.
A listing is a snapshot of the files either way; this one is a few milliseconds older.

cache-check starts the child itself when refresh did not (its console script, an import,
cache-check on its own; a no-op otherwise) and takes it at once: the process the stages
run in, or are forked from, never holds an object per log file nor a manifest's bytes.
Without fork, without a temp file, or when the child fails, cache-check lists the sources
itself.
"""
from __future__ import annotations

import marshal
import os

_child: tuple[int, int, int] | None = None  # (pid, read end of the pipe, the spool's descriptor)


def start(sources=None, directory: str | None = None) -> None:
    """Fork the child that lists ``sources`` (default: every source with an adapter), its
    manifests going to a temp file in ``directory`` (default: the system's temp directory).
    A no-op when one was started and not taken yet, where fork is missing, or when no temp
    file can be made: cache-check then lists the sources itself."""
    global _child
    if _child is not None or not hasattr(os, "fork"):
        return
    from scripts.fd_io import temp_dir, unnamed_temp, write_all

    try:
        # the manifests' bytes go through this file, not the pipe: refresh then never holds
        # them (~1.2 MB at 7,600 logs), cache-check copies each one in the kernel
        spool_fd = unnamed_temp(directory or temp_dir())
    except OSError:
        return
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            from scripts import adapters
            from scripts.core.sources import ManifestSpool, summarize_source

            spool = ManifestSpool(spool_fd)
            # the stamps' facts and where each manifest is in the spool, not the listings:
            # refresh then holds no object per log file (sources.ListingSummary), and this
            # child streams each listing into the spool, holding a bounded part of it
            summaries = [summarize_source(source, spool).as_tuple()
                         for source in adapters.available() if not sources or source in sources]
            write_all(write_end, marshal.dumps(summaries))
        except BaseException:  # noqa: BLE001 - the parent then lists by itself
            pass
        os._exit(0)
    os.close(write_end)
    _child = (pid, read_end, spool_fd)


def take() -> tuple | None:
    """``(spool, {source: ListingSummary})``: the prefetched summaries and the
    ``sources.ManifestSpool`` their manifests are in (the caller closes it), once; None
    when there is none."""
    global _child
    if _child is None:
        return None
    pid, read_end, spool_fd = _child
    _child = None
    from scripts.core.sources import ListingSummary, ManifestSpool
    from scripts.fd_io import read_marshalled

    spool = ManifestSpool(spool_fd)
    try:
        raw = read_marshalled(read_end)
    finally:
        os.waitpid(pid, 0)
    if raw is None:
        spool.close()
        return None  # the child failed before writing all of it
    return spool, {values[0]: ListingSummary(*values) for values in raw}
