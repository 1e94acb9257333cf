"""The parse cache's index: one SQLite database per source
(``cache/normalize/<source>/index.sqlite``), so a run holds none of it in memory.

Tables:

- ``meta``: the cache and adapter versions, source, device and Python it was written
  for, the pack and file counters, and where the id-hash multiset's base is;
- ``packs``: each pack file's size (a torn write is detected);
- ``files``: per log file its number, fingerprint (size, mtime, inode, side files, a
  content hash while its mtime can still lie), its packed entry (``event_cache.pack_entry``:
  where its day segments and bulk line are, its counts, where parsing stopped), the ids
  dropped as copies kept in another file, and whether its log was deleted;
- ``file_days``: which files hold events of which UTC day (the day files to rewrite);
- ``session_rows``, ``session_files``, ``dup_holders``: the merged state
  (``event_cache.MergedState``).

Held in memory, the index grew with the history: ~1 KB per log file and ~0.4 KB per
session, 8 MB at 400k calls. Here a run reads the rows it needs, through SQLite's page
cache (256 KB).

Writes: a run's changes are one transaction, committed when the cache is saved; a run cut
short leaves the index as the last one saved (SQLite rolls the journal back when the index
is next opened). An index built from nothing (a first run, or one replacing an index this
code cannot read) is written to a temp file with no journal and renamed over the old one
once complete, so ``index.sqlite`` exists only whole.
"""
from __future__ import annotations

import marshal
import os
import zlib
from sys import intern

from scripts.shared_io import AtomicFile

INDEX_NAME = "index.sqlite"

SCHEMA = (
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value)",
    "CREATE TABLE packs(name TEXT PRIMARY KEY, size INTEGER NOT NULL)",
    "CREATE TABLE files(path TEXT PRIMARY KEY, fno INTEGER NOT NULL, size INTEGER, mtime_ns INTEGER, ino INTEGER,"
    " side TEXT, racy_hash TEXT, packed BLOB, dropped BLOB, deleted INTEGER)",
    "CREATE UNIQUE INDEX files_fno ON files(fno)",
    "CREATE INDEX files_dropped ON files(path) WHERE dropped IS NOT NULL",  # the few with copies dropped
    "CREATE TABLE file_days(day TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY(day, path)) WITHOUT ROWID",
    "CREATE TABLE session_rows(session TEXT PRIMARY KEY, first INTEGER NOT NULL, rows BLOB NOT NULL)",
    "CREATE INDEX session_rows_first ON session_rows(first, session)",
    "CREATE TABLE session_files(key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE dup_holders(key TEXT PRIMARY KEY, value BLOB NOT NULL)",
)
# rows read (or inserted) at a time when a table is walked (or filled): a page of entries
# or session rows is ~30 KB, the same however long the history (512 was ~350 KB, held twice)
PAGE = 64
SUM_SUFFIX = ".sum"  # beside the index: its size and CRC, written after each commit
READ_CHUNK = 1 << 16  # bytes read at a time to check an index's CRC (into one buffer)


def file_crc(path: str) -> tuple[int, int]:
    """A file's (size, CRC-32), read a chunk at a time."""
    crc = size = 0
    buf = bytearray(READ_CHUNK)
    with open(path, "rb") as fh, memoryview(buf) as view:
        while n := fh.readinto(buf):
            crc = zlib.crc32(view[:n], crc)
            size += n
    return size, crc


def write_sum(db_file: str, db_path: str) -> None:
    """The index's size and CRC beside it. SQLite checks a page's structure, not its
    bytes: a byte flipped on disk in an entry would be read as data. So a run checks the
    whole index against this first (~1 ms a MB) and rebuilds it when they differ; a run
    killed between the commit and this write leaves them differing (rebuilt too)."""
    size, crc = file_crc(db_file)
    with AtomicFile(db_path + SUM_SUFFIX) as fh:
        fh.write(b"%d %d\n" % (size, crc))


def sum_matches(db_path: str) -> bool:
    try:
        with open(db_path + SUM_SUFFIX, "rb") as fh:
            want = fh.read(100).split()
        return [int(x) for x in want] == list(file_crc(db_path))
    except (OSError, ValueError):
        return False


def _connect(path: str):
    import sqlite3  # here: refresh imports this module (has_index) and needs no database

    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # a process killed mid-run is covered by the journal; a machine that loses power may
    # lose the last run's index (as with any file written without fsync, AtomicFile):
    # rebuilt, never misread, since its sum and the packs' sizes are checked
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-256")  # KB: memory flat, whatever the history
    return con


