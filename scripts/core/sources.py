"""Where each source's logs live: locations from the environment, discovery, fingerprints.

Every location is overridable by the source's variable (``CLAUDE_CONFIG_DIR``,
``CODEX_HOME``, ...); each adapter module knows its defaults and its file patterns.
"""
from __future__ import annotations

import os

from scripts import adapters


class SourceListing:
    """One source's files as found. (A plain class and a lazy hashlib: the child that lists
    the logs while refresh imports its stages, scripts/core/listing_prefetch.py, imports
    this module and should not wait on heavy imports.)"""

    __slots__ = ("source", "env_var", "locations", "files")

    def __init__(self, source: str, env_var: str, locations: list[str], files: dict[str, tuple[int, int, int, str]]):
        self.source = source
        self.env_var = env_var
        self.locations = locations  # where we looked
        self.files = files  # path -> (size, mtime_ns, inode, side files)

    @property
    def present(self) -> bool:
        return bool(self.files)

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
        files = ",".join([f"{_json_str(p)}:[{v[0]},{v[1]},{v[2]},{_json_str(v[3])}]" for p, v in sorted(self.files.items())])
        locations = ",".join(map(_json_str, self.locations))
        return (f'{{"env_var":{_json_str(self.env_var)},"files":{{{files}}},"locations":[{locations}],'
                f'"source":{_json_str(self.source)}}}\n').encode()

    def summary(self) -> "ListingSummary":
        """The listing's stamp facts and manifest; the fingerprint is a hash of the manifest
        (every file's path, size, mtime, inode and side files, where the source was looked for)."""
        import hashlib

        manifest = self.manifest_json()
        digest = hashlib.blake2b(manifest, digest_size=16).hexdigest()
        return ListingSummary(self.source, self.env_var, self.locations, len(self.files), self.total_bytes(), digest, manifest)


def _json_str(s: str) -> str:
    """``s`` as a JSON string, as orjson writes it (only ``"``, ``\\`` and control characters
    escaped). A printable string without either needs no escaping (the usual path)."""
    if s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    from json.encoder import encode_basestring

    return encode_basestring(s)


class ListingSummary:
    """What cache-check needs of a listing: its stamp's facts and its manifest's bytes, no
    object per file. The listing child of ``refresh --check`` makes it
    (scripts/core/listing_prefetch.py): taken as a listing, the per-file objects left
    refresh's heap fragmented once freed (+5 MB at 7,600 logs), and every stage process
    is refresh or a fork of it."""

    __slots__ = ("source", "env_var", "locations", "n_files", "n_bytes", "digest", "manifest")

    def __init__(self, source: str, env_var: str, locations: list[str], n_files: int, n_bytes: int, digest: str, manifest: bytes):
        self.source = source
        self.env_var = env_var
        self.locations = locations
        self.n_files = n_files
        self.n_bytes = n_bytes
        self.digest = digest
        self.manifest = manifest

    @property
    def present(self) -> bool:
        return self.n_files > 0

    def as_tuple(self) -> tuple:
        return (self.source, self.env_var, self.locations, self.n_files, self.n_bytes, self.digest, self.manifest)


def roots(source: str, environ=os.environ) -> list[str]:
    mod = adapters.load(source)
    return mod.roots_from_env(environ.get(mod.ENV_VAR, "").strip() or None)


def list_source(source: str, environ=os.environ) -> SourceListing:
    mod = adapters.load(source)
    rts = roots(source, environ)
    files: dict[str, tuple[int, int, int, str]] = {}
    side_paths = getattr(mod, "side_paths", None)
    for path in mod.discover(rts):
        try:
            st = os.stat(path)
        except OSError:
            continue
        side = ""
        if side_paths is not None:
            # files beside the main one (a SQLite -wal) change what the main one holds
            parts = []
            for p in side_paths(path):
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
            side = ",".join(parts)
        files[path] = (st.st_size, st.st_mtime_ns, st.st_ino, side)
    return SourceListing(source=source, env_var=mod.ENV_VAR, locations=mod.search_locations(rts), files=files)


def default_device() -> str:
    """The machine name events carry: $DEVICE, else the hostname."""
    return os.environ.get("DEVICE") or os.uname().nodename or "unknown"


def short_path(path: str) -> str:
    home = os.path.expanduser("~")
    if home and home != "/" and path.startswith(home + os.sep):
        return "~" + path[len(home):]
    return path
