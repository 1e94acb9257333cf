"""Shared I/O for every stage: JSON encoding, JSONL streams, atomic writes, diagnostics.

Every artifact goes through here so that the whole project writes bytes the same way:
sorted keys, no ASCII escaping, LF line ends, and a temp file renamed into place so a
reader never sees half a file.
"""
from __future__ import annotations

import os
import sys
from typing import IO, Any, Iterator

import orjson

# the descriptor helpers live apart, without orjson, for the listing child; stages import them from here
from scripts.fd_io import copy_range, read_all, read_marshalled, temp_dir, unnamed_temp, write_all  # noqa: F401

STDIO = "-"

_LINE_OPTS = orjson.OPT_SORT_KEYS
_DOC_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2


class DataError(Exception):
    """Bad input: reported as one line (``file:line: reason``), never a traceback."""

    def __init__(self, message: str, *, where: str | None = None):
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.reason = message


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def dumps_line(obj: Any) -> bytes:
    """One compact JSON line (with its newline), keys sorted: the JSONL form."""
    return orjson.dumps(obj, option=_LINE_OPTS) + b"\n"


def dumps_doc(obj: Any) -> bytes:
    """A whole JSON document, indented, keys sorted, ending in a newline."""
    return orjson.dumps(obj, option=_DOC_OPTS) + b"\n"


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = current_umask()


class AtomicFile:
    """Write ``path`` via a temp file in the same directory, renamed on success.

    ``-`` writes to stdout instead. On an exception the temp file is removed and the
    old ``path`` (if any) is left untouched. The final file gets 0666 & ~umask, like
    any file the user's shell would create.
    """

    def __init__(self, path: str | os.PathLike, mode: str = "wb"):
        self.path = os.fspath(path)
        self.mode = mode
        self._tmp: str | None = None
        self.fh: IO | None = None

    def __enter__(self) -> IO:
        if self.path == STDIO:
            self.fh = sys.stdout.buffer if "b" in self.mode else sys.stdout
            return self.fh
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, self._tmp = _temp_beside(self.path)
        self.fh = os.fdopen(fd, self.mode, **({} if "b" in self.mode else {"encoding": "utf-8", "newline": "\n"}))
        return self.fh

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.path == STDIO:
            self.fh.flush()
            return
        try:
            if exc_type is None:
                self.fh.flush()
                os.fchmod(self.fh.fileno(), 0o666 & ~_UMASK)
                self.fh.close()
                os.replace(self._tmp, self.path)
                self._tmp = None
        finally:
            if self._tmp is not None:
                self.fh.close()
                try:
                    os.unlink(self._tmp)
                except FileNotFoundError:
                    pass


