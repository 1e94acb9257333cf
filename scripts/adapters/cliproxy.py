"""CLIProxyAPI: the archive ``extract-cliproxy`` keeps in ``$CLIPROXY_USAGE_DIR``
(default ``~/.local/share/tokentally/cliproxy/``).

The proxy holds usage only in memory; the poller appends what it gets to the archive:
v7 per-request records (``GET /v0/management/usage-queue``) as ``*.jsonl``, one record a
line, and v6 exports (``GET /v0/management/usage/export``) as ``*.json`` documents
(``{"version": 1, "exported_at", "usage": {"apis": {<key>: {"models": {<model>: {"details": [...]}}}}}}``).

One event = one proxied request. v7: ``token_breakdown`` (input.uncached -> input,
input.cache_read -> cache_read, input.cache_write -> cache_write, output.total -> output,
output.reasoning -> reasoning; ``unclassified_tokens`` go to input and are noted), id
``cliproxy:<request_id>``. v6 ``details[]``: input = input_tokens - cached_tokens,
cache_read = cached_tokens, output = output_tokens + reasoning_tokens; id = a hash of
(api key, model, timestamp, source, auth_index, tokens), so the same request in two
overlapping exports is one event.

Failed requests (``failed: true``) are not calls: counted as not-a-call and noted apart
(``failed_requests``, ``failed_request_tokens``), never billed. The client API key never
reaches an event: the session is a short hash of it.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

from scripts.adapters.base import FileSink, ParseContext, bad_json_reason, load_document, read_whole, roots_from, split_complete
from scripts.core.event import as_count, make_event, normalize_timestamp, usage

NAME = "cliproxy"
ADAPTER_VERSION = "1"
resumable = False
# v6 export ``version`` 1 and v7 ``accounting_version`` 2.
FORMAT_VERSIONS = ("1", "2")
ENV_VAR = "CLIPROXY_USAGE_DIR"


def default_roots() -> list[str]:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return [os.path.join(base, "tokentally", "cliproxy")]


roots_from_env = roots_from(default_roots)


def search_locations(roots: list[str]) -> list[str]:
    return list(roots)


def discover(roots: list[str]) -> Iterator[str]:
    """The archive's ``*.jsonl`` and ``*.json`` files (flat: the poller writes no
    subdirectories; its ``.spool/`` and temp files are hidden)."""
    for root in roots:
        try:
            names = sorted(os.listdir(root))
        except OSError:
            continue
        yield from (
            os.path.join(root, fn)
            for fn in names
            if not fn.startswith(".") and (fn.endswith(".jsonl") or fn.endswith(".json")) and os.path.isfile(os.path.join(root, fn))
        )


# ------------------------------------------------------------------ ids
def key_pseudonym(api_key) -> str:
    """A stable, non-reversible name for a client API key (the key itself is a secret)."""
    import hashlib

    if not isinstance(api_key, str) or not api_key:
        return "key-none"
    return "key-" + hashlib.blake2b(api_key.encode(), digest_size=5).hexdigest()


def request_hash(api_key, model, record: dict) -> str:
    """The identity of a request without a request id: (api key, model, timestamp,
    source, auth_index, tokens), as v6 exports repeat the same detail verbatim."""
    import hashlib
    import orjson

    tokens = record.get("tokens")
    ident = [api_key, model, record.get("timestamp"), record.get("source"), record.get("auth_index"), tokens]
    blob = orjson.dumps(ident, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(blob, digest_size=12).hexdigest()


# ------------------------------------------------------------------ parsing
def parse_file(ctx: ParseContext, sink: FileSink) -> None:
    content = read_whole(ctx, sink)
    if content is not None:
        parse_content(ctx, content, sink)


def parse_content(ctx: ParseContext, content: bytes, sink: FileSink) -> None:
    import orjson

    if ctx.path.endswith(".json") or (not ctx.path.endswith(".jsonl") and _looks_like_export(content)):
        _parse_export(ctx, content, sink)
        return
    complete, _partial = split_complete(content)  # the poller may be appending right now
    for lineno, line in enumerate(complete.split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            sink.reject(lineno, bad_json_reason(exc))
            continue
        if type(rec) is not dict:
            sink.reject(lineno, "not a JSON object")
            continue
        _v7(ctx, sink, lineno, rec)


def _looks_like_export(content: bytes) -> bool:
    """For stdin (no file name): one JSON document holding a usage snapshot."""
    import orjson

    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError:
        return False
    return type(doc) is dict and ("apis" in doc or type(doc.get("usage")) is dict)


def _v7(ctx: ParseContext, sink: FileSink, lineno: int, rec: dict) -> None:
    if "tokens" not in rec and "token_breakdown" not in rec:
        sink.not_call()  # not a usage record
        return
    api_key = rec.get("api_key")
    model = rec.get("model")
    try:
        counts, unclassified = _v7_counts(rec, sink)
    except TypeError as exc:
        sink.reject(lineno, f"wrong type ({exc})")
        return
    except ValueError as exc:
        sink.reject(lineno, str(exc))
        return
    if rec.get("failed") is True:
        _failed(sink, counts)
        return
    if not any(counts.values()):
        sink.not_call()
        return
    if unclassified:
        sink.note("unclassified_tokens", unclassified)
    rid = rec.get("request_id")
    event_id = f"cliproxy:{rid}" if type(rid) is str and rid else f"cliproxy:{request_hash(api_key, model, rec)}"
    av = rec.get("accounting_version")
    version = str(av) if type(av) is int else None
    _emit(ctx, sink, lineno, None, event_id, api_key, model, rec, counts, version, rec.get("provider"))


def _v7_counts(rec: dict, sink: FileSink) -> tuple[dict, int]:
    tb = rec.get("token_breakdown")
    if type(tb) is dict and type(tb.get("input")) is dict and type(tb.get("output")) is dict:
        i, o = tb["input"], tb["output"]
        unclassified = as_count(tb.get("unclassified_tokens"))
        if tb.get("quality") == "inconsistent":
            sink.note("inconsistent_breakdowns")
        counts = usage(
            input_tokens=as_count(i.get("uncached_tokens")) + unclassified,
            cache_read_tokens=as_count(i.get("cache_read_tokens")),
            cache_write_tokens=as_count(i.get("cache_write_tokens")),
            output_tokens=as_count(o.get("total_tokens")),
            reasoning_tokens=as_count(o.get("reasoning_tokens")),
        )
        return counts, unclassified
    # no breakdown, or one without its input/output parts: the raw tokens, v6 rule
    sink.note("records_without_breakdown")
    return _v6_counts(rec.get("tokens"), rec), 0


def _v6_counts(tokens, rec: dict) -> dict:
    if type(tokens) is not dict:
        raise TypeError("tokens is not an object")
    inp = as_count(tokens.get("input_tokens"))
    if tokens.get("cache_read_tokens_present") is True:
        cached = as_count(tokens.get("cache_read_tokens"))
    else:
        cached = as_count(tokens.get("cached_tokens"))
    if cached > inp:
        raise ValueError("cached tokens exceed input tokens")
    out = as_count(tokens.get("output_tokens"))
    reasoning = as_count(tokens.get("reasoning_tokens"))
    return usage(
        input_tokens=inp - cached,
        cache_read_tokens=cached,
        cache_write_tokens=as_count(tokens.get("cache_creation_tokens")),
        output_tokens=out + reasoning,
        reasoning_tokens=reasoning,
    )


def _failed(sink: FileSink, counts: dict) -> None:
    sink.not_call()
    sink.note("failed_requests")
    total = sum(counts[k] for k in ("input_tokens", "cache_write_tokens", "cache_read_tokens", "output_tokens"))
    if total:
        sink.note("failed_request_tokens", total)


def _parse_export(ctx: ParseContext, content: bytes, sink: FileSink) -> None:
    doc = load_document(content, sink, where="file")
    if doc is None:
        return
    snapshot = doc.get("usage") if type(doc.get("usage")) is dict else doc
    apis = snapshot.get("apis")
    if apis is None:
        return  # an export of an idle proxy
    if type(apis) is not dict:
        sink.reject("file", "wrong type (usage.apis is not an object)")
        return
    v = doc.get("version")
    version = str(v) if type(v) is int else None
    for api_key in sorted(apis):
        entry = apis[api_key]
        models = entry.get("models") if type(entry) is dict else None
        if type(models) is not dict:
            sink.reject(f"apis[{key_pseudonym(api_key)}]", "wrong type (models is not an object)")
            continue
        for model in sorted(models):
            details = models[model].get("details") if type(models[model]) is dict else None
            if type(details) is not list:
                sink.reject(f"apis[{key_pseudonym(api_key)}].models[{model}]", "wrong type (details is not a list)")
                continue
            for i, detail in enumerate(details):
                where = f"apis[{key_pseudonym(api_key)}].models[{model}].details[{i}]"
                if type(detail) is not dict:
                    sink.reject(where, "wrong type (detail is not an object)")
                    continue
                try:
                    counts = _v6_counts(detail.get("tokens"), detail)
                except TypeError as exc:
                    sink.reject(where, f"wrong type ({exc})")
                    continue
                except ValueError as exc:
                    sink.reject(where, str(exc))
                    continue
                if detail.get("failed") is True:
                    _failed(sink, counts)
                    continue
                if not any(counts.values()):
                    sink.not_call()
                    continue
                event_id = f"cliproxy:{request_hash(api_key, model, detail)}"
                _emit(ctx, sink, where, where, event_id, api_key, model, detail, counts, version, None)


def _emit(ctx, sink: FileSink, where, key, event_id, api_key, model, rec, counts, version, provider) -> None:
    try:
        timestamp = normalize_timestamp(rec.get("timestamp"))
    except ValueError as exc:
        sink.reject(where, f"bad timestamp ({exc})")
        return
    sink.saw_version(version)
    sink.event(
        make_event(
            provider=NAME,
            event_id=event_id,
            raw_model=model if type(model) is str else None,
            session_id=key_pseudonym(api_key),
            timestamp=timestamp,
            usage_counts=counts,
            project=None,
            source_file=ctx.path,
            source_line=where if type(where) is int else None,
            source_key=key,
            adapter_version=ADAPTER_VERSION,
            source_version=version,
            model_provider=provider if type(provider) is str and provider else None,
            device=ctx.device,
        )
    )
