"""OpenCode: ``$OPENCODE_DATA_DIR`` (default ``~/.local/share/opencode``).

Two layouts, often both on one machine: the legacy JSON files
``storage/message/<sessionID>/msg_<id>.json`` (with ``storage/session/<projectID>/<sessionID>.json``)
and, since OpenCode 1.2, the SQLite ``opencode.db`` (``opencode-*.db`` for other
channels): table ``message(id, session_id, time_created, data)`` with the same JSON in
``data``, joined to ``session(directory, version)``. The migration to SQLite keeps the
JSON files, so a message present in both is one event: both give the id
``opencode:<messageId>`` and the same usage, and cross-file deduplication keeps one.

One event = one assistant message with tokens: ``tokens.input`` -> input,
``tokens.cache.write`` -> cache_write, ``tokens.cache.read`` -> cache_read,
``tokens.output + tokens.reasoning`` -> output (``tokens.reasoning`` -> reasoning).
Timestamp ``time.created`` (epoch ms); model ``modelID`` from ``providerID``; project from
the message's ``path.root``/``path.cwd``, else the session's directory. ``cost`` is ignored
(usually 0): prices come from the tokens.
"""
from __future__ import annotations

import functools
import glob
import os
import re
from collections.abc import Iterator

from scripts.adapters.base import FileSink, ParseContext, bad_json_reason, load_document, read_whole, roots_from
from scripts.core.event import as_count, make_event, normalize_timestamp, project_name, usage

NAME = "opencode"
ADAPTER_VERSION = "1"
resumable = False
# OpenCode versions (session ``version``) the fixtures were checked against.
FORMAT_VERSIONS = ("0.15.18", "1.1.36", "1.2.10")
ENV_VAR = "OPENCODE_DATA_DIR"
SQLITE_MAGIC = b"SQLite format 3\x00"
_DB_NAME = re.compile(r"^opencode(-[A-Za-z0-9_.-]+)?\.db$")


def default_roots() -> list[str]:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return [os.path.join(base, "opencode")]


roots_from_env = roots_from(default_roots)


def search_locations(roots: list[str]) -> list[str]:
    out = []
    for root in roots:
        out += [os.path.join(root, "opencode.db"), os.path.join(root, "storage", "message")]
    return out


def discover(roots: list[str]) -> Iterator[str]:
    for root in roots:
        try:
            names = sorted(os.listdir(root))
        except OSError:
            names = []
        yield from (os.path.join(root, n) for n in names if _DB_NAME.match(n))
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, "storage", "message")):
            dirnames.sort()
            yield from (os.path.join(dirpath, fn) for fn in sorted(filenames) if fn.endswith(".json"))


def side_paths(path: str) -> list[str]:
    return [path + "-wal", path + "-shm"] if path.endswith(".db") else []


# ------------------------------------------------------------------ parsing
def parse_file(ctx: ParseContext, sink: FileSink) -> None:
    if ctx.path.endswith(".db"):
        _parse_db(ctx, ctx.path, sink)
        return
    content = read_whole(ctx, sink)
    if content is not None:
        parse_content(ctx, content, sink)


def parse_content(ctx: ParseContext, content: bytes, sink: FileSink) -> None:
    if content.startswith(SQLITE_MAGIC):
        _parse_db_bytes(ctx, content, sink)
        return
    msg = load_document(content, sink, where=1)
    if msg is None:
        return
    session_id = msg.get("sessionID")
    if type(session_id) is not str or not session_id:
        session_id = os.path.basename(os.path.dirname(ctx.path))
    info = _session_info(ctx.path, session_id)
    message_id = msg.get("id")
    if type(message_id) is not str or not message_id:
        message_id = os.path.basename(ctx.path)[: -len(".json")]
    _message(ctx, sink, 1, None, message_id, session_id, msg, info.get("directory"), info.get("version"))


