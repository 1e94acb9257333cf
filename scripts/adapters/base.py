"""What every source adapter shares: the per-file sink that counts every record once.

An adapter turns one source file (or database) into events. It never writes anything;
it hands each record to a ``FileSink`` as exactly one of: an event, a duplicate of an
event already seen, not-a-call (user lines, metadata), or a rejection with a reason. So
``events + duplicates + not_a_call + rejected == records`` holds by construction.

Two adapter shapes exist:
- line adapters (``resumable = True``) read JSONL and can resume at a byte offset:
  ``parse_lines(ctx, lines, sink)`` where ``lines`` yields ``(lineno, raw_bytes)``;
  ``ctx.state`` is a JSON-able dict kept between runs (e.g. Codex's running totals).
- whole-file adapters (``resumable = False``) re-read the whole file when it changed:
  ``parse_content(ctx, content_bytes, sink)``, or ``parse_file(ctx, sink)`` for inputs
  that must be opened by path (SQLite databases).

Every adapter module also defines ``NAME``, ``ADAPTER_VERSION``, ``FORMAT_VERSIONS``
(the source format versions it was written against), ``ENV_VAR``,
``roots_from_env(value)``, ``search_locations(roots)`` and ``discover(roots)`` (a generator of
paths: the listing stats each one as it comes, holding no list of them); and
optionally ``side_paths(path)`` (files whose change changes the input, e.g. a -wal).
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable

from scripts.core.event import MAX_TOKENS, check_usage, total_tokens


class ParseContext:
    """What an adapter knows of the file it parses. (A plain class, like the modules here
    importing orjson only in the functions that parse: cache-check imports every adapter
    for its discovery rules, and that import stays light.)"""

    __slots__ = ("path", "device", "state", "mtime_ms", "bulk")

    def __init__(self, path: str, device: str = "", state: dict | None = None, mtime_ms: int = 0, bulk: bool = False):
        self.path = path
        self.device = device
        self.state = {} if state is None else state
        # file modification time (epoch ms) for sources that date a record by it
        self.mtime_ms = mtime_ms
        # part of a large parse (a first run): an adapter may then use its typed decoder,
        # whose import only pays off over many records. The result is the same either way.
        self.bulk = bulk


class FileSink:
    """Collects one file's events, deduplicated within the file, and its record counts.

    Deduplication rule (all sources): one event per id; a later record with the same id
    replaces the kept one only when its usage total is larger (Claude streaming
    snapshots, Droid session snapshots). Everything else with a known id is a duplicate.
    """

    __slots__ = ("events", "records", "duplicates", "not_a_call", "rejected", "versions", "notes", "_on_bad", "path")

    def __init__(self, path: str, prior_events: Iterable[dict] = (), on_bad: Callable[[str, int | str, str], None] | None = None):
        self.path = path
        self.events: dict[str, dict] = {ev["id"]: ev for ev in prior_events}
        self.records = 0
        self.duplicates = 0
        self.not_a_call = 0
        self.rejected: dict[str, int] = {}
        self.versions: dict[str, int] = {}
        self.notes: dict[str, int] = {}
        self._on_bad = on_bad

    # -- one of these per record ------------------------------------------------
    def event(self, ev: dict) -> None:
        self.records += 1
        u = ev["usage"]
        if min(u.values()) < 0 or max(u.values()) > MAX_TOKENS or u["reasoning_tokens"] > u["output_tokens"] or u["cache_write_1h_tokens"] > u["cache_write_tokens"]:
            self._reject(ev.get("source_line") or ev.get("source_key") or "?", check_usage(u) or "implausible usage")
            return
        kept = self.events.get(ev["id"])
        if kept is None:
            self.events[ev["id"]] = ev
        else:
            self.duplicates += 1
            if ev["total_tokens"] > kept["total_tokens"]:
                self.events[ev["id"]] = ev

    def kept_total(self, event_id: str) -> int | None:
        """The usage total of the event kept under ``event_id`` (None if none yet): lets an
        adapter skip building a record that cannot replace it."""
        kept = self.events.get(event_id)
        return None if kept is None else kept["total_tokens"]

    def duplicate(self) -> None:
        """A record repeating a call already counted (re-emit, replay, copy)."""
        self.records += 1
        self.duplicates += 1

    def not_call(self) -> None:
        self.records += 1
        self.not_a_call += 1

    def reject(self, where: int | str, reason: str, report: bool = True) -> None:
        """A record that cannot be used. ``report=False`` counts it without a diagnostic
        line, for a rejection an earlier stage already reported (extract-cursor)."""
        self.records += 1
        self._reject(where, reason, report)

    def _reject(self, where: int | str, reason: str, report: bool = True) -> None:
        key = reason.split(" (", 1)[0]
        self.rejected[key] = self.rejected.get(key, 0) + 1
        if report and self._on_bad is not None:
            self._on_bad(self.path, where, reason)

    def note(self, key: str, n: int = 1) -> None:
        """Telemetry beside the four outcomes (e.g. ``via_fallback`` for Cursor values that
        needed the fallback JSON extraction); summed into the run summary."""
        self.notes[key] = self.notes.get(key, 0) + n

    def saw_version(self, version: str | None) -> None:
        if version:
            self.versions[version] = self.versions.get(version, 0) + 1

    def take(self, events: dict, versions: dict, records: int, duplicates: int, not_a_call: int) -> None:
        """A whole file's outcome from the compiled parser (``native_scanner``), which only
        takes files of events, duplicates and not-a-call records."""
        self.events = events
        self.versions = versions
        self.records += records
        self.duplicates += duplicates
        self.not_a_call += not_a_call

    # -- results -----------------------------------------------------------------
    def counts(self) -> dict:
        return {
            "records": self.records,
            "duplicates": self.duplicates,
            "not_a_call": self.not_a_call,
            "rejected": dict(sorted(self.rejected.items())),
            "notes": dict(sorted(self.notes.items())),
        }


def complete_lines(data: bytes) -> list[bytes]:
    """The newline-terminated lines of ``data`` (without their newlines)."""
    lines = data.split(b"\n")
    lines.pop()  # what follows the last newline: empty, or a line not complete yet
    return lines


def iter_complete_lines(data: bytes, first_lineno: int) -> Iterable[tuple[int, bytes]]:
    """``(lineno, line)`` for each newline-terminated line of ``data``."""
    return enumerate(complete_lines(data), first_lineno)


def split_complete(data: bytes) -> tuple[bytes, bytes]:
    """Split ``data`` into its complete lines and a trailing partial line.

    A log that is being written ends mid-line; that tail is left for a later run. A
    final line without its newline that is already complete JSON is taken now.
    """
    cut = data.rfind(b"\n") + 1
    tail = data[cut:]
    if tail.strip():
        import orjson

        try:
            orjson.loads(tail)
        except orjson.JSONDecodeError:
            return data[:cut], tail
        return data + b"\n", b""
    return data[:cut], tail


def bad_json_reason(exc: Exception) -> str:
    msg = str(exc)
    if "utf-8" in msg.lower() or "surrogate" in msg.lower():
        return "invalid UTF-8"
    return "malformed JSON"


def read_whole(ctx: ParseContext, sink: FileSink) -> bytes | None:
    """The file's bytes for a whole-file adapter, or None after counting it as rejected
    (unreadable: permissions, vanished, a directory)."""
    try:
        with open(ctx.path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        sink.reject("file", f"unreadable file ({exc.strerror or exc})")
        return None


def load_document(content: bytes, sink: FileSink, where: int | str | None = None) -> dict | None:
    """A whole-file source's JSON document, or None after rejecting the file as one record:
    not JSON (at ``where``, else the line the parser names) or not an object."""
    import orjson

    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        if where is None:
            m = re.search(r"line (\d+)", str(exc))
            line = int(m.group(1)) if m else 1
        sink.reject(line if where is None else where, bad_json_reason(exc))
        return None
    if type(doc) is not dict:
        sink.reject(1 if where is None else where, "not a JSON object")
        return None
    return doc


def loads_json(line: bytes):
    """``orjson.loads``, except for a number beyond a double's range, which orjson refuses
    (and the typed decoder skips unread in a field it does not name): such a line is read
    as the stdlib reads it, so that both paths take it alike. Other errors are orjson's."""
    import orjson

    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if "number is infinity" not in str(exc):
            raise
        import json

        try:
            return json.loads(line)
        except (ValueError, RecursionError):
            raise exc from None


