"""Where each source's logs live: locations from the environment, discovery, fingerprints.

Every location is overridable by the source's variable (``CLAUDE_CONFIG_DIR``,
``CODEX_HOME``, ...); each adapter module knows its defaults and its file patterns.
"""
from __future__ import annotations

import os

from scripts import adapters
from scripts.fd_io import copy_range, temp_dir, unnamed_temp, write_all


class SourceListing:
    """One source's files as found. (A plain class and a lazy hashlib: the child that lists
    the logs while refresh imports its stages, scripts/core/listing_prefetch.py, imports
    this module and should not wait on heavy imports.)"""

    __slots__ = ("source", "env_var", "locations", "files", "skipped")

    def __init__(self, source: str, env_var: str, locations: list[str], files: dict[str, tuple[int, int, int, str]],
                 skipped: list[str] | None = None):
        self.source = source
        self.env_var = env_var
        self.locations = locations  # where we looked
        self.files = files  # path -> (size, mtime_ns, inode, side files)
        self.skipped = skipped or []  # files not listed: their names are not UTF-8 (as shown)

    @property
    def present(self) -> bool:
        return bool(self.files)

    def entries(self):
        """(path, (size, mtime_ns, inode, side files)) of every file, in path order."""
        return iter(sorted(self.files.items()))

    def total_bytes(self) -> int:
        return sum(v[0] for v in self.files.values())

    def manifest(self) -> dict:
        """What cache/manifest/<source>.json holds: the files as listed, for normalize."""
        return {
            "source": self.source,
            "env_var": self.env_var,
            "locations": self.locations,
            "files": {p: list(v) for p, v in sorted(self.files.items())},
        }

    def manifest_json(self) -> bytes:
        """``shared_io.dumps_line(self.manifest())``, the same bytes, made without orjson:
        the listing child makes it while refresh imports, and importing orjson there
        (~10 ms) would hold refresh up."""
        files = ",".join([_entry_json(p, *v) for p, v in sorted(self.files.items())])
        return f"{_manifest_head(self.env_var)}{files}{_manifest_tail(self.locations, self.source)}".encode()

    def summary(self, spool: "ManifestSpool") -> "ListingSummary":
        """The listing's stamp facts; its manifest's bytes go to ``spool``. The fingerprint
        is a hash of the manifest (every file's path, size, mtime, inode and side files,
        where the source was looked for)."""
        import hashlib

        manifest = self.manifest_json()
        digest = hashlib.blake2b(manifest, digest_size=16).hexdigest()
        return ListingSummary(self.source, self.env_var, self.locations, len(self.files), self.total_bytes(), digest, spool.append(manifest),
                              self.skipped)


def _manifest_head(env_var: str) -> str:
    """A manifest up to its files (its keys in order, as orjson sorts them)."""
    return f'{{"env_var":{_json_str(env_var)},"files":{{'


def _entry_json(path: str, size: int, mtime_ns: int, inode: int, side: str) -> str:
    """One file's entry in a manifest's files object."""
    return f"{_json_str(path)}:[{size},{mtime_ns},{inode},{_json_str(side) if side else _EMPTY}]"


_EMPTY = '""'  # no side files, the usual case, as JSON


def _manifest_tail(locations: list[str], source: str) -> str:
    """A manifest after its files."""
    return f'}},"locations":[{",".join(map(_json_str, locations))}],"source":{_json_str(source)}}}\n'


def _json_str(s: str) -> str:
    """``s`` as a JSON string, as orjson writes it (only ``"``, ``\\`` and control characters
    escaped). A printable string without either needs no escaping (the usual path)."""
    if s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    from json.encoder import encode_basestring

    return encode_basestring(s)


class ListingSummary:
    """What cache-check needs of a listing: its stamp's facts and where its manifest's bytes
    are in a ``ManifestSpool`` ((offset, length), ``manifest_at``), no object per file and
    not the bytes. The listing child of ``refresh --check`` makes it
    (scripts/core/listing_prefetch.py): taken as a listing, the per-file objects left
    refresh's heap fragmented once freed (+5 MB at 7,600 logs), and taken with the bytes
    (1.2 MB there) they raised its peak by 2.6 MB; every stage process is refresh
    or a fork of it."""

    __slots__ = ("source", "env_var", "locations", "n_files", "n_bytes", "digest", "manifest_at", "skipped")

    def __init__(self, source: str, env_var: str, locations: list[str], n_files: int, n_bytes: int, digest: str, manifest_at: tuple[int, int],
                 skipped=()):
        self.source = source
        self.env_var = env_var
        self.locations = locations
        self.n_files = n_files
        self.n_bytes = n_bytes
        self.digest = digest
        self.manifest_at = manifest_at
        self.skipped = list(skipped)

    @property
    def present(self) -> bool:
        return self.n_files > 0

    def as_tuple(self) -> tuple:
        return (self.source, self.env_var, self.locations, self.n_files, self.n_bytes, self.digest, self.manifest_at, self.skipped)