class IndexDB:
    """One source's index database: opened (``open``) or built from nothing (``fresh``),
    changed in one transaction, ``commit``-ted by the cache's save."""

    def __init__(self, directory: str | None):
        self.dir = directory
        self.path = os.path.join(directory, INDEX_NAME) if directory is not None else ":memory:"
        self._con = None  # a sqlite3.Connection
        self.building: str | None = None  # a fresh build's temp file, renamed at commit
        self.batches: list = []  # the tables' flush(): what they batch is written before a commit

    @property
    def con(self):
        if self._con is None:
            self.fresh()
        return self._con

    def open(self) -> dict | None:
        """Open the saved index and start this run's transaction; its ``meta`` (None when
        there is no index, or one this code cannot trust: its bytes differ from its sum,
        or SQLite cannot read it)."""
        if not os.path.exists(self.path):
            return None
        import sqlite3

        con = None
        try:
            con = _connect(self.path)
            con.execute("BEGIN")
            # the first read rolls back what a run killed mid-commit left (a hot journal)
            meta = {k: v for k, v in con.execute("SELECT key, value FROM meta")}
            if sum_matches(self.path):
                self._con = con
                return meta
        except sqlite3.DatabaseError:
            pass
        if con is not None:
            con.close()
        return None

    def fresh(self) -> None:
        """Start an index from nothing, in a temp file beside the index (no journal: a
        run cut short leaves a temp file, removed by the next run's cache-check)."""
        self.close()
        if self.dir is None:
            con = _connect(":memory:")  # a merged state on its own (tests)
        else:
            os.makedirs(self.dir, exist_ok=True)
            self.building = os.path.join(self.dir, f".{INDEX_NAME}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
            con = _connect(self.building)
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("BEGIN")
        for statement in SCHEMA:
            con.execute(statement)
        self._con = con

    def commit(self) -> None:
        """End the run's transaction; a fresh build then replaces the saved index."""
        for flush in self.batches:
            flush()
        con = self.con
        con.execute("COMMIT")
        if self.building is None:
            write_sum(self.path, self.path)
            return
        con.close()
        self._con = None
        write_sum(self.building, self.path)
        # a journal left beside the old index belongs to it, not to this one
        try:
            os.unlink(self.path + "-journal")
        except OSError:
            pass
        os.replace(self.building, self.path)
        self.building = None

    def close(self) -> None:
        """Let go (an open transaction is rolled back; a fresh build's temp file goes)."""
        if self._con is not None:
            self._con.close()
            self._con = None
        if self.building is not None:
            try:
                os.unlink(self.building)
            except OSError:
                pass
            self.building = None


def put_meta(con, meta: dict) -> None:
    con.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(meta.items()))


def read_packs(con) -> dict[str, int]:
    return {name: size for name, size in con.execute("SELECT name, size FROM packs")}


def write_packs(con, packs: dict[str, int]) -> None:
    con.execute("DELETE FROM packs")
    con.executemany("INSERT INTO packs(name, size) VALUES (?, ?)", sorted(packs.items()))


_FILE_COLUMNS = "fno, size, mtime_ns, ino, side, racy_hash, packed, dropped, deleted"


def _entry(row: tuple) -> dict:
    """An index entry as the cache uses it (``EventCache.store``): the keys most files
    lack are left out."""
    fno, size, mtime_ns, ino, side, racy, packed, dropped, deleted = row
    e = {"fno": fno, "size": size, "mtime_ns": mtime_ns, "ino": ino, "packed": packed}
    if side:
        e["side"] = side
    if racy:
        e["racy_hash"] = racy
    if dropped is not None:
        e["dropped"] = marshal.loads(dropped)
    if deleted:
        e["deleted"] = True
    return e


def _paged(con, table: str, order: tuple, columns: str = "", where: str = ""):
    """Rows of ``table`` (``order``, its unique key columns, then ``columns``) in key order,
    ``PAGE`` at a time: each page is a finished query, so a walk may change rows it has
    passed (a statement still stepping over a table being changed is undefined)."""
    keys = ", ".join(order)
    select = f"SELECT {keys}{', ' + columns if columns else ''} FROM {table}"
    cond = f" AND ({where})" if where else ""
    rows = con.execute(f"{select} WHERE 1{cond} ORDER BY {keys} LIMIT {PAGE}").fetchall()
    after = f"({keys}) > ({', '.join('?' * len(order))})"
    while rows:
        yield from rows
        last = rows[-1][:len(order)]
        rows = None  # let go of a page before the next is read (not two held at once)
        rows = con.execute(f"{select} WHERE {after}{cond} ORDER BY {keys} LIMIT {PAGE}", last).fetchall()


