"""Claude Code: ``<config dir>/projects/<cwd slug>/<sessionId>.jsonl`` (+ subagent files).

One call = all lines sharing ``message.id`` + ``requestId``; Claude Code writes one line
per content block, the earlier ones with a streaming snapshot of ``output_tokens``. The
line with the largest usage total is kept. ``input_tokens`` excludes the cache.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Iterator

from scripts.adapters.base import FileSink, ParseContext, bad_json_reason, decode_typed, loads_json, native_scanner, roots_from, typed_decoder, typed_struct
from scripts.core.event import EVENT_SCHEMA_VERSION, as_count, canonical_model, make_event, normalize_timestamp, project_name, usage

NAME = "claude"
ADAPTER_VERSION = "1"
resumable = True
# Claude Code versions the fixtures and this mapper were checked against.
FORMAT_VERSIONS = ("1.0.8", "1.0.9", "1.0.128", "2.0.14", "2.0.37", "2.1.12", "2.1.97")
ENV_VAR = "CLAUDE_CONFIG_DIR"


def default_roots() -> list[str]:
    home = os.path.expanduser("~")
    return [os.path.join(home, ".config", "claude"), os.path.join(home, ".claude")]


roots_from_env = roots_from(default_roots)


def search_locations(roots: list[str]) -> list[str]:
    return [os.path.join(root, "projects") for root in roots]


def discover(roots: list[str]) -> Iterator[str]:
    """Every ``*.jsonl`` under each root's ``projects/`` (subagent files included)."""
    for projects in search_locations(roots):
        for dirpath, dirnames, filenames in os.walk(projects):
            dirnames.sort()
            for fn in filenames:
                if fn.endswith(".jsonl"):
                    yield os.path.join(dirpath, fn)


_USAGE = b'"usage"'
_SYNTHETIC = "<synthetic>"


def _count(value) -> int:
    # the common case (an int) without a call; anything else goes through as_count
    return value if type(value) is int else as_count(value)


@functools.cache
def _typed_decoder():
    """The typed decoder of the fields a call needs (only for a bulk parse: importing
    msgspec costs more than a small parse saves)."""
    from typing import Any, Optional

    cache_creation = typed_struct("CacheCreation", [("ephemeral_5m_input_tokens", int, 0), ("ephemeral_1h_input_tokens", int, 0)])
    usage_block = typed_struct("Usage", [
        ("input_tokens", int, 0),
        ("output_tokens", int, 0),
        ("cache_creation_input_tokens", Optional[int], None),
        ("cache_read_input_tokens", int, 0),
        ("cache_creation", Optional[cache_creation], None),
    ])
    message = typed_struct("Message", [("id", Any, None), ("model", Any, None), ("usage", Optional[usage_block], None)])
    line = typed_struct("Line", [("message", Optional[message], None)] + [
        (name, Any, None) for name in ("requestId", "uuid", "version", "timestamp", "sessionId", "cwd", "isApiErrorMessage")
    ])
    return typed_decoder(line)


def _fields_from_struct(line: bytes, decode):
    """A usage line's fields via the typed decoder: ``None`` when the line is not a
    call, ``False`` when the checked path has to decide (see ``decode_typed``)."""
    rec = decode_typed(line, decode)
    if rec is None:
        return False
    message = rec.message
    if message is None:
        return None
    u = message.usage
    if u is None or message.model == _SYNTHETIC or rec.isApiErrorMessage is True:
        return None
    creation = u.cache_creation
    if creation is None:
        one_hour = five_min = 0
    else:
        one_hour = creation.ephemeral_1h_input_tokens
        five_min = creation.ephemeral_5m_input_tokens
    cache_write = u.cache_creation_input_tokens
    if cache_write is None:
        cache_write = five_min + one_hour
    return (u.input_tokens, u.output_tokens, cache_write, u.cache_read_input_tokens, one_hour, message.model, message.id,
            rec.requestId, rec.uuid, rec.version, rec.timestamp, rec.sessionId, rec.cwd)


def _fields_from_json(line: bytes, lineno: int, sink: FileSink, orjson):
    """The checked path: a usage line's fields, or ``None`` once the line is counted as
    not a call or rejected (with the reason)."""
    try:
        obj = loads_json(line)
    except orjson.JSONDecodeError as exc:
        sink.reject(lineno, bad_json_reason(exc))
        return None
    if type(obj) is not dict:
        sink.reject(lineno, "not a JSON object")
        return None
    message = obj.get("message")
    u = message.get("usage") if type(message) is dict else None
    if type(u) is not dict:
        sink.not_call()
        return None
    raw_model = message.get("model")
    if raw_model == _SYNTHETIC or obj.get("isApiErrorMessage") is True:
        sink.not_call()
        return None
    try:
        creation = u.get("cache_creation")
        one_hour = five_min = 0
        if type(creation) is dict:
            one_hour = _count(creation.get("ephemeral_1h_input_tokens"))
            five_min = _count(creation.get("ephemeral_5m_input_tokens"))
        cache_write = u.get("cache_creation_input_tokens")
        cache_write = _count(cache_write) if cache_write is not None else five_min + one_hour
        input_tokens = _count(u.get("input_tokens"))
        output_tokens = _count(u.get("output_tokens"))
        cache_read = _count(u.get("cache_read_input_tokens"))
    except TypeError as exc:
        sink.reject(lineno, f"wrong type ({exc})")
        return None
    return (input_tokens, output_tokens, cache_write, cache_read, one_hour, raw_model, message.get("id"),
            obj.get("requestId"), obj.get("uuid"), obj.get("version"), obj.get("timestamp"), obj.get("sessionId"), obj.get("cwd"))