class ManifestSpool:
    """A temp file without a name that manifests are appended to, one after another, so
    that the process writing them out (cache-check, in refresh) does not hold their bytes:
    it copies a manifest's range into its file in the kernel (``copy_to``). refresh opens
    one before it forks the listing child, which appends to it."""

    __slots__ = ("fd",)

    def __init__(self, fd: int):
        self.fd = fd

    @classmethod
    def create(cls, directory: str | None = None) -> "ManifestSpool":
        """A new spool in ``directory`` (default: the system's temp directory)."""
        return cls(unnamed_temp(directory or temp_dir()))

    def append(self, data: bytes) -> tuple[int, int]:
        """Write ``data`` at the end; its (offset, length). (At the end, not at a position kept
        here: the listing child appends to refresh's spool, whose copy of this object
        knows nothing of it.)"""
        offset = os.lseek(self.fd, 0, os.SEEK_END)
        write_all(self.fd, data)
        return offset, len(data)

    def copy_to(self, at: tuple[int, int], dst_fd: int) -> None:
        """Append the manifest at ``at`` ((offset, length)) to ``dst_fd``."""
        copy_range(self.fd, dst_fd, *at)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "ManifestSpool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def roots(source: str, environ=os.environ) -> list[str]:
    mod = adapters.load(source)
    return mod.roots_from_env(environ.get(mod.ENV_VAR, "").strip() or None)


def list_source(source: str, environ=os.environ) -> SourceListing:
    """The source's files, all held (``summarize_source`` streams them instead)."""
    mod = adapters.load(source)
    rts = roots(source, environ)
    skipped: list[str] = []
    files = {path: (size, mtime_ns, inode, side) for path, size, mtime_ns, inode, side in _stat_each(mod, rts, skipped)}
    return SourceListing(source=source, env_var=mod.ENV_VAR, locations=mod.search_locations(rts), files=files, skipped=skipped)


def summarize_source(source: str, spool: ManifestSpool, environ=os.environ) -> ListingSummary:
    """``list_source(source, environ).summary(spool)``, the same facts and manifest bytes,
    streamed: the files are stated as discovered, sorted by path in bounded runs
    (``sorted_runs.SortedRuns``, spilled to a temp file past 1,024), and the manifest is
    written to the spool and hashed as the runs are merged. The listing child of
    ``refresh --check`` runs it: its memory then does not grow with the number of logs
    (with the listing held whole, its peak was 13.7 MB at 410 logs, 18.1 at 7,725; now
    13.5 and 14.4)."""
    import hashlib

    from scripts.core.sorted_runs import SortedRuns

    mod = adapters.load(source)
    rts = roots(source, environ)
    skipped: list[str] = []
    locations = mod.search_locations(rts)
    digest = hashlib.blake2b(digest_size=16)
    with SortedRuns() as runs, _SpoolWriter(spool, digest) as out:
        runs.extend(_stat_each(mod, rts, skipped))
        out.write(_manifest_head(mod.ENV_VAR))
        n_files, n_bytes = _write_files(out, runs.sorted())
        out.write(_manifest_tail(locations, source))
    return ListingSummary(source, mod.ENV_VAR, locations, n_files, n_bytes, digest.hexdigest(), out.at, skipped)


def _write_files(out: "_SpoolWriter", entries) -> tuple[int, int]:
    """Write the path-sorted ``entries`` as a manifest's files, one per path with its last
    stat (as a dict keyed by path keeps it, should discovery give a path twice), a few
    hundred a write; their count and bytes."""
    n_files = n_bytes = 0
    batch: list[str] = []
    held = None
    for entry in entries:
        if held is not None and held[0] != entry[0]:
            batch.append(_entry_json(*held))
            n_bytes += held[1]
            if len(batch) >= 256:
                out.write(("," if n_files else "") + ",".join(batch))
                n_files += len(batch)
                batch = []
        held = entry
    if held is not None:
        batch.append(_entry_json(*held))
        n_bytes += held[1]
    if batch:
        out.write(("," if n_files else "") + ",".join(batch))
        n_files += len(batch)
    return n_files, n_bytes


