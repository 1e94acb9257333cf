"""Fuzzing every adapter through its public API with random and mutated records.

Real records of each source (the fixtures) are mutated: a field anywhere replaced by junk
(huge or negative numbers, floats, infinities, strings, nested junk, null, booleans), fields
deleted or added, unknown record types; then the bytes: lines cut short, invalid UTF-8,
stray newlines, deep nesting, non-objects. Each adapter gets them the way a run does
(``parse_lines`` for the line adapters, ``parse_content`` / ``parse_file`` for the others,
Cursor's extract step too, OpenCode's SQLite database too) through a ``FileSink``, and:

- nothing raises: no traceback, whatever the input;
- every record is accounted for: events + duplicates + not-a-call + rejected == records, and
  records == the input's records (its non-blank lines, its rows, its messages);
- a rejection is one line with a reason; every event follows the event contract, its token
  counts integers;
- a line adapter resumed at any line boundary (the parse cache's resume) gives what one
  pass gives.

Deterministic (derandomized, no example database): the fast profile runs a few hundred
examples per adapter (``make check``), the long one thousands (``make faults``).
"""
from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts import adapters
from scripts.adapters.base import FileSink, ParseContext, iter_complete_lines
from scripts.core.event import USAGE_KEYS
from scripts.core.schemas import errors

from .harness import LONG, figure

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
EXAMPLES = 3000 if LONG else 300
CASES: dict[str, int] = {}
RECORDS: dict[str, int] = {}

FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much, HealthCheck.large_base_example],
)


# ---------------------------------------------------------------- real records to start from
def _lines(pattern: str) -> list[bytes]:
    out = []
    for p in sorted(FIXTURES.glob(pattern)):
        out += [line for line in p.read_bytes().splitlines() if line.strip()]
    return out


def _docs(pattern: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted(FIXTURES.glob(pattern))]


def _cursor_records() -> list[bytes]:
    from scripts.core.cursor_store import record_from_row

    spec = json.loads((FIXTURES / "cursor" / "state.vscdb.json").read_text())
    from fixtures_build import cursor_value

    out = []
    for row in spec["rows"]:
        rec = record_from_row("/fuzz/state.vscdb", row["table"], row["key"], cursor_value(row))
        out.append(orjson.dumps(rec, option=orjson.OPT_SORT_KEYS))
    return out


def _cursor_values() -> list[tuple[str, str, object]]:
    from fixtures_build import cursor_value

    spec = json.loads((FIXTURES / "cursor" / "state.vscdb.json").read_text())
    return [(row["table"], row["key"], cursor_value(row)) for row in spec["rows"]]


def _opencode_rows() -> list[tuple]:
    spec = json.loads((FIXTURES / "opencode" / "opencode.db.json").read_text())
    rows = []
    for row in spec["rows"]:
        if row["table"] == "message":
            v = row["values"]
            data = v["data"] if isinstance(v["data"], str) else json.dumps(v["data"])
            rows.append((v["id"], v["session_id"], data))
    return rows


BASES = {
    "claude": _lines("claude/projects/**/*.jsonl"),
    "codex": _lines("codex/**/*.jsonl"),
    "gemini_jsonl": _lines("gemini/tmp/**/*.jsonl"),
    "gemini_json": _docs("gemini/tmp/*/chats/*.json"),
    "droid": _docs("droid/sessions/**/*.settings.json"),
    "droid_transcript": _lines("droid/sessions/**/*.jsonl"),
    "opencode_json": _docs("opencode/storage/message/*/*.json"),
    "cliproxy_jsonl": _lines("cliproxy/*.jsonl"),
    "cliproxy_json": _docs("cliproxy/*.json"),
}


