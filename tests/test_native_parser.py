"""The compiled fast path of the Claude Code and Codex parsers (scripts/native/fastparse.c).

It takes a whole file only when it reads it exactly as the Python adapter does; on any
line it does not take, it leaves the sink (and Codex's state) untouched and the Python
adapter parses the file. So every test here is one comparison: the native parse, when it
took the file, equals the Python parse (events byte for byte, counts, versions, state)."""
from __future__ import annotations

import os
import random
import shutil
import sysconfig

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts import adapters, native
from scripts.adapters.base import FileSink, ParseContext, iter_complete_lines, split_complete
from test_adapters_bad_input import SID, TYPED_EDGES, claude_line, codex_token_line, dumps

NATIVE = native.module()
needs_native = pytest.mark.skipif(NATIVE is None, reason="the native parser is not built here")
PATHS = {
    "claude": f"/x/.claude/projects/-home-dev-shop/{SID}.jsonl",
    "codex": f"/x/sessions/2026/08/20/rollout-2026-08-20T10-00-00-{SID}.jsonl",
}
FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")


def test_native_parser_is_built_where_it_can_be():
    """make builds it into .venv wherever there is a C compiler and Python's headers: a CI
    run without it would test the slow path only."""
    if os.environ.get("TOKENTALLY_NATIVE") == "0":
        pytest.skip("turned off with TOKENTALLY_NATIVE=0")
    if shutil.which("cc") and os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")):
        assert NATIVE is not None, "not built, or built from another fastparse.c: run make (python -m scripts.native.build)"


def python_parse(source: str, content: bytes, path: str, state: dict | None = None, prior=()):
    sink = FileSink(path, prior, on_bad=lambda p, where, reason: None)
    ctx = ParseContext(path=path, device="d", state=dict(state or {}), bulk=True)
    adapters.load(source).parse_lines(ctx, iter_complete_lines(content, 1), sink)
    return sink, ctx


def native_parse(source: str, content: bytes, path: str, state: dict | None = None, prior=()):
    """The native parse, or None when it left the file to the Python adapter."""
    sink = FileSink(path, prior, on_bad=lambda p, where, reason: None)
    seeded = list(sink.events.items())
    ctx = ParseContext(path=path, device="d", state=dict(state or {}))
    if adapters.load(source).parse_complete(ctx, content, 1, sink) is None:
        assert list(sink.events.items()) == seeded and not sink.records and not sink.versions and ctx.state == dict(state or {}), "touched before leaving"
        return None
    # a resumed file's earlier calls stay the very objects seeded, unless replaced
    assert all(sink.events[i] is ev for i, ev in seeded if sink.events[i]["total_tokens"] == ev["total_tokens"])
    return sink, ctx


def outcome(parsed) -> tuple:
    sink, ctx = parsed
    return (orjson.dumps(list(sink.events.values())), list(sink.events), sink.counts(), list(sink.versions.items()), list(ctx.state.items()))


def same(source: str, content: bytes, path: str | None = None, state: dict | None = None, prior=()) -> bool:
    """Native and Python agree; True when the native parse took the file."""
    path = path or PATHS[source]
    got = native_parse(source, content, path, state, prior)
    if got is None:
        return False
    assert outcome(got) == outcome(python_parse(source, content, path, state, prior))
    return True


