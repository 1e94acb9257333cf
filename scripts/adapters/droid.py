"""Factory Droid: ``$DROID_SESSIONS_DIR/**/<sessionId>.settings.json`` (default ``~/.factory/sessions``).

Droid keeps one **session-cumulative** ``tokenUsage`` per session in its settings file,
rewritten as the session goes on; the transcript ``<sessionId>.jsonl`` sits beside it
(flat in older builds, under ``<encoded project path>/`` in newer ones). One event = one
session's usage, id ``droid:<sessionId>``: a later, larger snapshot of the same session
(the file rewritten, or a copy elsewhere in the tree) replaces the earlier one, never adds
to it. ``inputTokens`` -> input, ``cacheCreationTokens`` -> cache_write,
``cacheReadTokens`` -> cache_read, ``outputTokens + thinkingTokens`` -> output
(``thinkingTokens`` -> reasoning). Timestamp ``providerLockTimestamp``, else the file's
mtime. Model ``model`` (``custom:`` = bring-your-own-key, kept in raw_model), else the
transcript's ``Model:`` marker; project from the transcript's ``session_start.cwd``, else
the encoded directory name.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator

from scripts.adapters.base import FileSink, ParseContext, load_document, read_whole, roots_from
from scripts.core.event import as_count, canonical_model, format_ms, make_event, normalize_timestamp, project_name, usage

NAME = "droid"
ADAPTER_VERSION = "1"
resumable = False
# Transcript ``session_start.version`` values the fixtures were checked against.
FORMAT_VERSIONS = ("2",)
ENV_VAR = "DROID_SESSIONS_DIR"
SUFFIX = ".settings.json"
# how much of a transcript is scanned for its session_start line and model marker
SIDECAR_SCAN_BYTES = 256 << 10


def default_roots() -> list[str]:
    return [os.path.join(os.path.expanduser("~"), ".factory", "sessions")]


roots_from_env = roots_from(default_roots)


def search_locations(roots: list[str]) -> list[str]:
    return list(roots)


def discover(roots: list[str]) -> Iterator[str]:
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            yield from (os.path.join(dirpath, fn) for fn in sorted(filenames) if fn.endswith(SUFFIX))


def side_paths(path: str) -> list[str]:
    """The transcript supplies the model and project when the settings lack them."""
    return [sidecar_path(path)]


def sidecar_path(path: str) -> str:
    return path[: -len(SUFFIX)] + ".jsonl" if path.endswith(SUFFIX) else path + ".jsonl"


_KEYS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "thinkingTokens")


def parse_file(ctx: ParseContext, sink: FileSink) -> None:
    content = read_whole(ctx, sink)
    if content is not None:
        parse_content(ctx, content, sink)


def parse_content(ctx: ParseContext, content: bytes, sink: FileSink) -> None:
    path = ctx.path
    doc = load_document(content, sink)
    if doc is None:
        return
    tu = doc.get("tokenUsage")
    if tu is None:
        sink.not_call()  # a session that never called a model
        return
    if type(tu) is not dict:
        sink.reject(1, "wrong type (tokenUsage is not an object)")
        return
    try:
        inp, out, cw, cr, thinking = (as_count(tu.get(k)) for k in _KEYS)
    except TypeError as exc:
        sink.reject(1, f"wrong type ({exc})")
        return
    if not (inp or out or cw or cr or thinking):
        sink.not_call()
        return
    side = _sidecar_info(path)
    raw_model = doc.get("model")
    if type(raw_model) is not str or not raw_model.strip():
        raw_model = side.get("model")
    lock_ts = doc.get("providerLockTimestamp")
    try:
        if lock_ts is not None:
            timestamp = normalize_timestamp(lock_ts)
        elif ctx.mtime_ms:
            timestamp = format_ms(ctx.mtime_ms)
        else:
            timestamp = format_ms(int(os.stat(path).st_mtime_ns // 1_000_000))
    except (ValueError, OSError) as exc:
        sink.reject(1, f"bad timestamp ({exc})")
        return
    session_id = os.path.basename(path)
    session_id = session_id[: -len(SUFFIX)] if session_id.endswith(SUFFIX) else session_id
    version = side.get("version")
    sink.saw_version(version)
    provider = doc.get("providerLock")
    ev = make_event(
        provider=NAME,
        event_id=f"droid:{session_id}",
        raw_model=raw_model,
        session_id=session_id,
        timestamp=timestamp,
        usage_counts=usage(
            input_tokens=inp,
            cache_write_tokens=cw,
            cache_read_tokens=cr,
            output_tokens=out + thinking,
            reasoning_tokens=thinking,
        ),
        project=project_name(side.get("cwd")) or _project_from_dir(path),
        source_file=path,
        source_line=1,
        adapter_version=ADAPTER_VERSION,
        source_version=version,
        model_provider=provider if type(provider) is str and provider else None,
        device=ctx.device,
    )
    ev["model"] = canonical_model(clean_model_name(raw_model))
    sink.event(ev)


def clean_model_name(raw: str | None) -> str | None:
    """``custom:GLM-4.6-[Z.AI]-0`` -> ``glm-4.6``: the bring-your-own-key prefix, the
    bracketed provider label and the custom model's index (``-0``) are decoration, not
    the model; ``Claude Opus 4.5`` -> ``claude-opus-4.5``."""
    if not raw:
        return raw
    name = raw.strip()
    custom = name.lower().startswith("custom:")
    if custom:
        name = name[len("custom:"):]
    name = re.sub(r"\[[^\]]*\]", "", name).strip().lower()
    name = re.sub(r"\s+", "-", name)
    name = re.sub(r"-{2,}", "-", name).strip("-")
    if custom:
        name = re.sub(r"-\d+$", "", name)
    return name or raw


_MODEL_MARKER = re.compile(rb"Model:\s*([^\"\\\[\n]+)")
# Droid writes the marker into its <system-reminder>; the same words in a prompt or a reply
# are the user's text, never a model name (and must not reach an artifact)
_REMINDER = re.compile(rb"<system-reminder>(.*?)</system-reminder>", re.S)


def _sidecar_info(path: str) -> dict:
    """From the head of the transcript: session_start's cwd/version and the first
    ``Model: <name>`` marker inside a ``<system-reminder>`` (Droid writes it there)."""
    import orjson

    info: dict = {}
    try:
        with open(sidecar_path(path), "rb") as fh:
            head = fh.read(SIDECAR_SCAN_BYTES)
    except OSError:
        return info
    for line in head.split(b"\n"):
        if b'"session_start"' in line and "cwd" not in info:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if type(obj) is dict and obj.get("type") == "session_start":
                if type(obj.get("cwd")) is str:
                    info["cwd"] = obj["cwd"]
                v = obj.get("version")
                if type(v) in (int, str) and not isinstance(v, bool):
                    info["version"] = str(v)
        if "model" not in info and b"<system-reminder>" in line:
            for reminder in _REMINDER.finditer(line):
                m = _MODEL_MARKER.search(reminder.group(1))
                if m:
                    name = m.group(1).decode("utf-8", "replace").strip()
                    if name:
                        info["model"] = name
                        break
        if "cwd" in info and "model" in info:
            break
    return info


def _project_from_dir(path: str) -> str | None:
    # sessions/<cwd with / -> ->/<id>.settings.json: the slug's last part (a guess when
    # the project name itself has dashes; the transcript's cwd is preferred)
    parent = os.path.basename(os.path.dirname(path))
    if parent.startswith("-"):
        return parent.rsplit("-", 1)[-1] or None
    return None

