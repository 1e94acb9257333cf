"""Cursor's ``state.vscdb`` (SQLite) -> one record per row used, text stripped.

Cursor keeps its chats in ``cursorDiskKV`` (``composerData:<composerId>`` and
``bubbleId:<composerId>:<bubbleId>`` rows, JSON values in TEXT or BLOB columns) and an index
of composers with their workspace in ``ItemTable`` (``composer.composerHeaders``). This
module reads those rows with table-level queries and turns each into a small record that
keeps only ids, model names, token counts, timestamps and workspace paths: no message text
leaves the database. ``scripts/adapters/cursor.py`` maps records to events, so
``extract-cursor DB | normalize --source cursor -`` and ``make`` give the same events.

The database is opened read-only through a ``file:...?mode=ro`` URI: Cursor keeps it in
WAL mode, a reader sees the rows still only in the ``-wal`` file and never blocks or
checkpoints the running editor.

A value that does not parse as JSON goes through a best-effort extraction (the JSON object
inside trailing garbage, invalid UTF-8 replaced, or the needed fields by pattern); every
such row is flagged ``fallback`` and counted. A row nothing can be recovered from is
emitted as a rejection marker, so every row seen is accounted for downstream.
"""
from __future__ import annotations

import json
import re

import orjson
from dataclasses import dataclass, field

# schemas/cursor-record.v1.schema.json, docs/contracts/cursor-record.md
RECORD_SCHEMA_VERSION = 1

# Row selections: table-level queries, by key prefix (the key column is indexed).
QUERIES = (
    ("ItemTable", "SELECT key, value FROM ItemTable WHERE key IN ('composer.composerHeaders') ORDER BY key"),
    (
        "cursorDiskKV",
        "SELECT key, value FROM cursorDiskKV WHERE key >= 'bubbleId:' AND key < 'bubbleId;' "
        "OR key >= 'composerData:' AND key < 'composerData;' ORDER BY key",
    ),
)

# Bubble fields kept (everything else, notably text/richText/codeBlocks/toolResults, is dropped).
_BUBBLE_FIELDS = ("_v", "type", "bubbleId", "conversationId", "composerId", "createdAt", "requestId")
_COMPOSER_FIELDS = ("_v", "composerId", "createdAt", "lastUpdatedAt")


class StoreError(Exception):
    """The database cannot be read at all (locked, corrupt, not SQLite): one line."""


@dataclass
class Telemetry:
    rows_seen: int = 0
    rows_used: int = 0
    via_fallback: int = 0
    rejected: dict = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def as_dict(self) -> dict:
        return {
            "rows_seen": self.rows_seen,
            "rows_used": self.rows_used,
            "via_fallback": self.via_fallback,
            "rows_rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
        }


def connect_readonly(path: str, timeout: float = 2.0):
    """A read-only connection that sees WAL rows and never writes the database file."""
    import sqlite3
    import urllib.parse

    uri = "file:" + urllib.parse.quote(path) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise StoreError(describe_sqlite_error(exc)) from None
    return conn


def describe_sqlite_error(exc: Exception) -> str:
    msg = str(exc)
    if "locked" in msg or "busy" in msg:
        return "database is locked (another process holds an exclusive lock; try again later)"
    if "not a database" in msg or "malformed" in msg or "corrupt" in msg:
        return f"not a readable SQLite database ({msg})"
    if "unable to open" in msg:
        return f"cannot open the database ({msg})"
    return msg


def read_records(path: str, timeout: float = 2.0, tel: Telemetry | None = None):
    """Yield one record per row seen in ``path``, sorted by (table, key).

    Raises StoreError when the database cannot be opened or read at all."""
    import sqlite3

    tel = tel if tel is not None else Telemetry()
    conn = connect_readonly(path, timeout)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rows: list[tuple[str, str, object]] = []
        for table, sql in QUERIES:
            if table not in tables:
                continue
            rows += [(table, key, value) for key, value in conn.execute(sql)]
    except sqlite3.Error as exc:
        raise StoreError(describe_sqlite_error(exc)) from None
    finally:
        conn.close()
    rows.sort(key=lambda r: (r[0], str(r[1])))
    for table, key, value in rows:
        tel.rows_seen += 1
        rec = record_from_row(path, table, str(key), value)
        if "rejected" in rec:
            tel.reject(rec["rejected"])
        else:
            tel.rows_used += 1
            if rec.get("fallback"):
                tel.via_fallback += 1
        yield rec


def record_from_row(db: str, table: str, key: str, value) -> dict:
    """The record for one row: its kept fields, or a rejection marker with the reason."""
    rec: dict = {"schema_version": RECORD_SCHEMA_VERSION, "db": db, "table": table, "key": key}
    obj, fallback, reason = decode_value(value, key)
    if obj is None:
        rec["rejected"] = reason
        return rec
    if fallback:
        rec["fallback"] = True
    if table == "ItemTable":
        rec["value"] = _headers_subset(obj)
    elif key.startswith("composerData:"):
        rec["value"] = _composer_subset(obj)
    else:
        rec["value"] = _bubble_subset(obj)
    return rec