def _row(path: str, e: dict) -> tuple:
    dropped = e.get("dropped")
    return (path, e["fno"], e.get("size"), e.get("mtime_ns"), e.get("ino"), e.get("side") or None, e.get("racy_hash") or None,
            e.get("packed"), marshal.dumps(list(dropped)) if dropped else None, 1 if e.get("deleted") else None)


class _Mapping:
    """Item access and ``in`` from a ``get`` that returns None for a missing key."""

    def __getitem__(self, key: str):
        v = self.get(key)
        if v is None:
            raise KeyError(key)
        return v

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __bool__(self) -> bool:
        return len(self) > 0


class FileTable(_Mapping):
    """The ``files`` table seen as a mapping of path -> entry (a dict: changing it changes
    nothing until it is put back, ``table[path] = entry``). Walked in path order, a page
    at a time, so a walk may change the entries it has passed."""

    def __init__(self, db: IndexDB, days_of):
        self.db = db
        self.days_of = days_of  # entry -> the days it holds events of (its segments)
        self._rows: list[tuple] = []  # new files' rows, inserted a batch at a time
        self._days: list[tuple] = []
        db.batches.append(self.flush)

    def flush(self) -> None:
        """Insert the batched new files (before anything reads the table)."""
        if self._rows:
            con = self.db.con
            con.executemany(f"INSERT OR REPLACE INTO files(path, {_FILE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", self._rows)
            con.executemany("INSERT OR IGNORE INTO file_days(day, path) VALUES (?, ?)", self._days)
            self._rows, self._days = [], []

    def get(self, path: str, default=None):
        self.flush()
        row = self.db.con.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ?", (path,)).fetchone()
        return default if row is None else _entry(row)

    def __setitem__(self, path: str, entry: dict) -> None:
        self.put(path, entry, self.get(path))

    def put(self, path: str, entry: dict, old: dict | None) -> None:
        """Store ``entry`` over ``old`` (the entry it replaces, None if new); the day
        index follows its segments."""
        if old is None:
            # a new file (a first run: all of them): batched
            self._rows.append(_row(path, entry))
            self._days += [(d, path) for d in self.days_of(entry)]
            if len(self._rows) >= PAGE:
                self.flush()
            return
        self.flush()
        con = self.db.con
        con.execute(f"INSERT OR REPLACE INTO files(path, {_FILE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", _row(path, entry))
        new_days = self.days_of(entry)
        old_days = self.days_of(old)
        gone = [(d, path) for d in old_days if d not in new_days]
        if gone:
            con.executemany("DELETE FROM file_days WHERE day = ? AND path = ?", gone)
        added = [(d, path) for d in new_days if d not in old_days]
        if added:
            con.executemany("INSERT OR IGNORE INTO file_days(day, path) VALUES (?, ?)", added)

    def set_columns(self, path: str, **values) -> None:
        """Change some of an entry's columns (``deleted``, ``racy_hash``, ``dropped``, ``packed``) in place."""
        self.flush()
        cols = ", ".join(f"{k} = ?" for k in values)
        vals = [marshal.dumps(list(v)) if k == "dropped" and v else (v or None) for k, v in values.items()]
        self.db.con.execute(f"UPDATE files SET {cols} WHERE path = ?", (*vals, path))

    def remove(self, path: str, entry: dict) -> None:
        self.flush()
        con = self.db.con
        con.execute("DELETE FROM files WHERE path = ?", (path,))
        con.executemany("DELETE FROM file_days WHERE day = ? AND path = ?", [(d, path) for d in self.days_of(entry)])

    def items(self, where: str = ""):
        """(path, entry) in path order; ``where``: an SQL condition on the columns."""
        self.flush()
        for r in _paged(self.db.con, "files", ("path",), _FILE_COLUMNS, where):
            yield r[0], _entry(r[1:])

    def keys(self):
        self.flush()
        for (path,) in _paged(self.db.con, "files", ("path",)):
            yield path

    __iter__ = keys

    def values(self):
        for _path, e in self.items():
            yield e

    def column(self, name: str, where: str = ""):
        """One column of every file (``where``: an SQL condition), in no set order."""
        self.flush()
        cond = f" WHERE {where}" if where else ""
        yield from self.db.con.execute(f"SELECT {name} FROM files{cond}")

    def __len__(self) -> int:
        self.flush()
        return self.db.con.execute("SELECT count(*) FROM files").fetchone()[0]

    def path_of(self, fno: int) -> str | None:
        self.flush()
        row = self.db.con.execute("SELECT path FROM files WHERE fno = ?", (fno,)).fetchone()
        return None if row is None else row[0]

    def days(self) -> set[str]:
        """Every day some file holds events of."""
        self.flush()
        return {intern(d) for (d,) in self.db.con.execute("SELECT DISTINCT day FROM file_days")}

    def holders(self, day: str) -> list[tuple[str, bytes, bytes | None]]:
        """(path, packed entry, dropped ids marshalled or None) of the files holding events
        of ``day``, in path order."""
        self.flush()
        return self.db.con.execute("SELECT d.path, f.packed, f.dropped FROM file_days d JOIN files f ON f.path = d.path"
                                   " WHERE d.day = ? ORDER BY d.path", (day,)).fetchall()

    def day_pairs(self):
        """(day, path) of every file's every day, by day then path."""
        self.flush()
        yield from _paged(self.db.con, "file_days", ("day", "path"))


