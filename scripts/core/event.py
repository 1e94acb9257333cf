"""The normalized event: usage buckets, canonical model names, timestamps, ids.

One event is one billable model call (see docs/contracts/event.md). The usage buckets
never overlap: ``total_tokens = input + cache_write + cache_read + output + tool_input +
tool_output``; ``reasoning_tokens`` is a subset of output, ``cache_write_1h_tokens`` a
subset of cache_write.
"""
from __future__ import annotations

import datetime as dt
import re

EVENT_SCHEMA_VERSION = 1

PROVIDERS = ("claude", "codex", "cursor", "droid", "opencode", "gemini", "cliproxy")

# Order matters: it is the column order of rollup rows and CSV reports.
USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "tool_input_tokens",
    "tool_output_tokens",
    "reasoning_tokens",
    "cache_write_1h_tokens",
)
# The buckets that add up to total_tokens (the last two are subsets).
ADDITIVE_KEYS = USAGE_KEYS[:6]

# Long-context thresholds (prompt tokens) that a price book may tier on. Events are
# classified against these at normalize time so pricing stays independent of parsing.
LONG_CONTEXT_THRESHOLDS = (100_000, 200_000, 272_000)

# An absurd count is a corrupt record, not a call: 2**40 tokens is ~1 trillion.
MAX_TOKENS = 1 << 40

_DATE_SUFFIX = re.compile(r"[-@](20\d{2})(0[1-9]|1[0-2])([0-2]\d|3[01])$")
_VENDOR_PREFIX = re.compile(r"^(anthropic|openai|google|gemini|vertex_ai|models)/")
# Anthropic's model ids write versions with dashes (claude-opus-4-5); Cursor and Droid
# write claude-opus-4.5. Other vendors' dots are part of their names (gpt-5.2).
_CLAUDE_DOT = re.compile(r"(?<=\d)\.(?=\d)")


_canonical_cache: dict[str, str] = {}


def canonical_model(raw: str | None) -> str:
    """The model name reports group by: lower-case, no vendor prefix, no snapshot date.

    ``claude-sonnet-4-5-20250929``, ``claude-sonnet-4.5`` and ``claude-sonnet-4-5`` are one
    model. Aliases from
    the pricing book are applied later, by the price stage, so that parsing does not
    depend on prices.
    """
    if not raw:
        return "unknown"
    hit = _canonical_cache.get(raw)
    if hit is None:
        name = _VENDOR_PREFIX.sub("", raw.strip().lower())
        if name.startswith("claude-"):
            name = _CLAUDE_DOT.sub("-", name)
        hit = _DATE_SUFFIX.sub("", name) or "unknown"
        if len(_canonical_cache) < 10_000:
            _canonical_cache[raw] = hit
    return hit


def usage(
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_read_tokens: int = 0,
    tool_input_tokens: int = 0,
    tool_output_tokens: int = 0,
    reasoning_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
) -> dict[str, int]:
    """The usage buckets of one event (all eight, in USAGE_KEYS order)."""
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_write_tokens": cache_write_tokens,
        "cache_read_tokens": cache_read_tokens,
        "tool_input_tokens": tool_input_tokens,
        "tool_output_tokens": tool_output_tokens,
        "reasoning_tokens": reasoning_tokens,
        "cache_write_1h_tokens": cache_write_1h_tokens,
    }


def total_tokens(u: dict[str, int]) -> int:
    return (
        u["input_tokens"]
        + u["cache_write_tokens"]
        + u["cache_read_tokens"]
        + u["output_tokens"]
        + u["tool_input_tokens"]
        + u["tool_output_tokens"]
    )


def prompt_tokens(u: dict[str, int]) -> int:
    return u["input_tokens"] + u["cache_write_tokens"] + u["cache_read_tokens"] + u["tool_input_tokens"]


def context_class(u: dict[str, int]) -> int:
    """The largest long-context threshold the prompt exceeds (0: none)."""
    prompt = prompt_tokens(u)
    cls = 0
    for threshold in LONG_CONTEXT_THRESHOLDS:
        if prompt > threshold:
            cls = threshold
    return cls


def check_usage(u: dict[str, int]) -> str | None:
    """Why these counts cannot be a call, or None when they are plausible."""
    for key in USAGE_KEYS:
        value = u[key]
        if value < 0:
            return f"negative {key}"
        if value > MAX_TOKENS:
            return f"absurd {key}"
    if u["reasoning_tokens"] > u["output_tokens"]:
        return "reasoning_tokens exceed output_tokens"
    if u["cache_write_1h_tokens"] > u["cache_write_tokens"]:
        return "cache_write_1h_tokens exceed cache_write_tokens"
    return None


def as_count(value) -> int:
    """A token count from a log field: ints (or integral floats) only, absent is 0."""
    if value is None:
        return 0
    if type(value) is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"token count is {type(value).__name__}, not a number")
    raise TypeError("token count is not an integer")


# ------------------------------------------------------------------ timestamps
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_minute_cache: dict[str, int] = {}


_DIGITS = frozenset("0123456789")


