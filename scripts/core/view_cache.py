"""The state files of the incremental ``aggregate`` and ``price`` (``cache/aggregate/``,
``cache/price/``): what a run needs to redo only the report rows whose inputs changed.

A state file is ``MAGIC``, one JSON header line and a marshal body. The header holds the
cache version, the *identity* of what the state was computed for (parameters, time zone,
filters, pricing hash, a hash of the code that wrote it, the Python version, whose marshal
format it is) and the body's SHA-1. A state is used only when all of it matches; a missing,
cut-short, corrupted or foreign file reads as "no state" with the reason, and the stage
recomputes everything. Written through a temp file and a rename, after the outputs it
describes, so a kill leaves the old state or the new one.

A state also records the identity (inode, size, mtime) of each output file it indexes:
reused rows are byte ranges of the previous outputs, so an output that is not exactly the
one the state describes (replaced, edited, left by a killed run) disables reuse.
"""
from __future__ import annotations

import hashlib
import marshal
import os
import stat
import sys

import orjson

from scripts.shared_io import AtomicFile, copy_range, remove_if_present, unnamed_temp, write_all

CACHE_VERSION = 1
MAGIC = b"tokentally-view-state\n"
_CODE: dict[tuple, str] = {}


class Stats:
    """What a run did with its state: ``state`` is ``used``, ``bypassed`` (FORCE), or why
    it was not used (``missing``, ``corrupt``, ``version``, ``params``, ``output``: the
    previous output is not the one recorded, ``large``: too much changed to be worth it);
    rows reused from the previous output and rows recomputed."""

    def __init__(self):
        self.state = "none"
        self.reused = 0
        self.recomputed = 0

    def as_dict(self) -> dict:
        return {"state": self.state, "rows_reused": self.reused, "rows_recomputed": self.recomputed}


_SEP = b'},{"'


def entry_bytes(entries: list) -> list[bytes]:
    """Each entry's compact JSON (sorted keys), from one dump of the list. Entries are
    objects whose values are scalars, lists and flat objects, so ``},{"`` only occurs
    between two of them (a quote inside a string is escaped); checked by the count, else
    dumped one by one."""
    if not entries:
        return []
    whole = orjson.dumps(entries, option=orjson.OPT_SORT_KEYS)
    pieces = whole[3:-2].split(_SEP)
    if len(pieces) != len(entries):
        return [orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for e in entries]
    return [b'{"' + p + b"}" for p in pieces]


class Spill:
    """Bytes appended one after another and copied out later as ranges: in memory while
    small, then in an unnamed temp file in ``directory`` (what a first run's sessions are
    kept in until the document reaches them, so they are never all in memory)."""

    LIMIT = 1 << 18

    def __init__(self, directory: str, limit: int | None = None):
        self.dir = directory
        self.limit = self.LIMIT if limit is None else limit  # bytes kept in memory at most
        self.buf = bytearray()
        self.fd = None
        self.size = 0  # bytes appended so far (the next append's offset)

    def append(self, b) -> int:
        """Append ``b``; return its offset."""
        at = self.size
        self.buf += b
        self.size += len(b)
        if len(self.buf) > self.limit:
            if self.fd is None:
                self.fd = unnamed_temp(self.dir)
            write_all(self.fd, self.buf)
            self.buf = bytearray()
        return at

    def put(self, b) -> int:
        """Append ``b`` and a comma; return ``len(b) + 1`` (0 for an empty ``b``, not
        appended): consecutive pieces are then one range, commas included."""
        if not b:
            return 0
        buf = self.buf
        buf += b
        buf += b","
        self.size += len(b) + 1
        if len(buf) > self.limit:
            self.append(b"")
        return len(b) + 1

    def write_range(self, fh, start: int, end: int) -> None:
        """Write bytes ``start:end`` to the open file ``fh``."""
        flushed = self.size - len(self.buf)
        if start < flushed:
            upto = min(end, flushed)
            fh.flush()  # the copy goes straight to the descriptor
            copy_range(self.fd, fh.fileno(), start, upto - start)
            start = upto
        if start < end:
            fh.write(memoryview(self.buf)[start - flushed:end - flushed])

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.buf = bytearray()


def code_hash(*modules: str) -> str:
    """A hash of the named modules' source files (what computes the cached rows)."""
    key = tuple(modules)
    hit = _CODE.get(key)
    if hit is None:
        h = hashlib.sha1(sys.version.encode() + orjson.__version__.encode())
        for name in modules:
            module = sys.modules.get(name) or __import__(name, fromlist=["_"])
            with open(module.__file__, "rb") as fh:
                h.update(fh.read())
        hit = _CODE[key] = h.hexdigest()
    return hit


def zone_identity(zone_name: str) -> str:
    """A hash of the rules a time zone name stands for here (the TZif file zoneinfo reads:
    the system's, else the tzdata package's), so that new zone rules recompute the days."""
    import zoneinfo

    parts = zone_name.split("/")
    for base in zoneinfo.TZPATH:
        path = os.path.join(base, *parts)
        if os.path.isfile(path):
            break
    else:
        try:
            import tzdata

            path = os.path.join(os.path.dirname(tzdata.__file__), "zoneinfo", *parts)
        except ImportError:
            return zone_name
    try:
        with open(path, "rb") as fh:
            return zone_name + ":" + hashlib.sha1(fh.read()).hexdigest()
    except OSError:
        return zone_name