def remove_if_present(path: str) -> None:
    """Delete a file; one that is already gone is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def holds_bundle_lock(artifacts: str) -> bool:
    """True when this process runs under the bundle's lock (the Makefile's LOCKED sets
    ``TOKENTALLY_LOCK_HELD`` to the bundles its make holds), so no other writer is active."""
    return os.path.abspath(artifacts) in os.environ.get("TOKENTALLY_LOCK_HELD", "").split()


# What the bundle's own stages write, below its top level. Other directories may be other
# bundles with locks of their own (artifacts/demo inside artifacts): never swept from here.
BUNDLE_DIRS = ("stamps", "cache", "events", "rollups", "raw", "aggregates", "reports", "runs", "ledger")


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def remove_interrupted_writes(artifacts: str) -> int:
    """Delete the temp files of AtomicFile writers that were killed mid-write (kill -9,
    power loss: nothing ran their cleanup), in the bundle's top level and its BUNDLE_DIRS.
    Call it only while holding the bundle's lock: a live writer's temp file looks the
    same. Returns how many were removed."""
    paths = []
    try:
        paths += [os.path.join(artifacts, n) for n in os.listdir(artifacts) if _is_temp(n)]
    except OSError:
        return 0
    for sub in BUNDLE_DIRS:
        for dirpath, _dirnames, filenames in os.walk(os.path.join(artifacts, sub)):
            paths += [os.path.join(dirpath, n) for n in filenames if _is_temp(n)]
    removed = 0
    for path in paths:
        try:
            os.unlink(path)
            removed += 1
        except OSError:
            pass
    return removed


def _temp_beside(path: str) -> tuple[int, str]:
    """A new, exclusive temp file in the target's directory (what tempfile.mkstemp does,
    without importing tempfile, which costs every short-lived command a few ms)."""
    directory = os.path.dirname(path) or "."
    base = "." + os.path.basename(path) + "."
    for _ in range(100):
        name = os.path.join(directory, f"{base}{os.getpid()}-{os.urandom(4).hex()}.tmp")
        try:
            return os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), name
        except FileExistsError:
            continue
    raise OSError(f"could not create a temp file beside {path}")


def write_if_changed(path: str | os.PathLike, data: bytes | bytearray, force: bool = False, touch: bool = False) -> bool:
    """Write ``data`` (atomically) unless the file already holds exactly it; True if
    written. Make compares mtimes, so an unchanged file keeps its old one — unless
    ``touch``: then it is marked as just made (a rule's target that is up to date)."""
    try:
        with open(path, "rb") as fh:
            if not force and fh.read() == data:
                if touch:
                    os.utime(path)
                return False
    except OSError:
        pass
    with AtomicFile(path) as fh:
        fh.write(data)
    return True


def write_doc(path: str | os.PathLike, obj: Any) -> None:
    with AtomicFile(path) as fh:
        fh.write(dumps_doc(obj))


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with AtomicFile(path) as fh:
        fh.write(data)


def open_input(path: str) -> IO[bytes]:
    if path == STDIO:
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise DataError(exc.strerror or str(exc), where=path) from None


def display_name(path: str) -> str:
    return "<stdin>" if path == STDIO else path


def read_doc(path: str) -> Any:
    """Read one JSON document (``-`` = stdin); a parse error names the file."""
    with open_input(path) as fh:
        data = fh.read()
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc})", where=display_name(path)) from None


def read_json_file(path: str) -> tuple[Any, bytes]:
    """A JSON file's document and its raw bytes (for hashing); unreadable or not JSON is
    one line naming the file."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise DataError(exc.strerror or str(exc), where=path) from None
    try:
        return orjson.loads(data), data
    except orjson.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc})", where=path) from None


def iter_jsonl(path: str, diag: "Diagnostics") -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, object)`` for each JSON line; bad lines go to ``diag``."""
    name = display_name(path)
    fh = open_input(path)
    try:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                yield lineno, orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                diag.bad_line(name, lineno, f"not valid JSON ({_short_json_error(exc)})")
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def _short_json_error(exc: Exception) -> str:
    msg = str(exc)
    return msg.split(":", 1)[0] if len(msg) > 80 else msg


class Diagnostics:
    """Diagnostics on stderr, one line each, counted.

    A bad line is ``file:line: reason``. In strict mode the first bad line is a
    failure (DataError); otherwise it is counted and the run goes on. Only the first
    ``limit`` lines are printed, then a count, so a huge broken log stays readable.
    """

    def __init__(self, strict: bool = False, limit: int = 20, stream: IO[str] | None = None):
        self.strict = strict
        self.limit = limit
        self.stream = stream or sys.stderr
        self.bad_lines = 0
        self.notices: list[str] = []

    def bad_line(self, name: str, lineno: int | str, reason: str) -> None:
        self.bad_lines += 1
        if self.strict:
            raise DataError(reason, where=f"{name}:{lineno}")
        if self.bad_lines <= self.limit:
            self.stream.write(f"{name}:{lineno}: {reason}\n")
        elif self.bad_lines == self.limit + 1:
            self.stream.write("... further bad lines are counted in the run summary, not printed\n")

    def notice(self, message: str) -> None:
        self.notices.append(message)
        self.stream.write(message + "\n")


def strict_from_env(value: bool | None = None) -> bool:
    if value is not None:
        return value
    return os.environ.get("STRICT", "").strip().lower() in ("1", "true", "yes", "on")