def parse_lines(ctx: ParseContext, lines, sink: FileSink) -> None:
    import orjson

    path = ctx.path
    kept_total = sink.kept_total
    emit = _emitter(ctx, sink)
    decode = _typed_decoder() if ctx.bulk else None
    # A call's lines are usually adjacent: hold the latest one and build its event only
    # when the next call starts, so the streaming snapshots before it are never built.
    pending = None
    for lineno, line in lines:
        if _USAGE not in line:
            # Pre-filter: only lines with a usage block can be calls. A line that is not
            # even shaped like an object is parsed below so its error gets reported.
            if line[:1] == b"{" and line[-1:] == b"}":
                sink.not_call()
                continue
            if not line.strip():
                continue
        fields = False if decode is None else _fields_from_struct(line, decode)
        if fields is False:
            fields = _fields_from_json(line, lineno, sink, orjson)
            if fields is None:
                continue
        elif fields is None:
            sink.not_call()
            continue
        input_tokens, output_tokens, cache_write, cache_read, one_hour, raw_model, message_id, request_id, line_uuid, version, raw_ts, session_id, cwd = fields
        total = input_tokens + output_tokens + cache_write + cache_read
        if not total:
            sink.not_call()  # an empty usage block bills nothing
            continue
        if type(message_id) is str and message_id:
            event_id = f"claude:{message_id}:{request_id}" if type(request_id) is str and request_id else f"claude:{message_id}"
        else:
            event_id = f"claude:line:{line_uuid}" if type(line_uuid) is str and line_uuid else f"claude:{path}:{lineno}"
        version = version if type(version) is str else None
        sink.saw_version(version)
        if raw_model is not None and type(raw_model) is not str:
            sink.reject(lineno, "wrong type (message.model is not a string)")
            continue
        try:
            timestamp = normalize_timestamp(raw_ts)
        except ValueError as exc:
            sink.reject(lineno, f"bad timestamp ({exc})")
            continue
        call = (event_id, total, lineno, session_id, cwd, raw_model, timestamp, version, input_tokens, output_tokens, cache_write, cache_read, one_hour)
        if pending is not None and pending[0] == event_id:
            # the next streaming snapshot of the call just read: keep the larger one
            sink.duplicate()
            if total > pending[1]:
                pending = call
            continue
        if pending is not None:
            emit(pending)
            pending = None
        seen = kept_total(event_id)
        if seen is not None and total <= seen:
            sink.duplicate()  # a snapshot of a call already kept (non-adjacent line)
            continue
        pending = call
    if pending is not None:
        emit(pending)


def parse_complete(ctx: ParseContext, data: bytes, first_lineno: int, sink: FileSink) -> int | None:
    """``parse_lines`` over all of ``data`` (complete lines) by the compiled parser, when
    it is built: the number of lines read, or None (the sink untouched) when
    ``parse_lines`` has to read the file (a line the compiled parser does not take)."""
    scan = native_scanner(ctx, sink)
    if scan is None:
        return None
    found = scan.claude_lines(data, first_lineno, ctx.path, ctx.device, _session_from_path(ctx.path), _project_from_path(ctx.path),
                              canonical_model, project_name, EVENT_SCHEMA_VERSION, ADAPTER_VERSION, sink.events)
    if found is None:
        return None
    n_lines, *counts = found
    sink.take(*counts)
    return n_lines


def _emitter(ctx: ParseContext, sink: FileSink):
    """Build and hand over one call's event (only the kept snapshot of a call is built)."""
    path = ctx.path
    device = ctx.device
    fallback_session = _session_from_path(path)
    fallback_project = _project_from_path(path)

    def emit(call) -> None:
        event_id, _total, lineno, session_id, cwd, raw_model, timestamp, version, inp, out, cache_write, cache_read, one_hour = call
        sink.event(
            make_event(
                provider=NAME,
                event_id=event_id,
                raw_model=raw_model,
                session_id=session_id if type(session_id) is str and session_id else fallback_session,
                timestamp=timestamp,
                usage_counts=usage(
                    input_tokens=inp,
                    output_tokens=out,
                    cache_write_tokens=cache_write,
                    cache_read_tokens=cache_read,
                    cache_write_1h_tokens=min(one_hour, cache_write),
                ),
                project=project_name(cwd) or fallback_project,
                source_file=path,
                source_line=lineno,
                adapter_version=ADAPTER_VERSION,
                source_version=version,
                device=device,
            )
        )

    return emit


def _session_from_path(path: str) -> str:
    # <session>.jsonl (a subagent file: <agent>.jsonl)
    return os.path.basename(path)[: -len(".jsonl")]


def _project_from_path(path: str) -> str | None:
    # projects/<slug>/<session>.jsonl or projects/<slug>/<session>/subagents/<agent>.jsonl
    parts = path.replace("\\", "/").split("/")
    if "projects" in parts:
        i = len(parts) - 1 - parts[::-1].index("projects")
        if i + 1 < len(parts) - 1:
            return parts[i + 1].rsplit("-", 1)[-1] or None
    return None
