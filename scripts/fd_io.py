"""Descriptor I/O that imports nothing but ``os``: pipes from forked children, temp files
without a name, kernel copies between files.

``shared_io`` re-exports all of it (stages import their I/O from there); this module exists
apart so that the listing child of ``refresh --check`` (scripts/core/listing_prefetch.py),
and refresh before it forks that child, can use it without importing orjson (~10 ms).
"""
from __future__ import annotations

import os


def temp_dir() -> str:
    """The system's temp directory as ``tempfile.gettempdir`` finds it in the usual case
    ($TMPDIR, $TEMP, $TMP, else /tmp), without importing tempfile (~9 ms)."""
    for var in ("TMPDIR", "TEMP", "TMP"):
        value = os.environ.get(var)
        if value:
            return value
    return "/tmp"


def write_all(fd: int, data) -> None:
    """Write all of ``data`` to the descriptor (``os.write`` may write part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_all(fd: int) -> bytes:
    """Everything until the other end closes (a pipe from a forked child), then close it.
    (64 KB a read, what a pipe holds: a larger read returns no more, it only allocates a
    larger buffer first.)"""
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_marshalled(fd: int):
    """What a forked child marshalled into the pipe ``fd`` before closing its end; None
    when it wrote nothing or not all of it (it failed first)."""
    import marshal

    try:
        return marshal.loads(read_all(fd))
    except (EOFError, ValueError, TypeError):
        return None


def copy_range(src_fd: int, dst_fd: int, offset: int, length: int) -> None:
    """Append ``length`` bytes of ``src_fd`` at ``offset`` to ``dst_fd``, in the kernel
    where it can (copy_file_range; sendfile between file systems, which copy_file_range
    refuses, as from a tmpfs /tmp), else through a buffer."""
    copies = [c for c in (getattr(os, "copy_file_range", None), _send_range if hasattr(os, "sendfile") else None) if c is not None]
    while length > 0:
        n = 0
        while copies:
            try:
                n = copies[0](src_fd, dst_fd, length, offset)
                break
            except OSError:
                del copies[0]  # not for these two files: the next way
        if not n:
            data = os.pread(src_fd, min(length, 1 << 24), offset)
            if not data:
                raise OSError(f"{_fd_name(src_fd)} ended early at byte {offset}")
            write_all(dst_fd, data)
            n = len(data)
        offset += n
        length -= n


def _send_range(src_fd: int, dst_fd: int, length: int, offset: int) -> int:
    return os.sendfile(dst_fd, src_fd, offset, length)


def _fd_name(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"file descriptor {fd}"


def unnamed_temp(directory: str) -> int:
    """A read-write descriptor of a temp file with no name (Linux's O_TMPFILE; elsewhere a
    named one, unlinked at once): nothing is left behind, however the run ends."""
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        try:
            return os.open(directory, flag | os.O_RDWR, 0o600)
        except OSError:
            pass
    for _ in range(100):
        name = os.path.join(directory, f".spill.{os.getpid()}-{os.urandom(4).hex()}.tmp")
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        os.unlink(name)
        return fd
    raise OSError(f"could not create a temp file in {directory}")
