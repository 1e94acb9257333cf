"""The ledger database (``tokentally.db``), built with sqlite-utils into a temp file
that is renamed into place only when complete.

Events are streamed: read a batch, price it, insert it; nothing holds the whole
history. The user's usage per model is then summed by SQLite from the events table,
so a duplicate event id (kept once) can never be counted twice.
"""
from __future__ import annotations

import os
import tempfile

from scripts.core.event import USAGE_KEYS, normalize_timestamp
from scripts.core.ledger_rules import Mapping, Rules
from scripts.core.ledger_sql import EVENTS, INDEXES, LEDGER_SCHEMA_VERSION, SEED_TABLES, TABLES, VIEWS, create_table_sql
from scripts.core.ledger_table import EventStats, Usage
from scripts.shared_io import DataError, Diagnostics, display_name, iter_jsonl, remove_if_present

BATCH = 2000


class _CachedBook:
    """The book with a memoized ``resolve`` (price_event resolves every event)."""

    def __init__(self, book):
        self._book = book
        self._cache: dict = {}

    def resolve(self, model, raw_model=None):
        key = (model, raw_model)
        if key not in self._cache:
            self._cache[key] = self._book.resolve(model, raw_model)
        return self._cache[key]


def open_database(final_path: str):
    """A new, empty database in a temp file next to ``final_path``: (db, temp path)."""
    import sqlite_utils

    directory = os.path.dirname(final_path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(final_path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    db = sqlite_utils.Database(tmp, recreate=True)
    # The file is private until the rename, so durability per statement buys nothing.
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    for table in TABLES:
        db.execute(create_table_sql(table))
    return db, tmp


def discard(db, tmp: str) -> None:
    try:
        db.close()
    finally:
        for path in (tmp, tmp + "-journal"):
            remove_if_present(path)


def _problem(ev) -> str | None:
    if not isinstance(ev, dict):
        return "not a normalized event (not an object)"
    for key in ("id", "provider", "timestamp"):
        if not isinstance(ev.get(key), str) or not ev.get(key):
            return f"not a normalized event (no {key})"
    usage = ev.get("usage")
    if not isinstance(usage, dict):
        return "not a normalized event (no usage)"
    for key in USAGE_KEYS:
        v = usage.get(key, 0)
        if type(v) is not int or v < 0:
            return f"usage.{key} is not a non-negative integer"
    return None


def load_events(db, paths: list[str], book, rules: Rules, diag: Diagnostics) -> tuple[dict[str, Usage], dict[str, Mapping], EventStats]:
    """Stream every event of ``paths`` into the events table; return the usage per
    ledger model, the mapping of each logged model name, and the counts."""
    from scripts.core.costing import price_event

    stats = EventStats(files=[os.path.basename(p) if p != "-" else "<stdin>" for p in paths])
    cached = _CachedBook(book)
    maps: dict[str, Mapping] = {}
    map_cache: dict[tuple, Mapping] = {}
    cols = EVENTS.column_names
    sql = f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) ON CONFLICT (id) DO NOTHING"
    conn = db.conn
    bad_before = diag.bad_lines
    batch: list[tuple] = []
    where: list[str] = []

    def flush():
        before = conn.total_changes
        try:
            conn.executemany(sql, batch)
        except Exception as exc:  # a CHECK the validation missed: find the line
            for values, w in zip(batch, where):
                try:
                    conn.execute(sql, values)
                except Exception as row_exc:
                    raise DataError(f"event rejected by the ledger schema ({row_exc})", where=w) from None
            raise DataError(f"event batch rejected ({exc})") from None
        stats.duplicates += len(batch) - (conn.total_changes - before)
        batch.clear()
        where.clear()

    for path in paths:
        name = display_name(path)
        for lineno, ev in iter_jsonl(path, diag):
            stats.lines += 1
            problem = _problem(ev)
            if problem is None:
                try:
                    ts = normalize_timestamp(ev["timestamp"])
                except ValueError as exc:
                    problem = str(exc)
            if problem:
                diag.bad_line(name, lineno, problem)
                continue
            model = ev.get("model") or "unknown"
            raw = ev.get("raw_model")
            key = (model, raw)
            m = map_cache.get(key)
            if m is None:
                m = map_cache[key] = rules.map_logged_name(model, raw, book, kind="usage")
                prev = maps.get(model)
                if prev is None or (prev.model is None and m.model is not None):
                    maps[model] = m
            priced = price_event(ev, cached)
            cost = priced.get("cost_usd")
            micro = None if cost is None else int(round(cost * 1_000_000))
            usage = ev["usage"]
            counts = [usage.get(k, 0) for k in USAGE_KEYS]
            priced_as = priced.get("priced_as")
            # in EVENTS column order (checked below, at import)
            batch.append(
                (
                    ev["id"],
                    ev["provider"],
                    model,
                    _scalar(raw),
                    priced_as or model,
                    priced_as,
                    *(_scalar(ev.get(k)) for k in ("session_id", "project")),
                    ts,
                    ts[:10],
                    *counts,
                    sum(counts[:6]),
                    micro,
                    cost,
                    *(_scalar(ev.get(k)) for k in _PROVENANCE),
                )
            )
            where.append(f"{name}:{lineno}")
            if len(batch) >= BATCH:
                flush()
    if batch:
        flush()
    stats.bad_lines = diag.bad_lines - bad_before
    stats.events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    u_cols = ", ".join(f"SUM({k})" for k in USAGE_KEYS)
    usage_by_model: dict[str, Usage] = {}
    for row in conn.execute(
        f"""SELECT ledger_model, COUNT(*), COUNT(DISTINCT provider || char(31) || COALESCE(session_id, '')),
                   {u_cols}, SUM(total_tokens), SUM(cost_micro_usd), MIN(timestamp), MAX(timestamp),
                   GROUP_CONCAT(DISTINCT provider),
                   SUM(CASE WHEN cost_micro_usd IS NULL THEN 1 ELSE 0 END),
                   SUM(CASE WHEN cost_micro_usd IS NULL THEN total_tokens ELSE 0 END)
            FROM events GROUP BY ledger_model ORDER BY ledger_model"""
    ):
        n = len(USAGE_KEYS)
        usage_by_model[row[0]] = Usage(
            events=row[1],
            sessions=row[2],
            tokens=dict(zip(USAGE_KEYS, row[3 : 3 + n])),
            total_tokens=row[3 + n],
            cost_micro=row[4 + n],
            first=row[5 + n],
            last=row[6 + n],
            sources=tuple(sorted(set((row[7 + n] or "").split(",")) - {""})),
        )
        stats.unpriced_events += row[8 + n]
        stats.unpriced_tokens += row[9 + n]
    return usage_by_model, maps, stats


_PROVENANCE = ("source_file", "source_line", "adapter", "adapter_version", "source_version", "device", "model_provider")
_ORDER = ("id", "provider", "model", "raw_model", "ledger_model", "priced_as", "session_id", "project", "timestamp", "day", *USAGE_KEYS, "total_tokens", "cost_micro_usd", "cost_usd", *_PROVENANCE)
assert EVENTS.column_names == _ORDER, "load_events builds rows in this order"


def _scalar(value):
    """What SQLite can store: nested values (never expected) become their JSON text."""
    if value is None or type(value) in (str, int, float):
        return value
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def complete(db, tables: dict[str, list[dict]]) -> None:
    """Insert the ledger tables (sqlite-utils), add indexes and views, close the file."""
    for table in SEED_TABLES:
        rows = tables.get(table.name) or []
        if rows:
            db[table.name].insert_all(rows, batch_size=500)
    for name, table, columns in INDEXES:
        db[table].create_index(list(columns), index_name=name)
    for name, select in VIEWS:
        db.create_view(name, select)
    db.execute(f"PRAGMA user_version = {LEDGER_SCHEMA_VERSION}")
    problems = db.execute("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise DataError(f"internal error: {len(problems)} rows break a foreign key (first: {problems[0]})")
    db.conn.commit()
    db.close()


def publish(tmp: str, final_path: str) -> None:
    """Move the finished database into place (readers never see a partial one)."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, final_path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