class _SpoolWriter:
    """A manifest appended to a ``ManifestSpool`` a piece at a time (~64 KB a write) and
    hashed as it goes; ``at`` is then its (offset, length) in the spool."""

    FLUSH = 1 << 16

    def __init__(self, spool: ManifestSpool, digest):
        self._fd = spool.fd
        self._digest = digest
        self._pending: list[str] = []
        self._pending_len = 0
        # the end of the spool, as ManifestSpool.append finds it: the listing child appends
        # to refresh's spool, whose ManifestSpool knows nothing of it
        self._offset = os.lseek(self._fd, 0, os.SEEK_END)
        self._length = 0

    def write(self, text: str) -> None:
        self._pending.append(text)
        self._pending_len += len(text)
        if self._pending_len >= self.FLUSH:
            self.flush()

    def flush(self) -> None:
        data = "".join(self._pending).encode()
        self._pending, self._pending_len = [], 0
        self._digest.update(data)
        write_all(self._fd, data)
        self._length += len(data)

    @property
    def at(self) -> tuple[int, int]:
        return self._offset, self._length

    def __enter__(self) -> "_SpoolWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.flush()


def _stat_each(mod, rts: list[str], skipped: list[str]):
    """``(path, size, mtime_ns, inode, side files)`` of each file the adapter ``mod``
    discovers under ``rts``, as it discovers them; names that are not UTF-8 go to
    ``skipped`` instead."""
    side_paths = getattr(mod, "side_paths", None)
    for path in mod.discover(rts):
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            # a name that is not UTF-8 (its bytes kept as surrogates): no artifact can hold
            # it, so the file is left out, and cache-check says so
            skipped.append(path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        side = "" if side_paths is None else _side_files(side_paths(path))
        yield path, st.st_size, st.st_mtime_ns, st.st_ino, side


def _side_files(paths: list[str]) -> str:
    """Files beside the main one (a SQLite -wal) change what the main one holds."""
    parts = []
    for p in paths:
        try:
            s2 = os.stat(p)
        except OSError:
            continue
        if p.endswith("-shm"):
            # a SQLite -shm is an index of the -wal that every reader (us included)
            # writes to: its mtime changes on each read, its rows are all in the -wal
            parts.append(f"{os.path.basename(p)}:present")
        else:
            parts.append(f"{os.path.basename(p)}:{s2.st_size}:{s2.st_mtime_ns}")
    return ",".join(parts)


def default_device() -> str:
    """The machine name events carry: $DEVICE, else the hostname."""
    return os.environ.get("DEVICE") or os.uname().nodename or "unknown"


def short_path(path: str) -> str:
    home = os.path.expanduser("~")
    if home and home != "/" and path.startswith(home + os.sep):
        return "~" + path[len(home):]
    return path


class ManifestListing:
    """A source's listing read from its manifest (``cache/manifest/<source>.json``, what
    ``SourceListing.manifest_json`` wrote) as it is walked: ``entries()`` gives the files
    in path order, a chunk of the file at a time, so normalize never holds the whole
    listing (loaded whole, 3,800 files were ~5 MB of objects at once). ``locations`` is
    known once the walk has passed the files.

    The files object is cut at ``],"`` (an entry's end and the next one's start): inside
    a JSON string a quote is always escaped, so that sequence occurs only there, and
    ``]},"locations":`` only where the files end."""

    # ~50 files' entries parsed at a time: a 64 KB chunk (~400 files, full only from ~60
    # days of history on) was ~0.5 MB of objects and copies in each parse worker
    CHUNK = 1 << 13

    def __init__(self, path: str):
        import orjson

        self._loads = orjson.loads
        self.path = path
        head = b""
        with open(path, "rb") as fh:
            while (more := fh.read(self.CHUNK)) and b',"files":{' not in head:
                head += more
        at = head.find(b',"files":{')
        if not head.startswith(b'{"env_var":') or at < 0:
            raise ValueError(f"{path}: not a manifest")
        self.env_var = self._loads(head[:at] + b"}")["env_var"]
        self._files_at = at + len(b',"files":{')
        self.locations: list[str] = []

    @staticmethod
    def _files_in(piece: bytes, loads):
        """``(path, (size, mtime_ns, inode, side))`` of the manifest's files in ``piece``
        (whole ``"path":[...]`` members, comma-separated)."""
        for path, v in loads(b"{" + piece + b"}").items():
            yield path, tuple(v)

    def entries(self):
        """(path, (size, mtime_ns, inode, side files)) of every file, in path order."""
        loads = self._loads
        with open(self.path, "rb") as fh:
            fh.seek(self._files_at)
            buf = b""
            while True:
                more = fh.read(self.CHUNK)
                buf += more
                end = buf.find(b']},"locations":') if not buf.startswith(b'},"locations":') else -2
                if end == -2:  # no files
                    rest = buf[1:]
                    break
                if end >= 0:
                    yield from self._files_in(buf[:end + 1], loads)
                    rest = buf[end + 2:]
                    break
                cut = buf.rfind(b'],"')
                if cut >= 0:
                    yield from self._files_in(buf[:cut + 1], loads)
                    buf = buf[cut + 2:]
                if not more:
                    raise ValueError(f"{self.path}: cut short")
            rest += fh.read()
        self.locations = loads(b"{" + rest[1:])["locations"]
