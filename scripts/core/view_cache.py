"""The state files of the incremental ``aggregate`` and ``price`` (``cache/aggregate/``,
``cache/price/``): what a run needs to redo only the report rows whose inputs changed.

A state file is ``MAGIC``, one JSON header line and a marshal body. The header holds the
cache version, the *identity* of what the state was computed for (parameters, time zone,
filters, pricing hash, a hash of the code that wrote it, the Python version, whose marshal
format it is) and the body's SHA-1. A state is used only when all of it matches; a missing,
cut-short, corrupted or foreign file reads as "no state" with the reason, and the stage
recomputes everything. Written through a temp file and a rename, after the outputs it
describes, so a kill leaves the old state or the new one. ``save_parts`` / ``load_parts``
(price's and aggregate's states) write large buffers after the marshal body as they are (the digest
covers them) and read them back one by one, or leave them in the file (``FileBlob``).

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
from array import array

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


class PackedBytes:
    """Byte strings one after another in one buffer, and where each ends: a string costs
    its bytes and 8, where a list of bytes objects costs ~90 an item (thousands of session
    keys or period names otherwise). ``raw(i)`` is item ``i``'s bytes (a slice of the
    buffer); what an item means is the subclass's (aggregate's ``KeyList``)."""

    __slots__ = ("blob", "ends")

    def __init__(self, blob=None, ends=None):
        self.blob = bytearray() if blob is None else blob  # a loaded one (a view of a state) is only read
        self.ends = array("q") if ends is None else ends  # where each item's bytes end

    def __len__(self) -> int:
        return len(self.ends)

    def raw(self, i: int):
        return self.blob[self.ends[i - 1] if i else 0:self.ends[i]]

    def raws(self):
        """Every item's bytes, in order."""
        start, blob = 0, self.blob
        for end in self.ends:
            yield blob[start:end]
            start = end

    def append_raw(self, raw: bytes) -> None:
        self.blob += raw
        self.ends.append(len(self.blob))

    def extend_from(self, other: "PackedBytes", i: int, j: int) -> None:
        """Append ``other``'s items ``i:j`` (one copy of their bytes)."""
        if j <= i:
            return
        a = other.ends[i - 1] if i else 0
        shift = len(self.blob) - a
        self.blob += other.blob[a:other.ends[j - 1]]
        self.ends.extend(e + shift for e in other.ends[i:j])


class Spill:
    """Bytes appended one after another and read or copied out later as ranges: in memory
    while small, then in an unnamed temp file in ``directory`` (None: always in memory).
    What a first run's sessions are kept in until the document reaches them, and
    normalize's parse results and merged rows until they are folded or saved, so they are
    never all in memory."""

    LIMIT = 1 << 18

    def __init__(self, directory: str | None, limit: int | None = None):
        self.dir = directory
        self.limit = self.LIMIT if limit is None else limit  # bytes kept in memory at most
        self.buf = bytearray()
        self.fd: int | None = None
        self.size = 0  # bytes appended so far (the next append's offset)

    def append(self, *parts) -> int:
        """Append ``parts`` one after another; return where the first one starts."""
        at = self.size
        if self.dir is not None and len(self.buf) + sum(map(len, parts)) > self.limit:
            # to the file, the buffer first (large parts are not copied into it)
            if self.fd is None:
                os.makedirs(self.dir, exist_ok=True)
                self.fd = unnamed_temp(self.dir)
            for b in (self.buf, *parts):
                write_all(self.fd, b)
                self.size += len(b)
            self.size -= len(self.buf)
            self.buf = bytearray()
            return at
        for b in parts:
            self.buf += b
            self.size += len(b)
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

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``start:end``."""
        flushed = self.size - len(self.buf)
        out = b""
        if start < flushed:
            upto = min(end, flushed)
            out = os.pread(self.fd, upto - start, start)
            if len(out) != upto - start:
                raise OSError("a spill file ended early")
            start = upto
        if start < end:
            out += self.buf[start - flushed:end - flushed]
        return out

    def piece(self, start: int, end: int) -> "Piece":
        """Bytes ``start:end`` as a blob piece for ``save_parts`` (read when written)."""
        return Piece(self.read, start, end)


class Piece:
    """Bytes ``start:end`` of something read by ``read(start, end)`` (a spill, a state file),
    handed to ``save_parts`` as a blob piece: read a block at a time as it is written."""

    BLOCK = 1 << 16

    def __init__(self, read, start: int, end: int):
        self.read, self.start, self.size = read, start, end - start

    def chunks(self):
        for at in range(self.start, self.start + self.size, self.BLOCK):
            yield self.read(at, min(at + self.BLOCK, self.start + self.size))


class FileBlob:
    """A blob of a state left in its file by ``load_parts`` (``lazy``): bytes read by slice
    (``pread``) when asked. Holds its own descriptor, so it stays readable after the state
    is replaced; ``close`` it."""

    def __init__(self, fd: int, offset: int, size: int):
        self.fd, self.offset, self.size = fd, offset, size

    def __len__(self) -> int:
        return self.size

    def read(self, start: int, end: int) -> bytes:
        data = os.pread(self.fd, end - start, self.offset + start)
        if len(data) != end - start:
            raise OSError("a state file ended early")
        return data

    def __getitem__(self, s: slice) -> bytes:
        start, stop, _ = s.indices(self.size)
        return self.read(start, stop) if stop > start else b""

    def piece(self, start: int, end: int) -> Piece:
        return Piece(self.read, start, end)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


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


def nbytes(piece) -> int:
    """A blob piece's size in bytes (a buffer's, a ``Piece``'s)."""
    return piece.size if isinstance(piece, Piece) else memoryview(piece).nbytes