# ------------------------------------------------------------------ decoding
def decode_value(value, key: str = "") -> tuple[dict | None, bool, str]:
    """``(object, via_fallback, reason)``: the value as a JSON object, else the fallback."""
    if value is None:
        return None, False, "empty value"
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if not raw.strip():
            return None, False, "empty value"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    else:
        text = str(value)
        if not text.strip():
            return None, False, "empty value"
        raw = text.encode("utf-8", "surrogatepass")
    if text is not None:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            return obj, False, ""
        if obj is not None:
            return None, False, "value is not a JSON object"
    # --- best-effort extraction
    text = raw.decode("utf-8", "replace").replace("\x00", "")
    start = text.find("{")
    if start >= 0:
        try:
            obj, _end = json.JSONDecoder(parse_int=_int).raw_decode(text, start)
            if isinstance(obj, dict):
                return obj, True, ""
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
            pass
    obj = _extract_fields(text)
    if obj is not None:
        return obj, True, ""
    return None, False, "value is not JSON and no fields could be recovered"


_INT = r"(-?\d+(?:\.\d+)?)"
_STR = r'"((?:[^"\\]|\\.)*)"'
_PATTERNS = {
    "_v": re.compile(r'"_v"\s*:\s*' + _INT),
    "type": re.compile(r'"type"\s*:\s*' + _INT),
    "bubbleId": re.compile(r'"bubbleId"\s*:\s*' + _STR),
    "conversationId": re.compile(r'"conversationId"\s*:\s*' + _STR),
    "composerId": re.compile(r'"composerId"\s*:\s*' + _STR),
    "createdAt": re.compile(r'"createdAt"\s*:\s*(?:' + _STR + "|" + _INT + ")"),
    "inputTokens": re.compile(r'"inputTokens"\s*:\s*' + _INT),
    "outputTokens": re.compile(r'"outputTokens"\s*:\s*' + _INT),
    "modelName": re.compile(r'"modelName"\s*:\s*' + _STR),
}


def _int(s: str):
    """An integer literal as orjson reads one (and can write back): beyond 64 bits, a float."""
    n = int(s)
    return n if -(1 << 63) <= n < (1 << 64) else float(n)


def _num(s: str):
    if "." not in s:
        return _int(s)
    f = float(s)
    return int(f) if f.is_integer() and abs(f) < (1 << 63) else f


def _extract_fields(text: str) -> dict | None:
    """The fields we need, found by pattern in a damaged value (the first of each)."""
    found = {}
    for name, pat in _PATTERNS.items():
        m = pat.search(text)
        if m:
            found[name] = m.groups()
    if "inputTokens" not in found and "outputTokens" not in found and "composerId" not in found:
        return None
    obj: dict = {}
    for name in ("_v", "type"):
        if name in found:
            obj[name] = _num(found[name][0])
    for name in ("bubbleId", "conversationId", "composerId"):
        if name in found:
            obj[name] = found[name][0]
    if "createdAt" in found:
        s, n = found["createdAt"]
        obj["createdAt"] = s if s is not None else _num(n)
    if "modelName" in found:
        obj["modelInfo"] = {"modelName": found["modelName"][0]}
    counts = {k: _num(found[k][0]) for k in ("inputTokens", "outputTokens") if k in found}
    if counts:
        obj["tokenCount"] = counts
    return obj


# ------------------------------------------------------------------ subsets
def _pick(obj: dict, names) -> dict:
    return {k: obj[k] for k in names if k in obj}


def _bubble_subset(obj: dict) -> dict:
    out = _pick(obj, _BUBBLE_FIELDS)
    model = obj.get("modelInfo")
    if isinstance(model, dict) and "modelName" in model:
        out["modelInfo"] = {"modelName": model["modelName"]}
    tokens = obj.get("tokenCount")
    if isinstance(tokens, dict):
        out["tokenCount"] = _pick(tokens, ("inputTokens", "outputTokens"))
    elif tokens is not None:
        out["tokenCount"] = tokens  # wrong type: kept so the adapter can reject it
    timing = obj.get("timingInfo")
    if isinstance(timing, dict):
        kept = _pick(timing, ("clientRpcSendTime", "clientEndTime"))
        if kept:
            out["timingInfo"] = kept
    return out


def _composer_subset(obj: dict) -> dict:
    out = _pick(obj, _COMPOSER_FIELDS)
    cfg = obj.get("modelConfig")
    if isinstance(cfg, dict):
        out["modelConfig"] = _pick(cfg, ("modelName", "maxMode"))
    conv = obj.get("conversation")
    if isinstance(conv, list):
        # legacy composers keep their bubbles inline
        out["conversation"] = [_bubble_subset(b) if isinstance(b, dict) else b for b in conv]
    return out


def _headers_subset(obj: dict) -> dict:
    comps = obj.get("allComposers")
    out_list = []
    if isinstance(comps, list):
        for c in comps:
            if not isinstance(c, dict) or not isinstance(c.get("composerId"), str):
                continue
            item = {"composerId": c["composerId"]}
            ws = c.get("workspaceIdentifier")
            uri = ws.get("uri") if isinstance(ws, dict) else None
            path = uri.get("fsPath") or uri.get("path") if isinstance(uri, dict) else None
            if isinstance(path, str) and path:
                item["workspace"] = path
            out_list.append(item)
    return {"allComposers": out_list}