class SessionRows:
    """The ``session_rows`` table: per session its first slot and its merged rows
    (marshalled), read back in order of first slot (``MergedState.sorted_chunks``)."""

    def __init__(self, db: IndexDB):
        self.db = db
        self._pending: list[tuple] = []  # inserted a batch at a time
        db.batches.append(self.flush)

    def flush(self) -> None:
        if self._pending:
            self.db.con.executemany("INSERT OR REPLACE INTO session_rows(session, first, rows) VALUES (?, ?, ?)", self._pending)
            self._pending = []

    def put(self, session: str, first: int, blob: bytes) -> None:
        self._pending.append((session, first, blob))
        if len(self._pending) >= 64:
            self.flush()

    def get(self, session: str) -> bytes | None:
        """A session's rows, marshalled (None: it has none)."""
        self.flush()
        row = self.db.con.execute("SELECT rows FROM session_rows WHERE session = ?", (session,)).fetchone()
        return None if row is None else row[0]

    def pop(self, session: str) -> None:
        self.flush()
        self.db.con.execute("DELETE FROM session_rows WHERE session = ?", (session,))

    def clear(self) -> None:
        self._pending = []
        self.db.con.execute("DELETE FROM session_rows")

    def __len__(self) -> int:
        self.flush()
        return self.db.con.execute("SELECT count(*) FROM session_rows").fetchone()[0]

    def by_first(self):
        """(first slot, rows marshalled) of every session, by first slot."""
        self.flush()
        for first, _session, blob in _paged(self.db.con, "session_rows", ("first", "session"), "rows"):
            yield first, blob


class KeyedBlobs(_Mapping):
    """A table of key -> a marshalled value, seen as a mapping (``session_files``,
    ``dup_holders``). A value read is a copy: put it back to change it."""

    def __init__(self, db: IndexDB, table: str):
        self.db = db
        self.table = table

    def get(self, key: str, default=None):
        row = self.db.con.execute(f"SELECT value FROM {self.table} WHERE key = ?", (key,)).fetchone()
        return default if row is None else marshal.loads(row[0])

    def __setitem__(self, key: str, value) -> None:
        self.db.con.execute(f"INSERT OR REPLACE INTO {self.table}(key, value) VALUES (?, ?)", (key, marshal.dumps(value)))

    def add_new(self, key: str, value) -> bool:
        """Store ``value`` unless ``key`` has one; whether it was stored."""
        cur = self.db.con.execute(f"INSERT OR IGNORE INTO {self.table}(key, value) VALUES (?, ?)", (key, marshal.dumps(value)))
        return cur.rowcount == 1

    def put_many(self, items) -> None:
        self.db.con.executemany(f"INSERT OR REPLACE INTO {self.table}(key, value) VALUES (?, ?)",
                                ((k, marshal.dumps(v)) for k, v in items))

    def pop(self, key: str, default=None):
        v = self.get(key, default)
        if v is not default:
            self.db.con.execute(f"DELETE FROM {self.table} WHERE key = ?", (key,))
        return v

    def clear(self) -> None:
        self.db.con.execute(f"DELETE FROM {self.table}")

    def delete_many(self, keys) -> None:
        self.db.con.executemany(f"DELETE FROM {self.table} WHERE key = ?", ((k,) for k in keys))

    def items(self):
        for k, v in _paged(self.db.con, self.table, ("key",), "value"):
            yield k, marshal.loads(v)

    def __len__(self) -> int:
        return self.db.con.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]

    def __eq__(self, other) -> bool:
        return dict(self.items()) == other