def jsonl(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def codex_meta(**payload) -> bytes:
    return dumps({"timestamp": "2026-08-20T10:00:00.000Z", "type": "session_meta", "payload": {"id": SID, "cwd": "/p/x", "cli_version": "0.98.0", **payload}})


def codex_turn(model="gpt-5.2-codex", cwd="/p/x") -> bytes:
    return dumps({"timestamp": "2026-08-20T10:00:01.000Z", "type": "turn_context", "payload": {"cwd": cwd, "model": model}})


# ------------------------------------------------------------------ what it takes
TAKEN = {
    "claude": {
        "snapshots, adjacent and not": [claude_line("a1", out=1), claude_line("a1", out=30), claude_line("a2"), claude_line("a1", out=20), claude_line("a1", out=40)],
        "user lines, blank lines, not calls": [b'{"type":"user","message":{"role":"user","content":"hi"}}', b"", b"  ", claude_line("z", out=0, inp=0),
                                              claude_line("s").replace(b'"claude-sonnet-4-5"', b'"<synthetic>"'), claude_line("e", isApiErrorMessage=True),
                                              claude_line("e2", isApiErrorMessage="yes"), b'{"message":null,"usage":1}', b'{"message":{"usage":null}}'],
        "ids without requestId, message id or either": [claude_line("r", requestId=None), claude_line("u").replace(b'"id":"msg_u",', b""),
                                                         claude_line("v").replace(b'"id":"msg_v",', b"").replace(b'"uuid":"uv",', b"")],
        "fallback session, project and model": [claude_line("f", sessionId=None, cwd=None), claude_line("g", sessionId=""),
                                                claude_line("h").replace(b'"model":"claude-sonnet-4-5",', b""), claude_line("i").replace(b'"claude-sonnet-4-5"', b'""')],
        "space around a usage line": [b" " + claude_line("w1") + b"\r", b"\t" + claude_line("w2") + b" "],
        "versions": [claude_line("v1", version="2.0.14"), claude_line("v2", version=""), claude_line("v3", version=None), claude_line("v4", version="2.0.14")],
        "cache creation": [claude_line("c1").replace(b'"cache_creation_input_tokens":0', b'"cache_creation":{"ephemeral_1h_input_tokens":7,"ephemeral_5m_input_tokens":3}'),
                           claude_line("c2").replace(b'"cache_creation_input_tokens":0', b'"cache_creation_input_tokens":null,"cache_creation":{"ephemeral_1h_input_tokens":9}'),
                           claude_line("c3").replace(b'"cache_creation_input_tokens":0', b'"cache_creation_input_tokens":4,"cache_creation":{"ephemeral_1h_input_tokens":9}')],
        "text with escapes and UTF-8, skipped": [claude_line("t1").replace(b'"role"', b'"text":"caf\xc3\xa9 \\"q\\" \\\\ \\u00e9 \\ud83d\\ude00 \xf0\x9f\x98\x80","role"'),
                                                 claude_line("t2").replace(b'"/p/x"', b'"/home/d\xc3\xa9v/caf\xc3\xa9"'),
                                                 claude_line("t4", cwd="C:\\Users\\dev\\caf\u00e9 \U0001f600", sessionId="s\t1"),
                                                 claude_line("t3").replace(b'"role"', b'"n":[1,-2.5e-3,0,{"a":[true,false,null]}],"role"')],
        "leap day and the last millisecond of a year": [claude_line("d1", timestamp="2028-02-29T23:59:59.999Z"), claude_line("d2", timestamp="2026-12-31T23:59:59.999Z")],
    },
    "codex": {
        "a session": [codex_meta(), codex_turn(), codex_token_line(100, 10), codex_token_line(100, 10), codex_token_line(250, 30),
                      dumps({"timestamp": "2026-08-20T10:00:06.000Z", "type": "event_msg", "payload": {"type": "token_count", "info": None}}),
                      codex_token_line(50, 5), codex_turn(model="gpt-5.1"), codex_token_line(80, 9)],
        "no turn context: the model inferred": [codex_meta(), codex_token_line(100, 10)],
        "no session meta": [codex_token_line(100, 10), codex_turn(), codex_token_line(200, 20)],
        "last usage only, then totals": [dumps({"timestamp": "2026-08-20T10:00:05.000Z", "type": "event_msg", "payload": {"type": "token_count", "info": {"last_token_usage": {"input_tokens": 9, "cached_input_tokens": 1, "output_tokens": 2, "reasoning_output_tokens": 1}}}}),
                                         codex_token_line(100, 10)],
        "a fork replays its parent": [codex_meta(forked_from_id="parent-1", timestamp="2026-08-20T09:00:00.000Z"),
                                      codex_token_line(100, 10, ts="2026-08-20T10:00:00.500Z"), codex_token_line(150, 12, ts="2026-08-20T10:00:00.900Z"),
                                      codex_token_line(300, 40, ts="2026-08-20T10:05:00.000Z")],
        "a fork dated by its payload": [dumps({"type": "session_meta", "payload": {"id": SID, "forked_from_id": "p", "timestamp": "2026-08-20T10:00:00.000Z"}}),
                                        codex_token_line(100, 10, ts="2026-08-20T10:00:00.000Z"), codex_token_line(120, 11)],
        "other records and shapes": [b'{"timestamp":"2026-08-20T10:00:00.000Z","type":"response_item","payload":{"type":"message","content":"token_count"}}',
                                     dumps({"type": "other", "payload": {"type": "token_count", "info": None}}), dumps({"type": "event_msg", "payload": "token_count"}),
                                     dumps({"type": 5, "payload": {"type": "token_count"}}), dumps({"type": "turn_context", "payload": {"model": 5, "cwd": ""}}),
                                     codex_meta(cli_version=""), codex_meta(cli_version=None, source="cli"), b""],
        "a reasoning-heavy call": [codex_meta(), codex_turn(), dumps({"timestamp": "2026-08-20T10:00:05.000Z", "type": "event_msg", "payload": {"type": "token_count", "info": {"total_token_usage": {"input_tokens": 10, "cached_input_tokens": 10, "output_tokens": 7, "reasoning_output_tokens": 7}}}})],
    },
}


@needs_native
@pytest.mark.parametrize("source,case", [(s, c) for s in sorted(TAKEN) for c in TAKEN[s]])
def test_taken_and_read_as_python_reads_it(source, case):
    assert same(source, jsonl(*TAKEN[source][case])), "left to the Python adapter"


@needs_native
@pytest.mark.parametrize("source", ["claude", "codex"])
def test_fixtures_taken_whole(source):
    a = adapters.load(source)
    files = list(a.discover([os.path.join(FIXTURES, source)]))
    assert files
    for path in files:
        with open(path, "rb") as fh:
            complete, _partial = split_complete(fh.read())
        assert same(source, complete, path), path


# ------------------------------------------------------------------ what it leaves
LEFT = {
    "claude": [
        claude_line("k").replace(b'"claude-sonnet-4-5"', b'"\\u003csynthetic>"'),  # an escape in a string compared
        claude_line("k2").replace(b'"sessionId"', b'"session\\u0049d"'),  # an escaped key
        claude_line("k3").replace(b'"output_tokens":10', b'"output_tokens":10,"output_tokens":99'),  # a key twice
        claude_line("k6", timestamp="2026-08-20T10:00:00Z"),  # not canonical: normalized by Python
        claude_line("k7", timestamp="2026-02-30T10:00:00.000Z"),
        claude_line("k8", sessionId=7),
        claude_line("k9", inp=None),
        claude_line("k10").replace(b'"role"', b'"text":"\\ud800","role"'),  # a lone surrogate escape
        b"not json",
    ],
    "codex": [
        codex_meta(source={"subagent": {"thread_spawn": {"parent": "x"}}}),
        codex_meta(forked_from_id=7),
        codex_token_line(100, 10, ts="2026-08-20T10:00:05Z"),
        codex_token_line(100, 10).replace(b'"cached_input_tokens":0', b'"cached_input_tokens":500'),  # a rejection
        dumps({"timestamp": "2026-08-20T10:00:09.000Z", "type": "event_msg", "payload": {"type": "token_count", "info": {}}}),
        codex_token_line(100, 10).replace(b'"event_msg"', b'"event\\u005fmsg"'),  # an escape in a string compared
    ],
}


@needs_native
@pytest.mark.parametrize("source", sorted(LEFT))
def test_left_to_the_python_adapter(source):
    good = TAKEN[source]["a session"] if source == "codex" else TAKEN[source]["snapshots, adjacent and not"]
    for line in LEFT[source]:
        assert not same(source, jsonl(*good, line)), line


@needs_native
@pytest.mark.parametrize("source", sorted(TYPED_EDGES))
def test_edges_one_at_a_time(source):
    """Each of the typed decoders' edge lines after good ones: taken or left, never read
    another way."""
    good = TAKEN[source]["a session"] if source == "codex" else TAKEN[source]["snapshots, adjacent and not"]
    for line in TYPED_EDGES[source]:
        same(source, jsonl(*good, line))


@needs_native
@pytest.mark.parametrize("source", ["claude", "codex"])
def test_a_resumed_file_starts_from_its_earlier_calls_and_state(source):
    """Read on from a byte offset, as the parse cache does: the sink holds the earlier
    calls (as the cache seeds them: id and total), Codex's state its running totals."""
    lines = TAKEN["codex"]["a session"] if source == "codex" else TAKEN["claude"]["snapshots, adjacent and not"] + [claude_line("a2", out=99)]
    for cut in range(len(lines) + 1):
        head, tail = jsonl(*lines[:cut]), jsonl(*lines[cut:])
        sink, ctx = python_parse(source, head, PATHS[source])
        state = orjson.loads(orjson.dumps(ctx.state))
        prior = [{"id": i, "total_tokens": ev["total_tokens"]} for i, ev in sink.events.items()]
        assert same(source, tail, state=state, prior=prior)


# ------------------------------------------------------------------ mutations
PALETTE = [b'"', b"\\", b"{", b"}", b"[", b"]", b":", b",", b"0", b"9", b"-", b"e", b".", b" ", b"n", b"t", b"\xc3", b"\xa9", b"\xff", b"\x00", b"\\u", b"null", b"1e999"]


@needs_native
@pytest.mark.parametrize("source", ["claude", "codex"])
@settings(max_examples=int(os.environ.get("NATIVE_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), edits=st.integers(1, 4))
def test_mutated_lines(source, seed, edits):
    """Bytes inserted, deleted or replaced anywhere in good lines: whatever the native
    parse takes, it reads as the Python adapter does."""
    rnd = random.Random(seed)
    cases = TAKEN[source]
    lines = list(cases[rnd.choice(sorted(cases))])
    for _ in range(edits):
        i = rnd.randrange(len(lines))
        line = lines[i]
        at = rnd.randrange(len(line) + 1)
        op = rnd.random()
        if op < 0.4:
            line = line[:at] + rnd.choice(PALETTE) + line[at:]
        elif op < 0.7:
            line = line[:at] + line[at + rnd.randint(1, 3):]
        else:
            line = line[:at] + rnd.choice(PALETTE) + line[at + 1:]
        lines[i] = line.replace(b"\n", b"")
    same(source, jsonl(*lines))


# ------------------------------------------------------------------ rollup and days
def _python_by_day(events, roll):
    from scripts.core import event_cache

    module = native.module
    native.module = lambda: None
    try:
        return event_cache._by_day(events, roll)
    finally:
        native.module = module


@needs_native
def test_rollup_and_days_as_python_makes_them():
    """A file's events into days and the slot rollup: the compiled loop gives the rows and
    the day lists (same events, same order) that Rollup.add_event gives."""
    from scripts.core import event_cache
    from scripts.core.event import make_event, usage
    from scripts.core.rollup import Rollup

    events = []
    for source in ("claude", "codex"):
        for path in adapters.load(source).discover([os.path.join(FIXTURES, source)]):
            with open(path, "rb") as fh:
                complete, _partial = split_complete(fh.read())
            sink, _ctx = python_parse(source, complete, path)
            events += list(sink.events.values())
    for i, (prompt, ts, device, project) in enumerate([
        (100_000, "2026-08-20T10:14:59.999Z", "", None), (100_001, "2026-08-20T10:15:00.000Z", None, "p"),
        (200_001, "2026-08-20T10:29:59.999Z", "laptop", "p"), (272_001, "2028-02-29T23:59:59.999Z", "laptop", ""),
        (5, "1970-01-01T00:00:00.001Z", "", "p"), (5, "2999-12-31T23:59:59.999Z", "", "p"),
    ]):
        ev = make_event(provider="claude", event_id=f"e{i}", raw_model="m", session_id="s", timestamp=ts, project=project,
                        usage_counts=usage(input_tokens=prompt, output_tokens=3), source_file="f", source_line=i, adapter_version="1")
        if device is None:
            del ev["device"]
        events.append(ev)
    for batch in (events, events[:1], [], events[::-1]):
        fast_roll, slow_roll = Rollup(), Rollup()
        fast = event_cache._by_day(batch, fast_roll)
        slow = _python_by_day(batch, slow_roll)
        assert fast_roll.rows() == slow_roll.rows()
        assert {d: [id(e) for e in evs] for d, evs in fast.items()} == {d: [id(e) for e in evs] for d, evs in slow.items()}
    # added to rows already there (a resumed file), the same sums
    fast_roll, slow_roll = Rollup(), Rollup()
    for roll in (fast_roll, slow_roll):
        roll.add_rows(_rows_of(events[:3]))
    event_cache._by_day(events, fast_roll)
    _python_by_day(events, slow_roll)
    assert fast_roll.rows() == slow_roll.rows()


def _rows_of(events):
    from scripts.core.rollup import rollup_events

    return rollup_events(events)


@needs_native
def test_rollup_leaves_an_odd_event_to_python():
    from scripts.core.event import make_event, usage

    ev = make_event(provider="claude", event_id="x", raw_model="m", session_id="s", timestamp="2026-08-20T10:00:00Z", project=None,
                    usage_counts=usage(input_tokens=1), source_file="f", source_line=1, adapter_version="1")
    assert NATIVE.rollup_by_day([ev], (100_000, 200_000, 272_000), 900_000) is None


# ------------------------------------------------------------------ event lines and id hashes
def _without_native(fn, *args):
    module = native.module
    native.module = lambda: None
    try:
        return fn(*args)
    finally:
        native.module = module


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from('"\\\x00\x01\x1f\x7f\b\t\n\f\r/é\u2028😀'), max_size=40)
SCALAR = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | TEXT
EVENT = st.dictionaries(TEXT, SCALAR | st.dictionaries(TEXT, SCALAR, max_size=8), max_size=20)


@needs_native
@settings(max_examples=int(os.environ.get("NATIVE_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=list(HealthCheck))
@given(events=st.lists(EVENT, max_size=6), ids=st.lists(TEXT, max_size=6))
def test_event_lines_and_hashes_as_orjson_and_hashlib_make_them(events, ids):
    from scripts.core.event_cache import event_lines, id_hashes

    assert event_lines(events) == _without_native(event_lines, events)
    assert id_hashes(ids) == _without_native(id_hashes, ids)


@needs_native
def test_event_lines_of_the_fixtures_and_what_the_writer_leaves():
    from scripts.core.event_cache import event_lines, id_hashes

    events = []
    for source in ("claude", "codex"):
        for path in adapters.load(source).discover([os.path.join(FIXTURES, source)]):
            with open(path, "rb") as fh:
                events += list(python_parse(source, split_complete(fh.read())[0], path)[0].events.values())
    assert events and event_lines(events) == _without_native(event_lines, events)
    assert id_hashes([ev["id"] for ev in events]) == _without_native(id_hashes, [ev["id"] for ev in events])
    # a float, a list, a big int, a lone surrogate: left to orjson, the same bytes
    for odd in ({"a": 1.5}, {"a": [{"b": 1}, {"c": 2}]}, {"a": 2**64 - 1}, {"a": "\udc80x"}, {"\udc80": 1}):
        assert NATIVE.events_jsonl([odd]) is None
        if odd != {"a": "\udc80x"} and odd != {"\udc80": 1}:  # orjson refuses those too
            assert event_lines([odd, {"x": 1}]) == _without_native(event_lines, [odd, {"x": 1}])
    assert NATIVE.id_hashes(["a\udc80"]) is None
    assert id_hashes(["a\udc80", "b"]) == _without_native(id_hashes, ["a\udc80", "b"])


def test_a_build_of_another_source_is_not_used(tmp_path):
    """A build left from another version of fastparse.c (the source changed, make not run
    since) would read by other rules: native.module() ignores it, and the Python
    adapters parse everything."""
    import subprocess
    import sys

    from scripts.native.build import build

    if shutil.which("cc") is None or not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")):
        pytest.skip("no C compiler here")
    other = tmp_path / "fastparse.c"
    with open(native.SOURCE) as fh:
        other.write_text(fh.read() + "\n/* another version */\n")
    assert build(str(tmp_path), source=str(other))
    code = "from scripts import native; m = native.module(); print(m is None, native.source_hash() != __import__('tokentally_fastparse').SOURCE_HASH)"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{root}"},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True"]
