"""Gemini CLI: ``$GEMINI_DATA_DIR/tmp/<project>/chats/`` (default ``~/.gemini``).

Two shapes of chat recording: the legacy ``session-*.json`` (one document,
``{sessionId, projectHash, startTime, lastUpdated, messages: [...]}``, rewritten whole)
and the newer append-only ``session-*.jsonl``: a metadata first line, then one line per
message write, ``{"$set": {...}}`` metadata patches and ``{"$rewindTo": id}`` markers.
The JSONL log rewrites a message every time its tool calls or tokens change: the last
write of an id is the message. Sub-agent recordings sit in ``chats/<parentId>/*.jsonl``.

One event = one message of ``type`` ``gemini`` with ``tokens``; id
``gemini:<sessionId>:<messageId>``. ``tokens.input`` includes ``cached``:
input = input - cached, cache_read = cached, output = output + thoughts (reasoning =
thoughts), tool_input = tool. A rewind removes messages from the conversation, not from
the bill: rewound calls still count.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator

from scripts.adapters.base import FileSink, ParseContext, bad_json_reason, load_document, read_whole, roots_from, split_complete
from scripts.core.event import as_count, make_event, normalize_timestamp, project_name, usage

NAME = "gemini"
ADAPTER_VERSION = "1"
resumable = False
# Gemini CLI records no version in its chat files.
FORMAT_VERSIONS: tuple = ()
ENV_VAR = "GEMINI_DATA_DIR"
_HASH_DIR = re.compile(r"^[0-9a-f]{32,64}$")


def default_roots() -> list[str]:
    return [os.path.join(os.path.expanduser("~"), ".gemini")]


roots_from_env = roots_from(default_roots)


def search_locations(roots: list[str]) -> list[str]:
    return [os.path.join(root, "tmp") for root in roots]


def discover(roots: list[str]) -> Iterator[str]:
    """``tmp/*/chats/session-*.json`` and every ``*.jsonl`` under ``tmp/*/chats/``."""
    for root in roots:
        tmp = os.path.join(root, "tmp")
        try:
            projects = sorted(os.listdir(tmp))
        except OSError:
            continue
        for project in projects:
            chats = os.path.join(tmp, project, "chats")
            for dirpath, dirnames, filenames in os.walk(chats):
                dirnames.sort()
                top = dirpath == chats
                for fn in sorted(filenames):
                    if fn.endswith(".jsonl") or (top and fn.startswith("session-") and fn.endswith(".json")):
                        yield os.path.join(dirpath, fn)


def parse_file(ctx: ParseContext, sink: FileSink) -> None:
    content = read_whole(ctx, sink)
    if content is not None:
        parse_content(ctx, content, sink)


def parse_content(ctx: ParseContext, content: bytes, sink: FileSink) -> None:
    if ctx.path.endswith(".jsonl"):
        _parse_jsonl(ctx, content, sink)
    else:
        _parse_json(ctx, content, sink)


def _fallback_session(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (".jsonl", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _project(path: str, meta: dict) -> str | None:
    dirs = meta.get("directories")
    if type(dirs) is list and dirs and type(dirs[0]) is str:
        return project_name(dirs[0])
    # tmp/<project>/chats/...: newer builds name the directory after the project,
    # older ones after a SHA-256 of its path (no name to show)
    parts = path.replace("\\", "/").split("/")
    if "chats" in parts:
        i = parts.index("chats")
        if i >= 1 and not _HASH_DIR.match(parts[i - 1]):
            return parts[i - 1]
    return None


def _parse_json(ctx: ParseContext, content: bytes, sink: FileSink) -> None:
    doc = load_document(content, sink)
    if doc is None:
        return
    messages = doc.get("messages")
    if type(messages) is not list:
        sink.reject(1, "wrong type (messages is not a list)")
        return
    session = doc.get("sessionId") if type(doc.get("sessionId")) is str and doc.get("sessionId") else _fallback_session(ctx.path)
    project = _project(ctx.path, doc)
    for i, msg in enumerate(messages):
        _message(ctx, sink, f"messages[{i}]", None, session, project, msg)


def _parse_jsonl(ctx: ParseContext, content: bytes, sink: FileSink) -> None:
    # a log being appended to ends mid-line: that tail is read on a later run
    import orjson

    complete, _partial = split_complete(content)
    meta: dict = {}
    entries: list[tuple[int, dict]] = []
    for lineno, line in enumerate(complete.split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            sink.reject(lineno, bad_json_reason(exc))
            continue
        if type(obj) is not dict:
            sink.reject(lineno, "not a JSON object")
            continue
        if "$set" in obj:
            patch = obj["$set"]
            if type(patch) is dict:
                meta.update({k: v for k, v in patch.items() if k != "messages"})
                if type(patch.get("messages")) is list:
                    # a context replacement (start, compression): its messages may be
                    # ones already billed, or earlier calls restated; same ids dedupe
                    for i, msg in enumerate(patch["messages"]):
                        entries.append((lineno, {"$msg": msg, "$where": f"{lineno}:messages[{i}]"}))
            sink.not_call()
        elif "$rewindTo" in obj:
            sink.not_call()
        elif "id" in obj and "type" in obj:
            entries.append((lineno, obj))
        elif "sessionId" in obj:
            meta.update({k: v for k, v in obj.items() if k != "messages"})
            sink.not_call()
        else:
            sink.not_call()  # a record type this mapper does not know
    session = meta.get("sessionId") if type(meta.get("sessionId")) is str and meta.get("sessionId") else _fallback_session(ctx.path)
    project = _project(ctx.path, meta)
    # the last write of a message id is the message: earlier writes are duplicates
    last: dict[str, int] = {}
    for idx, (_lineno, obj) in enumerate(entries):
        msg = obj.get("$msg", obj)
        if type(msg) is dict and type(msg.get("id")) is str:
            last[msg["id"]] = idx
    for idx, (lineno, obj) in enumerate(entries):
        msg = obj.get("$msg", obj)
        where = obj.get("$where", lineno)
        if type(msg) is dict and type(msg.get("id")) is str and last[msg["id"]] != idx:
            final = entries[last[msg["id"]]][1]
            final = final.get("$msg", final)
            if type(final) is dict and final.get("type") == "gemini" and final.get("tokens") is not None:
                sink.duplicate()  # an earlier write of a call counted at its last write
            else:
                sink.not_call()
            continue
        _message(ctx, sink, where, lineno, session, project, msg)


def _message(ctx, sink: FileSink, where, lineno, session: str, project, msg) -> None:
    if type(msg) is not dict:
        sink.reject(where, "wrong type (message is not an object)")
        return
    if msg.get("type") != "gemini":
        sink.not_call()  # user, info, error, warning messages
        return
    tokens = msg.get("tokens")
    if tokens is None:
        sink.not_call()  # written before the response's usage arrived
        return
    if type(tokens) is not dict:
        sink.reject(where, "wrong type (tokens is not an object)")
        return
    try:
        inp, out, cached, thoughts, tool = (as_count(tokens.get(k)) for k in ("input", "output", "cached", "thoughts", "tool"))
    except TypeError as exc:
        sink.reject(where, f"wrong type ({exc})")
        return
    if not (inp or out or cached or thoughts or tool):
        sink.not_call()
        return
    if cached > inp:
        sink.reject(where, "cached tokens exceed input tokens")
        return
    message_id = msg.get("id")
    if type(message_id) is not str or not message_id:
        sink.reject(where, "message without id")
        return
    try:
        timestamp = normalize_timestamp(msg.get("timestamp"))
    except ValueError as exc:
        sink.reject(where, f"bad timestamp ({exc})")
        return
    model = msg.get("model")
    sink.event(
        make_event(
            provider=NAME,
            event_id=f"gemini:{session}:{message_id}",
            raw_model=model if type(model) is str else None,
            session_id=session,
            timestamp=timestamp,
            usage_counts=usage(
                input_tokens=inp - cached,
                cache_read_tokens=cached,
                output_tokens=out + thoughts,
                reasoning_tokens=thoughts,
                tool_input_tokens=tool,
            ),
            project=project,
            source_file=ctx.path,
            source_line=lineno,
            source_key=where if type(where) is str else None,
            adapter_version=ADAPTER_VERSION,
            device=ctx.device,
        )
    )

