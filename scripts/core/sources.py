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

    def fingerprint(self) -> str:
        import hashlib

        h = hashlib.blake2b(digest_size=16)
        h.update(self.source.encode())
        for path in sorted(self.files):
            size, mtime_ns, ino, side = self.files[path]
            h.update(f"{path}\0{size}\0{mtime_ns}\0{ino}\0{side}\n".encode())
        return h.hexdigest()

    def total_bytes(self) -> int:
        return sum(v[0] for v in self.files.values())


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