def _message(ctx, sink: FileSink, where, key, message_id: str, session_id: str, msg: dict, directory, version) -> None:
    role = msg.get("role")
    if role != "assistant":
        sink.not_call()  # user prompts
        return
    tokens = msg.get("tokens")
    if tokens is None:
        sink.not_call()  # still streaming, or aborted before any usage
        return
    if type(tokens) is not dict:
        sink.reject(where, "wrong type (tokens is not an object)")
        return
    cache = tokens.get("cache")
    if cache is not None and type(cache) is not dict:
        sink.reject(where, "wrong type (tokens.cache is not an object)")
        return
    cache = cache or {}
    try:
        inp = as_count(tokens.get("input"))
        out = as_count(tokens.get("output"))
        reasoning = as_count(tokens.get("reasoning"))
        cread = as_count(cache.get("read"))
        cwrite = as_count(cache.get("write"))
    except TypeError as exc:
        sink.reject(where, f"wrong type ({exc})")
        return
    if not (inp or out or reasoning or cread or cwrite):
        sink.not_call()
        return
    t = msg.get("time")
    try:
        timestamp = normalize_timestamp(t.get("created") if type(t) is dict else None)
    except ValueError as exc:
        sink.reject(where, f"bad timestamp ({exc})")
        return
    path = msg.get("path")
    cwd = None
    if type(path) is dict:
        cwd = path.get("root") if type(path.get("root")) is str and path.get("root") not in ("", "/") else path.get("cwd")
    sink.saw_version(version)
    provider = msg.get("providerID")
    sink.event(
        make_event(
            provider=NAME,
            event_id=f"opencode:{message_id}",
            raw_model=msg.get("modelID") if type(msg.get("modelID")) is str else None,
            session_id=session_id,
            timestamp=timestamp,
            usage_counts=usage(
                input_tokens=inp,
                cache_write_tokens=cwrite,
                cache_read_tokens=cread,
                output_tokens=out + reasoning,
                reasoning_tokens=reasoning,
            ),
            project=project_name(cwd if type(cwd) is str else None) or project_name(directory),
            source_file=ctx.path,
            source_line=where if type(where) is int else None,
            source_key=key,
            adapter_version=ADAPTER_VERSION,
            source_version=version,
            model_provider=provider if type(provider) is str and provider else None,
            device=ctx.device,
        )
    )


@functools.lru_cache(maxsize=4096)
def _session_info(message_path: str, session_id: str) -> dict:
    """``directory`` and ``version`` of a legacy session file
    (``storage/session/<projectID>/<sessionID>.json``), if there is one."""
    import orjson

    storage = os.path.dirname(os.path.dirname(os.path.dirname(message_path)))
    for candidate in sorted(glob.glob(os.path.join(glob.escape(storage), "session", "*", glob.escape(session_id) + ".json"))):
        try:
            with open(candidate, "rb") as fh:
                doc = orjson.loads(fh.read())
        except (OSError, orjson.JSONDecodeError):
            continue
        if type(doc) is dict:
            return {k: doc[k] for k in ("directory", "version") if type(doc.get(k)) is str}
    return {}


# ------------------------------------------------------------------ SQLite
def _parse_db_bytes(ctx: ParseContext, content: bytes, sink: FileSink) -> None:
    """A database given on stdin: opened from a private temporary copy."""
    import tempfile

    if os.path.isfile(ctx.path):
        _parse_db(ctx, ctx.path, sink)
        return
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "opencode.db")
        with open(copy, "wb") as fh:
            fh.write(content)
        _parse_db(ctx, copy, sink)


def _parse_db(ctx: ParseContext, db_path: str, sink: FileSink) -> None:
    import orjson

    import sqlite3

    from scripts.core.cursor_store import StoreError, connect_readonly, describe_sqlite_error

    try:
        conn = connect_readonly(db_path)
    except StoreError as exc:
        sink.reject("database", str(exc))
        return
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "message" not in tables:
            return  # a database without messages (yet)
        if "session" in tables:
            sql = (
                "SELECT m.id, m.session_id, m.data, s.directory, s.version FROM message m "
                "LEFT JOIN session s ON s.id = m.session_id ORDER BY m.id"
            )
        else:
            sql = "SELECT id, session_id, data, NULL, NULL FROM message ORDER BY id"
        rows = conn.execute(sql).fetchall()
    except sqlite3.Error as exc:
        sink.reject("database", describe_sqlite_error(exc))
        return
    finally:
        conn.close()
    for message_id, session_id, data, directory, version in rows:
        key = f"message:{message_id}"
        if isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        try:
            msg = orjson.loads(data) if data is not None else None
        except orjson.JSONDecodeError as exc:
            sink.reject(key, bad_json_reason(exc))
            continue
        if type(msg) is not dict:
            sink.reject(key, "not a JSON object")
            continue
        if type(message_id) is not str or not message_id:
            sink.reject(key, "message without id")
            continue
        sid = session_id if type(session_id) is str and session_id else msg.get("sessionID") or "unknown"
        _message(
            ctx,
            sink,
            key,
            key,
            message_id,
            sid,
            msg,
            directory if type(directory) is str else None,
            version if type(version) is str else None,
        )