@pytest.fixture(scope="module", autouse=True)
def _fixture_builder():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("fixtures_build", FIXTURES / "build_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["fixtures_build"] = mod
    BASES["cursor"] = _cursor_records()
    BASES["cursor_values"] = _cursor_values()
    BASES["opencode_rows"] = _opencode_rows()
    yield
    figure("fuzz.cases_per_adapter", dict(sorted(CASES.items())))
    figure("fuzz.records_accounted_per_adapter", dict(sorted(RECORDS.items())))
    figure("fuzz.cases_total", sum(CASES.values()))
    figure("fuzz.records_total", sum(RECORDS.values()))


# ---------------------------------------------------------------- mutations
HUGE = st.sampled_from([2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**64 + 7, 10**30, -(2**63), -1, 1 << 41, 1e308, -1e308, 1.5, 0.1, -0.0])
junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | HUGE
    | st.text(max_size=12)
    | st.sampled_from(["", "1", "2026-08-10T10:00:00Z", "not a date", "<synthetic>", "token_count", "assistant", "gemini", "{"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
RECORD_TYPES = st.sampled_from(["assistant", "user", "summary", "event_msg", "response_item", "turn_context", "session_meta",
                                "gemini", "info", "message", "session_start", "compacted", "x-unknown-record", ""])


def mutate(data, obj, depth=0):
    """One random change somewhere in the JSON value ``obj``."""
    if isinstance(obj, dict) and obj and depth < 8:
        op = data.draw(st.sampled_from(["recurse", "recurse", "recurse", "replace", "delete", "add", "retype"]))
        key = data.draw(st.sampled_from(sorted(obj)))
        obj = dict(obj)
        if op == "recurse":
            obj[key] = mutate(data, obj[key], depth + 1)
        elif op == "replace":
            obj[key] = data.draw(junk)
        elif op == "delete":
            del obj[key]
        elif op == "add":
            obj[data.draw(st.text(max_size=10))] = data.draw(junk)
        else:
            obj["type"] = data.draw(RECORD_TYPES)
        return obj
    if isinstance(obj, list) and obj and depth < 8:
        i = data.draw(st.integers(0, len(obj) - 1))
        op = data.draw(st.sampled_from(["recurse", "recurse", "replace", "delete", "append"]))
        obj = list(obj)
        if op == "recurse":
            obj[i] = mutate(data, obj[i], depth + 1)
        elif op == "replace":
            obj[i] = data.draw(junk)
        elif op == "delete":
            del obj[i]
        else:
            obj.append(data.draw(junk))
        return obj
    return data.draw(junk)


def dumps(obj) -> bytes:
    # the stdlib writes what orjson cannot (ints beyond 64 bits, NaN, Infinity): junk a log may hold
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


BAD_BYTES = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28", b"\x00", b"\x80abc"]


def mangle(data, raw: bytes) -> bytes:
    """Byte-level damage: cut short, invalid UTF-8, a stray newline, deep nesting, junk."""
    op = data.draw(st.sampled_from(["none", "none", "cut", "badutf8", "newline", "nest", "junkline", "nonobject"]))
    if op == "cut" and raw:
        return raw[: data.draw(st.integers(0, len(raw) - 1))]
    if op == "badutf8":
        at = data.draw(st.integers(0, len(raw)))
        return raw[:at] + data.draw(st.sampled_from(BAD_BYTES)) + raw[at:]
    if op == "newline" and raw:
        at = data.draw(st.integers(0, len(raw)))
        return raw[:at] + b"\n" + raw[at:]
    if op == "nest":
        n = data.draw(st.sampled_from([10, 600, 5000]))
        return b'{"message":{"usage":' + b"[" * n + b"]" * n + b"}}"
    if op == "junkline":
        return data.draw(st.binary(max_size=40))
    if op == "nonobject":
        return data.draw(st.sampled_from([b"[]", b"null", b"123", b'"usage"', b"true", b'[{"usage":1}]', b"18446744073709551616"]))
    return raw


def record(data, bases: list[bytes]) -> bytes:
    raw = data.draw(st.sampled_from(bases))
    if data.draw(st.integers(0, 3)):
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        if obj is not None:
            for _ in range(data.draw(st.integers(1, 3))):
                obj = mutate(data, obj)
            raw = dumps(obj)
    return mangle(data, raw)


def jsonl(data, bases: list[bytes], max_lines: int = 12) -> bytes:
    lines = [record(data, bases) for _ in range(data.draw(st.integers(0, max_lines)))]
    if data.draw(st.booleans()) and lines:
        lines.insert(data.draw(st.integers(0, len(lines))), data.draw(st.sampled_from([b"", b"   ", b"\t"])))
    return b"\n".join(lines) + (b"\n" if lines else b"")


# ---------------------------------------------------------------- the checks
def new_sink(path: str):
    bad = []
    return FileSink(path, on_bad=lambda p, where, reason: bad.append((p, where, reason))), bad


def check_sink(source: str, sink: FileSink, bad: list, expected_records: int | None, at_least: int = 0) -> None:
    c = sink.counts()
    rejected = sum(c["rejected"].values())
    assert len(sink.events) + c["duplicates"] + c["not_a_call"] + rejected == c["records"]
    if expected_records is not None:
        assert c["records"] == expected_records, (c, expected_records)
    assert c["records"] >= at_least
    for _path, where, reason in bad:
        assert isinstance(reason, str) and reason and "\n" not in reason and len(reason) < 300, reason
        assert isinstance(where, (int, str)), where
    for i, ev in enumerate(sink.events.values()):
        u = ev["usage"]
        assert set(u) == set(USAGE_KEYS)
        assert all(type(v) is int and v >= 0 for v in u.values()), u
        assert type(ev["total_tokens"]) is int and ev["total_tokens"] == sum(u[k] for k in USAGE_KEYS[:6])
        if LONG or i == 0:  # the schema on every event is the slow part: the first of each case in the fast profile
            problems = errors(orjson.loads(orjson.dumps(ev)), "event.v1.schema.json")
            assert not problems, problems
    CASES[source] = CASES.get(source, 0) + 1
    RECORDS[source] = RECORDS.get(source, 0) + c["records"]


def non_blank_lines(content: bytes) -> int:
    return sum(1 for line in content.split(b"\n") if line.strip())


def parse_lines(source: str, content: bytes, path: str, state=None, prior=(), bulk: bool = False):
    mod = adapters.load(source)
    sink, bad = new_sink(path)
    sink.events.update({ev["id"]: ev for ev in prior})
    ctx = ParseContext(path=path, device="fuzz", state=dict(state or {}), mtime_ms=1786000000000, bulk=bulk)
    mod.parse_lines(ctx, iter_complete_lines(content, 1), sink)
    return sink, bad, ctx


def parse_native(source: str, content: bytes, path: str):
    """``parse_complete`` (the compiled parser), or ``parse_lines`` where it leaves the file."""
    mod = adapters.load(source)
    sink, bad = new_sink(path)
    ctx = ParseContext(path=path, device="fuzz", state={}, mtime_ms=1786000000000)
    if mod.parse_complete(ctx, content, 1, sink) is None:
        mod.parse_lines(ctx, iter_complete_lines(content, 1), sink)
    return sink, bad, ctx


def assert_same_parse(a: tuple, b: tuple) -> None:
    """Two parses of one input (sink, bad lines, context) gave the same events, counts,
    versions, rejections and state."""
    (sink_a, bad_a, ctx_a), (sink_b, bad_b, ctx_b) = a, b
    assert orjson.dumps(list(sink_a.events.values())) == orjson.dumps(list(sink_b.events.values()))
    assert sink_a.counts() == sink_b.counts()
    assert sink_a.versions == sink_b.versions
    assert bad_a == bad_b
    assert ctx_a.state == ctx_b.state


# ---------------------------------------------------------------- the line adapters
@pytest.mark.parametrize("source", ["claude", "codex"])
@FUZZ
@given(data=st.data())
def test_line_adapters(source, data):
    content = jsonl(data, BASES[source], 16)
    path = "/fuzz/.claude/projects/-home-dev-x/s.jsonl" if source == "claude" else "/fuzz/sessions/2026/08/01/rollout-2026-08-01T00-00-00-0b2aef83-fd9d-41a5-94c4-5c4108ad27a2.jsonl"
    sink, bad, _ctx = parse_lines(source, content, path)
    check_sink(source, sink, bad, non_blank_lines(content))
    # a bulk parse (msgspec's typed decoder) gives exactly what the checked path gives
    assert_same_parse(parse_lines(source, content, path, bulk=True), (sink, bad, _ctx))
    # and so does the compiled parser, wherever it takes the file (scripts/native)
    assert_same_parse(parse_native(source, content, path), (sink, bad, _ctx))
    # resumed at a line boundary, as the parse cache does: the same events and counts
    lines = content.split(b"\n")[:-1]
    cut = data.draw(st.integers(0, len(lines)))
    head = b"".join(line + b"\n" for line in lines[:cut])
    tail = b"".join(line + b"\n" for line in lines[cut:])
    first, _bad1, ctx1 = parse_lines(source, head, path)
    state = orjson.loads(orjson.dumps(ctx1.state))  # through JSON, as the index keeps it
    prior = [orjson.loads(orjson.dumps(ev)) for ev in first.events.values()]
    mod = adapters.load(source)
    second, _bad2 = new_sink(path)
    second.events.update({ev["id"]: ev for ev in prior})
    ctx2 = ParseContext(path=path, device="fuzz", state=state, mtime_ms=1786000000000)
    mod.parse_lines(ctx2, iter_complete_lines(tail, cut + 1), second)
    whole = {k: orjson.loads(orjson.dumps(v)) for k, v in sink.events.items()}
    resumed = {k: orjson.loads(orjson.dumps(v)) for k, v in second.events.items()}
    assert resumed == whole
    a, b = first.counts(), second.counts()
    assert a["records"] + b["records"] == sink.counts()["records"]


# ---------------------------------------------------------------- Cursor: extract and adapter
@FUZZ
@given(data=st.data())
def test_cursor_records(data):
    content = jsonl(data, BASES["cursor"], 14)
    sink, bad = new_sink("/fuzz/raw/cursor.jsonl")
    adapters.load("cursor").parse_content(ParseContext(path="/fuzz/raw/cursor.jsonl", device="fuzz"), content, sink)
    check_sink("cursor", sink, bad, None, at_least=non_blank_lines(content))


@FUZZ
@given(data=st.data())
def test_cursor_extract_rows(data):
    """Database values (TEXT or BLOB, any bytes) -> records -> events: the extract step."""
    from scripts.core.cursor_store import record_from_row

    records = []
    for _ in range(data.draw(st.integers(1, 8))):
        table, key, value = data.draw(st.sampled_from(BASES["cursor_values"]))
        kind = data.draw(st.sampled_from(["same", "mutate", "bytes", "text", "null", "number"]))
        if kind == "mutate":
            raw = value.encode() if isinstance(value, str) else bytes(value)
            try:
                obj = orjson.loads(raw)
                value = dumps(mutate(data, obj))
            except orjson.JSONDecodeError:
                value = raw
            value = mangle(data, value)
            if data.draw(st.booleans()):
                value = value.decode("utf-8", "replace")
        elif kind == "bytes":
            value = data.draw(st.binary(max_size=60))
        elif kind == "text":
            value = data.draw(st.text(max_size=60))
        elif kind == "null":
            value = None
        elif kind == "number":
            value = data.draw(st.integers(-(2**63), 2**63 - 1))
        if data.draw(st.integers(0, 5)) == 0:
            key = data.draw(st.sampled_from(["bubbleId:", "bubbleId:x", "composerData:", "bubbleId:a:b:c"])) + data.draw(st.text(max_size=5))
        rec = record_from_row("/fuzz/state.vscdb", table, key, value)
        assert ("rejected" in rec) != ("value" in rec)
        records.append(orjson.dumps(rec, option=orjson.OPT_SORT_KEYS))
    content = b"\n".join(records) + b"\n"
    sink, bad = new_sink("/fuzz/raw/cursor.jsonl")
    adapters.load("cursor").parse_content(ParseContext(path="/fuzz/raw/cursor.jsonl", device="fuzz"), content, sink)
    check_sink("cursor_extract", sink, bad, None, at_least=len(records))


# ---------------------------------------------------------------- whole-file adapters
def _doc(data, bases):
    raw = data.draw(st.sampled_from(bases))
    obj = orjson.loads(raw)
    for _ in range(data.draw(st.integers(0, 4))):
        obj = mutate(data, obj)
    return mangle(data, dumps(obj))


@FUZZ
@given(data=st.data())
def test_droid(data):
    content = _doc(data, BASES["droid"])
    transcript = jsonl(data, BASES["droid_transcript"], 6) if data.draw(st.booleans()) else None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "-home-dev-projects-x", "7a2b4c6d.settings.json")
        os.makedirs(os.path.dirname(path))
        with open(path, "wb") as fh:
            fh.write(content)
        if transcript is not None:
            with open(path[: -len(".settings.json")] + ".jsonl", "wb") as fh:
                fh.write(transcript)
        sink, bad = new_sink(path)
        adapters.load("droid").parse_file(ParseContext(path=path, device="fuzz", mtime_ms=1786000000000), sink)
    check_sink("droid", sink, bad, 1)


@FUZZ
@given(data=st.data())
def test_opencode_json(data):
    content = _doc(data, BASES["opencode_json"])
    path = "/fuzz/storage/message/ses_x/msg_1.json"
    sink, bad = new_sink(path)
    adapters.load("opencode").parse_content(ParseContext(path=path, device="fuzz"), content, sink)
    check_sink("opencode", sink, bad, 1)


@settings(FUZZ, max_examples=max(100, EXAMPLES // 3))
@given(data=st.data())
def test_opencode_database(data):
    """Rows of a real SQLite database with mutated, binary, NULL and non-text ``data``."""
    rows = []
    for i in range(data.draw(st.integers(0, 8))):
        mid, sid, payload = data.draw(st.sampled_from(BASES["opencode_rows"]))
        kind = data.draw(st.sampled_from(["same", "mutate", "mutate", "blob", "null", "number", "badid", "badsession"]))
        if kind == "badsession":
            sid = data.draw(st.sampled_from([None, 5, b"\xff", ""]))
            payload = dumps(mutate(data, orjson.loads(payload)))
        if kind == "mutate":
            payload = mangle(data, dumps(mutate(data, orjson.loads(payload))))
            payload = payload.decode("utf-8", "replace") if data.draw(st.booleans()) else payload
        elif kind == "blob":
            payload = data.draw(st.binary(max_size=50))
        elif kind == "null":
            payload = None
        elif kind == "number":
            payload = data.draw(st.integers(-5, 5))
        if kind == "badid":
            mid = data.draw(st.sampled_from([None, 7, b"\xff", ""]))
        rows.append((mid if kind == "badid" else f"{mid}-{i}", sid, payload))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "opencode.db")
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE session (id text, directory text, version text)")
        conn.execute("CREATE TABLE message (id, session_id, time_created integer, time_updated integer, data)")
        conn.execute("INSERT INTO session VALUES ('ses_469cf929cffeBICghRNeI7BWy6', '/home/dev/projects/mobile-app', '1.1.36')")
        conn.executemany("INSERT INTO message VALUES (?, ?, 0, 0, ?)", rows)
        conn.commit()
        conn.close()
        sink, bad = new_sink(path)
        adapters.load("opencode").parse_file(ParseContext(path=path, device="fuzz"), sink)
    check_sink("opencode_db", sink, bad, len(rows))


@FUZZ
@given(data=st.data())
def test_gemini(data):
    sink, bad, lines = _parse_jsonl_or_document(data, "gemini", "/fuzz/tmp/web-frontend/chats/session-2026-08-11T16-40-9b7d3e2a.jsonl",
                                                "/fuzz/tmp/web-frontend/chats/session-2026-08-09T10-15-4f2a9c1e.json")
    check_sink("gemini", sink, bad, None, at_least=lines or 0)


@FUZZ
@given(data=st.data())
def test_cliproxy(data):
    sink, bad, lines = _parse_jsonl_or_document(data, "cliproxy", "/fuzz/cliproxy/usage-2026-08-12.jsonl",
                                                "/fuzz/cliproxy/export-2026-08-10T09-00-00Z.json")
    check_sink("cliproxy", sink, bad, lines)


def _parse_jsonl_or_document(data, source: str, jsonl_path: str, document_path: str):
    """A source that writes either JSONL or one JSON document, fuzzed as either; returns
    the sink, the bad lines and (JSONL only, else None) how many non-blank lines it had."""
    if data.draw(st.booleans()):
        content = jsonl(data, BASES[f"{source}_jsonl"], 12)
        path, lines = jsonl_path, non_blank_lines(content)
    else:
        content = _doc(data, BASES[f"{source}_json"])
        path, lines = document_path, None
    sink, bad = new_sink(path)
    adapters.load(source).parse_content(ParseContext(path=path, device="fuzz"), content, sink)
    return sink, bad, lines