def file_identity(path: str | int) -> list | None:
    """``[inode, size, mtime_ns]`` of a regular file (a path or an open descriptor), None
    if it is missing or not a regular file (a pipe). A file replaced by rename gets a new
    inode, so this changes whenever a stage rewrites its output."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns] if stat.S_ISREG(st.st_mode) else None


def _parse(data: bytes):
    """``(header, body)`` of a state's bytes, or ``(None, reason)``."""
    if not data.startswith(MAGIC):
        return None, "corrupt"
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        return None, "corrupt"
    try:
        header = orjson.loads(data[len(MAGIC):end])
    except orjson.JSONDecodeError:
        return None, "corrupt"
    body = memoryview(data)[end + 1:]
    if not isinstance(header, dict) or header.get("digest") != hashlib.sha1(body).hexdigest():
        return None, "corrupt"
    return header, body


def verify(data: bytes) -> str | None:
    """Why a state file's bytes are not a complete state (None if they are): for checks
    that a kill never leaves a cut-short one (tests/faults)."""
    header, why = _parse(data)
    return why if header is None else None


def load_unless_forced(path: str, identity: dict, force: bool, stats: "Stats"):
    """The state body to build on, or None; ``stats.state`` says which and why
    (``bypassed`` under FORCE, else what ``load`` found)."""
    if force:
        stats.state = "bypassed"
        return None
    state, why = load(path, identity)
    stats.state = why or "used"
    return state


def load(path: str, identity: dict):
    """``(body, None)`` or ``(None, reason)``: reason is ``missing``, ``corrupt``,
    ``version`` (another cache version or another code) or ``params`` (computed for other
    parameters)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return None, "missing"
    except OSError:
        return None, "corrupt"
    header, body = _parse(data)
    if header is None:
        return None, body
    if header.get("version") != CACHE_VERSION or (header.get("identity") or {}).get("code") != identity.get("code"):
        return None, "version"
    if header.get("identity") != identity:
        return None, "params"
    try:
        return marshal.loads(body), None
    except (EOFError, ValueError, TypeError):
        return None, "corrupt"


def save(path: str, identity: dict, body) -> None:
    payload = marshal.dumps(body)
    header = orjson.dumps({"version": CACHE_VERSION, "identity": identity, "digest": hashlib.sha1(payload).hexdigest()}, option=orjson.OPT_SORT_KEYS)
    with AtomicFile(path) as fh:
        fh.write(MAGIC + header + b"\n")
        fh.write(payload)


def save_with_blobs(path: str, identity: dict, body, blobs: list) -> None:
    """``save``, with ``blobs`` (bytes-like) written as they are after the marshalled body
    (no copy of them in one payload): what ``load_with_blobs`` gives back as views of the
    file's bytes, never unmarshalled. The digest covers them, so ``verify`` checks the
    file whole like any state."""
    payload = marshal.dumps(body)
    h = hashlib.sha1(payload)
    for b in blobs:
        h.update(b)
    header = orjson.dumps({"version": CACHE_VERSION, "identity": identity, "digest": h.hexdigest(),
                           "body": len(payload), "blobs": [memoryview(b).nbytes for b in blobs]}, option=orjson.OPT_SORT_KEYS)
    with AtomicFile(path) as fh:
        fh.write(MAGIC + header + b"\n")
        fh.write(payload)
        del payload
        for b in blobs:
            fh.write(b)


def load_with_blobs(path: str, identity: dict, force: bool, stats: "Stats"):
    """``(body, blobs)`` of a state ``save_with_blobs`` wrote, or ``(None, [])``;
    ``stats.state`` says which and why, as ``load_unless_forced``. The blobs are
    memoryviews of the file's bytes (read once)."""
    if force:
        stats.state = "bypassed"
        return None, []
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        stats.state = "missing"
        return None, []
    except OSError:
        stats.state = "corrupt"
        return None, []
    header, body = _parse(data)
    why = None
    if header is None:
        why = body
    elif header.get("version") != CACHE_VERSION or (header.get("identity") or {}).get("code") != identity.get("code"):
        why = "version"
    elif header.get("identity") != identity:
        why = "params"
    if why is None:
        try:
            n = header["body"]
            value = marshal.loads(body[:n])
            blobs = []
            for size in header["blobs"]:
                blobs.append(body[n:n + size])
                n += size
            if n != len(body):
                raise ValueError("blob sizes")
        except (EOFError, ValueError, TypeError, KeyError):
            why = "corrupt"
    stats.state = why or "used"
    return (None, []) if why else (value, blobs)


def discard(path: str) -> None:
    """Remove a state (before its outputs change without it: FORCE, no cache)."""
    remove_if_present(path)


class PreviousOutput:
    """A previous output kept open, when it is exactly the file a state recorded: the runs
    of it a new output keeps are copied by the kernel (``copy``), never read into memory
    (at 400k calls the sessions report is 14 MB). It stays readable after the new output
    is renamed over it, while it is open."""

    def __init__(self, fd: int):
        self.fd = fd

    @classmethod
    def open(cls, path: str, recorded) -> "PreviousOutput | None":
        if recorded is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        if file_identity(fd) != list(recorded):
            os.close(fd)
            return None
        return cls(fd)

    def read(self, start: int, end: int) -> bytes | None:
        """Bytes ``start:end`` (None if the file ends before ``end``)."""
        data = os.pread(self.fd, end - start, start)
        return data if len(data) == end - start else None

    def copy(self, fh, start: int, end: int) -> None:
        """Write bytes ``start:end`` to the open file ``fh``."""
        fh.flush()  # the copy goes straight to the descriptor
        copy_range(self.fd, fh.fileno(), start, end - start)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
