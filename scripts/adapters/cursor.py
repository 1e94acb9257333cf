"""Cursor: ``state.vscdb`` (SQLite), read through ``extract-cursor`` records.

``extract-cursor`` (``scripts/core/cursor_store.py``) turns the rows of Cursor's global
database into JSONL records, one per row, text stripped; in a bundle ``normalize`` reads
them from ``$(ARTIFACTS)/raw/cursor.jsonl``. This module maps records to events.

One call = one assistant bubble (``type`` 2) with a non-zero ``tokenCount``: key
``bubbleId:<composerId>:<bubbleId>`` (older builds: ``bubbleId:<bubbleId>`` with
``conversationId`` in the value; legacy composers keep bubbles inline in
``composerData.conversation``). The same bubble under two keys is one event. Cursor keeps
no cache split locally: ``inputTokens`` -> input, ``outputTokens`` -> output, so local
Cursor numbers are estimates. Model: the bubble's ``modelInfo.modelName``, else the
composer's ``modelConfig.modelName``. Timestamp: the bubble's ``createdAt`` (ISO or epoch
ms), else ``timingInfo.clientRpcSendTime``, else the composer's ``lastUpdatedAt``.
Project: the composer's workspace in ``ItemTable`` ``composer.composerHeaders``.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from scripts.adapters.base import FileSink, ParseContext, bad_json_reason, roots_from
from scripts.core.event import as_count, make_event, normalize_timestamp, project_name, usage

NAME = "cursor"
ADAPTER_VERSION = "1"
resumable = False
# Bubble ``_v`` values the fixtures and this mapper were checked against.
FORMAT_VERSIONS = ("2", "3")
ENV_VAR = "CURSOR_STATE_DB"
# normalize reads this file of the bundle (written by extract-cursor), not the database
EXTRACTED_INPUT = "raw/cursor.jsonl"


def default_roots() -> list[str]:
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support", "Cursor")
    else:
        base = os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"), "Cursor")
    return [os.path.join(base, "User", "globalStorage", "state.vscdb")]


# ``CURSOR_STATE_DB``: the database file (a comma list for several).
roots_from_env = roots_from(default_roots)


def search_locations(roots: list[str]) -> list[str]:
    return list(roots)


def discover(roots: list[str]) -> Iterator[str]:
    return (r for r in roots if os.path.isfile(r))


def side_paths(path: str) -> list[str]:
    """Rows still in the write-ahead log are part of the database."""
    return [path + "-wal", path + "-shm"]


# ------------------------------------------------------------------ records -> events
def parse_content(ctx: ParseContext, content: bytes, sink: FileSink) -> None:
    import orjson

    records: list[tuple[int, dict]] = []
    for lineno, line in enumerate(content.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            sink.reject(lineno, bad_json_reason(exc))
            continue
        if type(rec) is not dict or type(rec.get("key")) is not str:
            sink.reject(lineno, "not a cursor record")
            continue
        records.append((lineno, rec))

    # composers and their workspaces first: bubbles sort before them by key
    composers: dict[str, dict] = {}
    workspaces: dict[str, str] = {}
    for _lineno, rec in records:
        value = rec.get("value")
        if type(value) is not dict:
            continue
        if rec.get("table") == "ItemTable":
            comps = value.get("allComposers")
            for c in comps if type(comps) is list else ():
                if type(c) is dict and type(c.get("composerId")) is str and type(c.get("workspace")) is str:
                    workspaces[c["composerId"]] = c["workspace"]
        elif rec["key"].startswith("composerData:"):
            composers[rec["key"][len("composerData:"):]] = value

    for lineno, rec in records:
        key = rec["key"]
        if rec.get("fallback"):
            sink.note("via_fallback")
        if "rejected" in rec:
            # extract-cursor reported it already; count it here so the source adds up
            sink.reject(key, f"{rec['rejected']}", report=False)
            continue
        value = rec.get("value")
        if rec.get("table") == "ItemTable":
            sink.not_call()
        elif key.startswith("composerData:"):
            sink.not_call()
            conv = value.get("conversation") if type(value) is dict else None
            if type(conv) is list:
                cid = key[len("composerData:"):]
                for i, bubble in enumerate(conv):
                    bkey = f"{key}#conversation[{i}]"
                    _bubble(ctx, sink, rec, bkey, cid, None, bubble, composers, workspaces)
        elif key.startswith("bubbleId:"):
            parts = key.split(":")
            if len(parts) >= 3:
                cid, bid = parts[1], ":".join(parts[2:])
            else:
                cid, bid = None, parts[1]
            _bubble(ctx, sink, rec, key, cid, bid, value, composers, workspaces)
        else:
            sink.not_call()


def _bubble(ctx, sink: FileSink, rec: dict, key: str, cid, bid, value, composers, workspaces) -> None:
    if type(value) is not dict:
        sink.reject(key, "wrong type (bubble is not an object)")
        return
    if value.get("type") != 2:
        sink.not_call()  # a user bubble (type 1) or a UI marker
        return
    tokens = value.get("tokenCount")
    if tokens is None:
        sink.not_call()
        return
    if type(tokens) is not dict:
        sink.reject(key, "wrong type (tokenCount is not an object)")
        return
    try:
        inp = as_count(tokens.get("inputTokens"))
        out = as_count(tokens.get("outputTokens"))
    except TypeError as exc:
        sink.reject(key, f"wrong type ({exc})")
        return
    if inp == 0 and out == 0:
        sink.not_call()  # Cursor leaves {0, 0} on many bubbles: nothing billed here
        return
    if cid is None:
        for name in ("conversationId", "composerId"):
            if type(value.get(name)) is str and value[name]:
                cid = value[name]
                break
    if bid is None:
        bid = value.get("bubbleId")
    if type(bid) is not str or not bid:
        sink.reject(key, "bubble without bubbleId")
        return
    composer = (composers.get(cid) if cid else None) or {}
    raw_model = None
    info = value.get("modelInfo")
    if type(info) is dict and type(info.get("modelName")) is str and info["modelName"]:
        raw_model = info["modelName"]
    else:
        cfg = composer.get("modelConfig")
        if type(cfg) is dict and type(cfg.get("modelName")) is str and cfg["modelName"]:
            raw_model = cfg["modelName"]
    try:
        timestamp = _timestamp(value, composer, sink)
    except ValueError as exc:
        sink.reject(key, f"bad timestamp ({exc})")
        return
    v = value.get("_v")
    version = str(v) if type(v) is int else None
    sink.saw_version(version)
    workspace = workspaces.get(cid) if cid else None
    sink.event(
        make_event(
            provider=NAME,
            event_id=f"cursor:{cid or 'unknown'}:{bid}",
            raw_model=raw_model,
            session_id=cid or "unknown",
            timestamp=timestamp,
            usage_counts=usage(input_tokens=inp, output_tokens=out),
            project=project_name(workspace),
            source_file=rec.get("db") if type(rec.get("db")) is str else ctx.path,
            source_line=None,
            source_key=key,
            adapter_version=ADAPTER_VERSION,
            source_version=version,
            device=ctx.device,
        )
    )


def _timestamp(value: dict, composer: dict, sink: FileSink) -> str:
    created = value.get("createdAt")
    if created is not None:
        return normalize_timestamp(created)
    timing = value.get("timingInfo")
    if type(timing) is dict and timing.get("clientRpcSendTime") is not None:
        return normalize_timestamp(timing["clientRpcSendTime"])
    for name in ("lastUpdatedAt", "createdAt"):
        if composer.get(name) is not None:
            sink.note("timestamp_from_composer")
            return normalize_timestamp(composer[name])
    raise ValueError("timestamp missing")