def typed_struct(name: str, fields: list[tuple]):
    """A msgspec struct type for an adapter's typed decoder: ``fields`` as
    ``(name, type, default)``; untracked by the cyclic GC (decoded JSON holds no cycles).

    An ``int`` (or ``Optional[int]``) field takes only 64-bit integers, and an ``Any`` one
    any JSON value but a larger integer: orjson, on the checked path, reads those as
    floats, so a line holding one goes to the checked path (see ``decode_typed``) rather
    than being read two ways."""
    from typing import Annotated, Any, Optional, Union

    import msgspec

    bounded = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]
    as_typed = {int: bounded, Optional[int]: Optional[bounded], Any: Union[str, bounded, float, bool, None, list, dict]}
    return msgspec.defstruct(name, [(n, as_typed.get(t, t), d) for n, t, d in fields], gc=False)


def typed_decoder(root) -> Callable[[bytes], object]:
    """msgspec's JSON decoder into the struct type ``root``: only the fields it names are
    decoded (and type-checked); everything else in a line is skipped unparsed."""
    import msgspec

    return msgspec.json.Decoder(root).decode


def decode_typed(line: bytes, decode: Callable[[bytes], object]):
    """``decode(line)``, or None when the line is not JSON, does not fit the decoder's
    types, or is not valid UTF-8 (msgspec does not check the fields it skips): the
    adapter's checked path then says what the line is."""
    if not line.isascii():
        try:
            line.decode()
        except UnicodeDecodeError:
            return None
    try:
        return decode(line)
    except Exception:  # malformed, another shape, nested too deep
        return None


def native_scanner(ctx: ParseContext, sink: FileSink):
    """The compiled parser (``scripts/native``) for this parse, or None. It takes a sink
    that has counted nothing yet (a resumed file's sink holds its earlier calls)."""
    if sink.records:
        return None
    from scripts import native

    return native.module()


def roots_from(default_roots: Callable[[], list[str]]) -> Callable[[str | None], list[str]]:
    """An adapter's ``roots_from_env``: the source variable's comma list (``~`` expanded),
    else the adapter's defaults."""

    def roots_from_env(value: str | None) -> list[str]:
        if value:
            return [os.path.expanduser(p.strip()) for p in value.split(",") if p.strip()]
        return default_roots()

    return roots_from_env


__all__ = [
    "FileSink",
    "ParseContext",
    "bad_json_reason",
    "loads_json",
    "complete_lines",
    "decode_typed",
    "iter_complete_lines",
    "load_document",
    "roots_from",
    "read_whole",
    "split_complete",
    "total_tokens",
    "typed_decoder",
    "typed_struct",
]