def minute_ms(minute: str) -> int:
    """Epoch ms of ``YYYY-MM-DDTHH:MM`` (memoized; ValueError when it is no such minute)."""
    base = _minute_cache.get(minute)
    if base is None:
        if not minute[:4].isdigit():
            raise ValueError(f"timestamp {minute!r} is not ISO 8601")
        base = int((dt.datetime.fromisoformat(minute + ":00+00:00") - _EPOCH) / dt.timedelta(milliseconds=1))
        if len(_minute_cache) > 200_000:
            _minute_cache.clear()
        _minute_cache[minute] = base
    return base


def normalize_timestamp(value) -> str:
    """RFC 3339 UTC with milliseconds (``2026-08-06T17:49:45.767Z``) from an ISO string,
    epoch milliseconds or epoch seconds. Raises ValueError when it is none of these."""
    if type(value) is str:
        # fast path: already canonical (what Claude Code and Codex write); the minute is
        # validated once through the cache, seconds and milliseconds here
        if (
            len(value) == 24
            and value[23] == "Z"
            and value[19] == "."
            and value[16] == ":"
            and value[10] == "T"
            and value[17] in "012345"
            and _DIGITS.issuperset(value[18] + value[20:23])
        ):
            try:
                minute_ms(value[:16])
                return value
            except ValueError:
                pass
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            raise ValueError(f"timestamp {value[:40]!r} is not ISO 8601") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        ms = int((parsed - _EPOCH) / dt.timedelta(milliseconds=1))
        if not 0 < ms < 32503680000000:
            raise ValueError(f"timestamp {value[:40]!r} out of range")
        return format_ms(ms)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError("timestamp missing")
    if type(value) is int and not -(1 << 63) <= value < 1 << 63:
        # beyond a double's range float() raises; out of range anyway
        raise ValueError(f"timestamp {str(value)[:40]} out of range")
    ms = float(value)
    if ms < 1e11:  # seconds, not milliseconds (1e11 ms is 1973)
        ms *= 1000.0
    if not 0 < ms < 32503680000000:  # before year 3000
        raise ValueError(f"timestamp {value!r} out of range")
    return format_ms(int(ms))


def format_ms(ms: int) -> str:
    t = _EPOCH + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def timestamp_ms(ts: str) -> int:
    """Epoch milliseconds of a canonical timestamp (as normalize_timestamp returns)."""
    return minute_ms(ts[:16]) + int(ts[17:19]) * 1000 + int(ts[20:23])


_last_day = ["", 0]  # the day epoch_ms last saw, and its epoch ms


def epoch_ms(ts: str) -> int:
    """``timestamp_ms`` without the minute memo, whose entries would grow with every
    distinct minute read (a report's blocks: thousands over a long history): for
    timestamps read once. Only the last day's epoch is kept (entries come in time order).
    ValueError when ``ts`` is not canonical."""
    if (len(ts) != 24 or ts[10] != "T" or ts[13] != ":" or ts[16] != ":" or ts[19] != "." or ts[23] != "Z"
            or ts[11:13] > "23" or ts[14:16] > "59" or ts[17:19] > "59"):
        raise ValueError(f"timestamp {ts[:40]!r} is not canonical")
    day = ts[:10]
    if day != _last_day[0]:
        if not day[:4].isdigit():
            raise ValueError(f"timestamp {ts[:40]!r} is not ISO 8601")
        _last_day[:] = [day, int((dt.datetime.fromisoformat(day + "T00:00:00+00:00") - _EPOCH) / dt.timedelta(milliseconds=1))]
    return _last_day[1] + int(ts[11:13]) * 3_600_000 + int(ts[14:16]) * 60_000 + int(ts[17:19]) * 1000 + int(ts[20:23])


def make_event(
    *,
    provider: str,
    event_id: str,
    raw_model: str | None,
    session_id: str,
    timestamp: str,
    usage_counts: dict[str, int],
    project: str | None,
    source_file: str,
    source_line: int | None,
    adapter_version: str,
    source_version: str | None = None,
    source_key: str | None = None,
    model_provider: str | None = None,
    device: str = "",
    extra: dict | None = None,
) -> dict:
    u = usage_counts
    ev = {
        "schema_version": EVENT_SCHEMA_VERSION,
        "id": event_id,
        "provider": provider,
        "model": canonical_model(raw_model),
        "raw_model": raw_model or "unknown",
        "session_id": session_id,
        "project": project,
        "timestamp": timestamp,
        "usage": u,
        "total_tokens": u["input_tokens"]
        + u["cache_write_tokens"]
        + u["cache_read_tokens"]
        + u["output_tokens"]
        + u["tool_input_tokens"]
        + u["tool_output_tokens"],
        "source_file": source_file,
        "source_line": source_line,
        "adapter": provider,
        "adapter_version": adapter_version,
        "source_version": source_version,
        "device": device,
    }
    if source_key is not None:
        ev["source_key"] = source_key
    if model_provider:
        ev["model_provider"] = model_provider
    if extra:
        ev.update(extra)
    return ev


_project_cache: dict[str, str | None] = {}


def project_name(cwd: str | None) -> str | None:
    """The project a call belongs to: the last path component of its working directory."""
    if not cwd or type(cwd) is not str:
        return None
    hit = _project_cache.get(cwd, False)
    if hit is False:
        hit = cwd.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] or None
        if len(_project_cache) < 10_000:
            _project_cache[cwd] = hit
    return hit