def _chunks_of(piece):
    return piece.chunks() if isinstance(piece, Piece) else (piece,)


def save_parts(path: str, identity: dict, body, blobs: list, lazy=()) -> None:
    """``save``, with large buffers (``blobs``: a state's packed arrays, MBs) written as
    they are after the marshalled ``body`` rather than copied into one payload; the digest
    covers them (``verify`` checks such a file as any other). A blob is a buffer (bytes,
    bytearray, array, memoryview), a ``Piece`` (read as it is written: a spill's, the last
    state's), or a list of them written one after another. ``load_parts`` gives them back;
    those whose places are in ``lazy`` left in the file (``FileBlob``)."""
    parts = [b if isinstance(b, list) else [b] for b in blobs]
    skeleton = marshal.dumps(body)

    def header(digest: str) -> bytes:
        return orjson.dumps({"version": CACHE_VERSION, "identity": identity, "digest": digest, "body": len(skeleton),
                             "blobs": [sum(map(nbytes, part)) for part in parts], "lazy": sorted(lazy)}, option=orjson.OPT_SORT_KEYS)

    digest = hashlib.sha1(skeleton)
    with AtomicFile(path) as fh:
        # the digest is known only once the pieces are written: a placeholder of its
        # length, then the header again (AtomicFile: the file is complete or not there)
        fh.write(MAGIC + header("0" * 40) + b"\n")
        fh.write(skeleton)
        for part in parts:
            for piece in part:
                for chunk in _chunks_of(piece):
                    digest.update(chunk)
                    fh.write(chunk)
        fh.seek(len(MAGIC))
        fh.write(header(digest.hexdigest()))


def load_parts(path: str, identity: dict, lazy: bool = False):
    """``((body, blobs), None)`` or ``(None, reason)`` (as ``load``) for a state written by
    ``save_parts``: each blob read on its own (no copy of the whole file beside them); with
    ``lazy``, the ones saved as such are only checked (read a block at a time) and given as
    ``FileBlob``s, which the caller closes."""
    blobs: list = []
    try:
        with open(path, "rb") as fh:
            magic = fh.read(len(MAGIC))
            line = fh.readline()
            try:
                header = orjson.loads(line) if magic == MAGIC and line.endswith(b"\n") else None
            except orjson.JSONDecodeError:
                header = None
            if not isinstance(header, dict):
                return None, "corrupt"
            if header.get("version") != CACHE_VERSION or (header.get("identity") or {}).get("code") != identity.get("code"):
                return None, "version"  # another code's (maybe another format): not read further
            if not isinstance(header.get("body"), int) or not isinstance(header.get("blobs"), list):
                return None, "corrupt"
            left = set(header.get("lazy") or ()) if lazy else set()
            skeleton = fh.read(header["body"])
            digest = hashlib.sha1(skeleton)
            for i, n in enumerate(header["blobs"]):
                if i not in left:
                    blobs.append(fh.read(n))
                    digest.update(blobs[-1])
                    continue
                blobs.append(FileBlob(os.dup(fh.fileno()), fh.tell(), n))
                while n > 0:
                    chunk = fh.read(min(n, Piece.BLOCK))
                    if not chunk:
                        break
                    digest.update(chunk)
                    n -= len(chunk)
            if fh.read(1) or digest.hexdigest() != header.get("digest"):
                return _none(blobs, "corrupt")
    except FileNotFoundError:
        return _none(blobs, "missing")
    except (OSError, TypeError, ValueError):
        return _none(blobs, "corrupt")
    if header.get("identity") != identity:
        return _none(blobs, "params")
    try:
        return (marshal.loads(skeleton), blobs), None
    except (EOFError, ValueError, TypeError):
        return _none(blobs, "corrupt")


def load_parts_unless_forced(path: str, identity: dict, force: bool, stats: "Stats", lazy: bool = False):
    """``load_parts`` as ``load_unless_forced`` is ``load``: ``(body, blobs)`` to build on,
    or ``(None, [])``; ``stats.state`` says which and why."""
    if force:
        stats.state = "bypassed"
        return None, []
    got, why = load_parts(path, identity, lazy)
    stats.state = why or "used"
    return got if got is not None else (None, [])


def _none(blobs: list, why: str):
    """``(None, why)``, the FileBlobs among ``blobs`` closed."""
    for b in blobs:
        if isinstance(b, FileBlob):
            b.close()
    return None, why


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
