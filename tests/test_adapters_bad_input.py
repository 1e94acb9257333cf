"""Bad input, source by source: each bad record is counted with a reason and reported as
file:line (or row key), good records around it still count, and STRICT=1 stops at the
first one with a single line. A cut-short last line is not an error: a later run reads it
once it is complete."""
from __future__ import annotations

import json
import os
import sqlite3

import orjson
import pytest

from conftest import PYTHON, event_bytes, run_cmd
from scripts import adapters

SID = "0a0b0c0d-1111-4222-8333-444455556666"


def dumps(o) -> bytes:
    return json.dumps(o, separators=(",", ":")).encode()


def write(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


# ------------------------------------------------------------------ per-source bad data
def claude_line(mid, out=10, inp=5, **extra):
    d = {"type": "assistant", "sessionId": SID, "cwd": "/p/x", "version": "2.1.97", "timestamp": "2026-08-20T10:00:00.000Z",
         "requestId": f"req_{mid}", "uuid": f"u{mid}",
         "message": {"id": f"msg_{mid}", "model": "claude-sonnet-4-5", "role": "assistant",
                     "usage": {"input_tokens": inp, "output_tokens": out, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}}
    d.update(extra)
    return dumps(d)


def bad_claude(root):
    path = os.path.join(root, "projects", "-p-x", f"{SID}.jsonl")
    lines = [
        claude_line("ok1"),
        b'{"type":"assistant","message":{"usage":{"input_tokens":5',           # 2 malformed
        claude_line("t", out="12"),                                               # 3 wrong type
        claude_line("n", out=-4),                                                 # 4 negative
        claude_line("a", inp=1 << 50),                                            # 5 absurd
        b'{"type":"x-new-record","payload":{"a":1}}',                             # 6 unknown type: not a call
        b'{"type":"assistant","message":{"id":"m","usage":{"input_tokens":1}},"cwd":"caf\xe9"}',  # 7 invalid UTF-8
        b"[1,2,3]",                                                               # 8 not an object
        claude_line("ok2", timestamp="yesterday"),                               # 9 bad timestamp
        claude_line("ok3"),
    ]
    write(path, b"\n".join(lines) + b"\n")
    rejected = {"malformed JSON": 1, "wrong type": 1, "negative output_tokens": 1, "absurd input_tokens": 1,
                "invalid UTF-8": 1, "not a JSON object": 1, "bad timestamp": 1}
    return path, rejected, 2, [2, 3, 4, 5, 7, 8, 9]


def codex_tc(total, ts="2026-08-20T10:00:00.000Z"):
    t = dict(zip(("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens"), total))
    return dumps({"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": {"total_token_usage": t, "last_token_usage": t}}})


def bad_codex(root):
    path = os.path.join(root, "sessions", "2026", "08", "20", f"rollout-2026-08-20T10-00-00-{SID}.jsonl")
    lines = [
        dumps({"timestamp": "2026-08-20T10:00:00.000Z", "type": "session_meta", "payload": {"id": SID, "cwd": "/p/x", "cli_version": "0.98.0"}}),
        dumps({"timestamp": "2026-08-20T10:00:00.000Z", "type": "turn_context", "payload": {"model": "gpt-5-codex"}}),
        codex_tc((100, 0, 10, 0)),
        b'{"timestamp":"2026-08-20T10:00:01.000Z","type":"event_msg","payload":{"type":"token_count","info":{"total',  # 4 malformed
        codex_tc((200, 0, "20", 0)),                                              # 5 wrong type
        dumps({"timestamp": "x", "type": "event_msg", "payload": {"type": "token_count", "info": "nope"}}),  # 6 wrong type
        codex_tc((300, 400, 30, 0)),                                              # 7 cached > input
        dumps({"timestamp": "2026-08-20T10:00:02.000Z", "type": "future_kind", "payload": {"x": 1}}),  # 8 unknown: not a call
        b'{"timestamp":"2026-08-20T10:00:03.000Z","type":"event_msg","payload":{"type":"token_count","note":"\xff"}}',  # 9 invalid UTF-8
        codex_tc((1 << 50, 0, 40, 0)),                                            # 10 absurd
        codex_tc((500, 0, 50, 0)),
    ]
    write(path, b"\n".join(lines) + b"\n")
    rejected = {"malformed JSON": 1, "wrong type": 2, "cached_input_tokens exceed input_tokens": 1, "invalid UTF-8": 1, "absurd input_tokens": 1}
    return path, rejected, 2, [4, 5, 6, 7, 9, 10]


def bad_droid(root):
    base = os.path.join(root, "sessions", "-p-x")
    good = {"model": "claude-sonnet-4-5", "providerLockTimestamp": "2026-08-20T10:00:00.000Z",
            "tokenUsage": {"inputTokens": 10, "outputTokens": 5, "cacheCreationTokens": 0, "cacheReadTokens": 0, "thinkingTokens": 0}}
    write(os.path.join(base, "good.settings.json"), dumps(good))
    write(os.path.join(base, "trunc.settings.json"), dumps(good)[:40])
    write(os.path.join(base, "type.settings.json"), dumps(dict(good, tokenUsage={"inputTokens": "10"})))
    write(os.path.join(base, "neg.settings.json"), dumps(dict(good, tokenUsage={"inputTokens": -10})))
    write(os.path.join(base, "utf.settings.json"), dumps(good).replace(b"claude", b"cl\xffude"))
    write(os.path.join(base, "ts.settings.json"), dumps(dict(good, providerLockTimestamp="soon")))
    rejected = {"malformed JSON": 1, "wrong type": 1, "negative input_tokens": 1, "invalid UTF-8": 1, "bad timestamp": 1}
    return base, rejected, 1, None


def oc_msg(mid, tokens, role="assistant", created=1787220000000):
    return {"id": mid, "sessionID": "ses_x", "role": role, "time": {"created": created}, "modelID": "gpt-5", "providerID": "openai", "tokens": tokens}


def bad_opencode(root):
    msgdir = os.path.join(root, "storage", "message", "ses_x")
    good = {"input": 10, "output": 5, "reasoning": 0, "cache": {"read": 0, "write": 0}}
    write(os.path.join(msgdir, "msg_1.json"), dumps(oc_msg("msg_1", good)))
    write(os.path.join(msgdir, "msg_2.json"), dumps(oc_msg("msg_2", good))[:30])
    write(os.path.join(msgdir, "msg_3.json"), dumps(oc_msg("msg_3", {"input": "10"})))
    write(os.path.join(msgdir, "msg_4.json"), dumps(oc_msg("msg_4", {"input": 10, "cache": [1]})))
    conn = sqlite3.connect(os.path.join(root, "opencode.db"))
    conn.execute("CREATE TABLE message (id text PRIMARY KEY, session_id text, time_created integer, time_updated integer, data text)")
    for mid, data in (("msg_5", dumps(oc_msg("msg_5", good))), ("msg_6", b'{"role":"assistant","tokens":'),
                      ("msg_7", dumps(oc_msg("msg_7", dict(good, output=-1)))), ("msg_8", dumps(oc_msg("msg_8", good, created="later")))):
        conn.execute("INSERT INTO message VALUES (?, 'ses_x', 0, 0, ?)", (mid, data.decode()))
    conn.commit()
    conn.close()
    write(os.path.join(root, "opencode-broken.db"), b"SQLite format 3\x00" + b"\x00garbage" * 100)
    rejected = {"malformed JSON": 2, "wrong type": 2, "negative output_tokens": 1, "bad timestamp": 1, "not a readable SQLite database": 1}
    return root, rejected, 2, None


def gem_msg(mid, tokens, typ="gemini"):
    return {"id": mid, "timestamp": "2026-08-20T10:00:00.000Z", "type": typ, "content": "x", "model": "gemini-2.5-pro", "tokens": tokens}


def bad_gemini(root):
    chats = os.path.join(root, "tmp", "proj", "chats")
    good = {"input": 100, "output": 10, "cached": 20, "thoughts": 0, "tool": 0}
    write(os.path.join(chats, "session-a.json"), dumps({"sessionId": "sa", "messages": [gem_msg("m1", good), gem_msg("m2", {"input": "1"}), "oops",
                                                                                          gem_msg("m3", dict(good, cached=500))]}))
    write(os.path.join(chats, "session-b.json"), b'{"sessionId":"sb","messages":[{"id":')
    lines = [dumps({"sessionId": "sc"}), dumps(gem_msg("m1", good)), b'{"id":"m2","type":"gemini","tok', dumps(gem_msg("m3", dict(good, output=-3))),
             dumps({"$unknownOp": 1}), b'{"id":"m4","type":"gemini","content":"\xff"}', dumps(gem_msg("m5", good))]
    write(os.path.join(chats, "session-c.jsonl"), b"\n".join(lines) + b"\n")
    rejected = {"wrong type": 2, "cached tokens exceed input tokens": 1, "malformed JSON": 2, "negative output_tokens": 1, "invalid UTF-8": 1}
    return root, rejected, 3, None


def bad_cliproxy(root):
    good = {"timestamp": "2026-08-20T10:00:00Z", "model": "gpt-5", "request_id": "r1", "api_key": "k",
            "tokens": {"input_tokens": 100, "output_tokens": 10, "cached_tokens": 0}}
    lines = [dumps(good), b'{"timestamp":"2026-08-20T10:00:00Z","tokens":{', dumps(dict(good, request_id="r2", tokens={"input_tokens": "1"})),
             dumps(dict(good, request_id="r3", tokens={"input_tokens": 5, "cached_tokens": 9})),
             dumps(dict(good, request_id="r4", token_breakdown={"input": {"uncached_tokens": -5}, "output": {}})),
             dumps({"kind": "heartbeat"}), b'{"request_id":"r5","tokens":{},"note":"\xfe"}', dumps(dict(good, request_id="r6"))]
    write(os.path.join(root, "usage-2026-08-20.jsonl"), b"\n".join(lines) + b"\n")
    write(os.path.join(root, "export-broken.json"), b'{"version":1,"usage":{"apis":{"k":{"models":{"m":{"details":[')
    write(os.path.join(root, "export-types.json"), dumps({"version": 1, "usage": {"apis": {"k": {"models": {"m": {"details": [{"timestamp": "2026-08-20T10:00:00Z", "tokens": 5}]}}}}}}))
    rejected = {"malformed JSON": 2, "wrong type": 2, "cached tokens exceed input tokens": 1, "negative input_tokens": 1, "invalid UTF-8": 1}
    return root, rejected, 2, None


BAD = {"claude": bad_claude, "codex": bad_codex, "droid": bad_droid, "opencode": bad_opencode, "gemini": bad_gemini, "cliproxy": bad_cliproxy}


def run_bundle(tmp_path, source, env_value, strict=False, check=True):
    mod = adapters.load(source)
    env = {"HOME": str(tmp_path / "home"), mod.ENV_VAR: str(env_value)}
    if strict:
        env["STRICT"] = "1"
    art = tmp_path / "art"
    proc = run_cmd([PYTHON, "-m", "scripts.normalize", "--bundle", "--source", source, "--artifacts", str(art)], env=env, check=check)
    return proc, art


@pytest.mark.parametrize("source", sorted(BAD))
def test_bad_input_is_counted_reported_and_skipped(tmp_path, source):
    root = tmp_path / "data"
    where, rejected, n_events, bad_lines = BAD[source](str(root))
    env_value = root / "sessions" if source == "droid" else root
    proc, art = run_bundle(tmp_path, source, env_value)
    err = proc.stderr.decode()
    assert "Traceback" not in err
    frag = json.loads((art / "runs" / ".current" / "normalize.json").read_text())["sources"][source]
    assert frag["rejected_by_reason"] == rejected
    assert frag["events"] == n_events
    assert frag["balanced"] is True
    reported = [line for line in err.splitlines() if line.strip()]
    assert len(reported) == sum(rejected.values()), err
    for line in reported:
        assert line.startswith(str(root)), line  # file (and line or row key) first
    if bad_lines:  # a line file: the exact line numbers
        assert sorted(int(line.split(":")[1]) for line in reported) == bad_lines
    # STRICT: the first bad record is fatal, one line, no half-written artifact
    proc2, art2 = run_bundle(tmp_path / "strict", source, env_value, strict=True, check=False)
    lines = proc2.stderr.decode().strip().splitlines()
    assert proc2.returncode == 1 and len(lines) == 1 and lines[0].startswith("Error: " + str(root)), lines
    assert not list((art2 / "events").rglob("*.jsonl"))


@pytest.mark.parametrize("source", ["droid", "gemini", "cliproxy", "opencode"])
def test_an_unreadable_file_is_a_counted_rejection(tmp_path, source, monkeypatch):
    from scripts.adapters.base import FileSink, ParseContext

    root = tmp_path / "data"
    BAD[source](str(root))
    mod = adapters.load(source)
    files = [f for f in mod.discover(mod.roots_from_env(str(root / "sessions" if source == "droid" else root))) if not f.endswith(".db")]
    target = files[0]
    real_open = open

    def deny(path, *a, **k):
        if str(path) == target:
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", deny)
    bad = []
    sink = FileSink(target, on_bad=lambda p, w, r: bad.append((p, w, r)))
    mod.parse_file(ParseContext(path=target), sink)
    assert sink.records == 1 and sink.rejected == {"unreadable file": 1}
    assert bad == [(target, "file", "unreadable file (Permission denied)")]


def test_a_locked_opencode_database_is_a_counted_rejection(tmp_path):
    from scripts.adapters import opencode
    from scripts.adapters.base import FileSink, ParseContext

    db = tmp_path / "opencode.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE message (id text, session_id text, data text)")
    conn.commit()
    conn.execute("BEGIN EXCLUSIVE")
    sink = FileSink(str(db))
    import scripts.core.cursor_store as store

    real = store.connect_readonly
    opencode_connect = lambda path, timeout=2.0: real(path, 0.1)  # noqa: E731
    store.connect_readonly = opencode_connect
    try:
        opencode.parse_file(ParseContext(path=str(db)), sink)
    finally:
        store.connect_readonly = real
        conn.rollback()
        conn.close()
    assert sink.rejected == {"database is locked": 1} and sink.records == 1


# ------------------------------------------------------------------ cut-short last lines
PARTIAL = {
    "claude": lambda root: os.path.join(root, "projects", "-p-x", f"{SID}.jsonl"),
    "codex": lambda root: os.path.join(root, "sessions", "2026", "08", "20", f"rollout-2026-08-20T10-00-00-{SID}.jsonl"),
    "gemini": lambda root: os.path.join(root, "tmp", "proj", "chats", "session-z.jsonl"),
    "cliproxy": lambda root: os.path.join(root, "usage-2026-08-20.jsonl"),
}


# enough lines that appending leaves the file's first 4 KiB (its identity for the cache) alone
FILLER = [dumps({"type": "user", "uuid": f"f{i}", "message": {"role": "user", "content": "x" * 80}}) for i in range(60)]


def partial_lines(source):
    if source == "claude":
        return FILLER + [claude_line("a"), claude_line("b", out=40)]
    if source == "codex":
        return [dumps({"timestamp": "2026-08-20T10:00:00.000Z", "type": "session_meta", "payload": {"id": SID, "cli_version": "0.98.0"}})] + FILLER + [
            codex_tc((100, 0, 10, 0)), codex_tc((300, 0, 30, 0))]
    if source == "gemini":
        return [dumps({"sessionId": "sz"}), dumps(gem_msg("m1", {"input": 10, "output": 1})), dumps(gem_msg("m2", {"input": 20, "output": 2}))]
    return [dumps({"timestamp": "2026-08-20T10:00:00Z", "model": "m", "request_id": f"r{i}", "tokens": {"input_tokens": 10 * i, "output_tokens": i}}) for i in (1, 2)]


@pytest.mark.parametrize("source", sorted(PARTIAL))
def test_a_cut_short_last_line_is_read_once_complete(tmp_path, source):
    root = tmp_path / "data"
    path = PARTIAL[source](str(root))
    lines = partial_lines(source)
    complete, last = b"".join(line + b"\n" for line in lines[:-1]), lines[-1]
    write(path, complete + last[: len(last) // 2])
    proc, art = run_bundle(tmp_path, source, root)
    frag = json.loads((art / "runs" / ".current" / "normalize.json").read_text())["sources"][source]
    assert frag["rejected"] == 0 and proc.stderr == b""
    events_before = frag["events"]
    with open(path, "ab") as fh:  # the tool finishes writing the line
        fh.write(last[len(last) // 2:] + b"\n")
    proc, art = run_bundle(tmp_path, source, root)
    frag = json.loads((art / "runs" / ".current" / "normalize.json").read_text())["sources"][source]
    assert frag["rejected"] == 0 and proc.stderr == b""
    assert frag["events"] == events_before + 1
    assert frag["records"] == len(lines)
    if adapters.load(source).resumable:
        assert frag["cache"]["resumed"] == 1


def test_a_droid_session_snapshot_replaces_the_earlier_one(tmp_path):
    root = tmp_path / "sessions"
    path = os.path.join(root, "-p-x", f"{SID}.settings.json")
    snap = {"model": "gpt-5", "providerLockTimestamp": "2026-08-20T10:00:00.000Z",
            "tokenUsage": {"inputTokens": 100, "outputTokens": 10, "cacheCreationTokens": 0, "cacheReadTokens": 1000, "thinkingTokens": 0}}
    write(path, dumps(snap))
    run_bundle(tmp_path, "droid", root)
    snap["tokenUsage"] = {"inputTokens": 250, "outputTokens": 40, "cacheCreationTokens": 0, "cacheReadTokens": 5000, "thinkingTokens": 5}
    write(path, dumps(snap))
    os.utime(path, (1, 1))  # a different mtime, as a rewrite gives
    _, art = run_bundle(tmp_path, "droid", root)
    events = [orjson.loads(x) for x in event_bytes(art, "droid").splitlines()]
    assert len(events) == 1
    assert events[0]["usage"]["input_tokens"] == 250 and events[0]["usage"]["output_tokens"] == 45


def newer_data(source, root):
    if source == "claude":
        write(os.path.join(root, "projects", "-p-x", f"{SID}.jsonl"), claude_line("v", version="9.0.0") + b"\n")
        return "9.0.0"
    if source == "codex":
        write(PARTIAL["codex"](root), dumps({"timestamp": "2026-08-20T10:00:00.000Z", "type": "session_meta", "payload": {"id": SID, "cli_version": "9.9.9"}}) + b"\n"
              + codex_tc((100, 0, 10, 0)) + b"\n")
        return "9.9.9"
    if source == "droid":
        base = os.path.join(root, "sessions", "-p-x")
        write(os.path.join(base, "s1.settings.json"), dumps({"model": "gpt-5", "providerLockTimestamp": "2026-08-20T10:00:00.000Z", "tokenUsage": {"inputTokens": 5}}))
        write(os.path.join(base, "s1.jsonl"), dumps({"type": "session_start", "id": "s1", "version": 3, "cwd": "/p/x"}) + b"\n")
        return "3"
    if source == "opencode":
        write(os.path.join(root, "storage", "session", "proj", "ses_x.json"), dumps({"id": "ses_x", "directory": "/p/x", "version": "9.1.0"}))
        write(os.path.join(root, "storage", "message", "ses_x", "msg_1.json"), dumps(oc_msg("msg_1", {"input": 5, "output": 1})))
        return "9.1.0"
    write(os.path.join(root, "usage-2026-08-20.jsonl"), dumps({"timestamp": "2026-08-20T10:00:00Z", "model": "gpt-5", "request_id": "r1", "accounting_version": 3,
                                                              "token_breakdown": {"input": {"uncached_tokens": 5}, "output": {"total_tokens": 1}}}) + b"\n")
    return "3"


@pytest.mark.parametrize("source", ["claude", "codex", "droid", "opencode", "cliproxy"])
def test_a_source_version_newer_than_the_fixtures_is_flagged(tmp_path, source):
    root = tmp_path / "data"
    version = newer_data(source, str(root))
    _, art = run_bundle(tmp_path, source, root / "sessions" if source == "droid" else root)
    frag = json.loads((art / "runs" / ".current" / "normalize.json").read_text())["sources"][source]
    assert frag["events"] == 1
    assert frag["newer_than_fixtures"] == [version]
    assert frag["format_versions"] == list(adapters.load(source).FORMAT_VERSIONS)


# ------------------------------------------------------------------ the typed decoders
def codex_token_line(total_in, total_out, ts="2026-08-20T10:00:05.000Z", last=None):
    usage = {"input_tokens": total_in, "cached_input_tokens": 0, "output_tokens": total_out, "reasoning_output_tokens": 0, "total_tokens": total_in + total_out}
    info = {"total_token_usage": usage, "last_token_usage": last or usage, "model_context_window": 272000}
    return dumps({"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": info, "rate_limits": None}})


TYPED_EDGES = {
    "claude": [
        claude_line("a1"),
        claude_line("a1", out=30),  # a later snapshot of the same call
        claude_line("a2").replace(b'"role"', b'"text":"caf\xc3\xa9 \xe2\x9c\x93","role"'),  # UTF-8 text, skipped unparsed
        claude_line("a3").replace(b'"role"', b'"text":"\xff\xfe","role"'),  # invalid UTF-8 in a skipped field
        claude_line("a4").replace(b'"input_tokens":5', b'"input_tokens":5.0'),  # an integral float
        claude_line("a5").replace(b'"input_tokens":5', b'"input_tokens":"5"'),  # a string
        claude_line("a6").replace(b'"input_tokens":5', b'"input_tokens":true'),
        claude_line("a7").replace(b'"input_tokens":5', b'"input_tokens":18446744073709551616'),
        claude_line("a8").replace(b'"role"', b'"deep":' + b"[" * 3000 + b"]" * 3000 + b',"role"'),
        claude_line("a9").replace(b'"usage"', b'"usage":null,"x"'),
        claude_line("b1").replace(b'"claude-sonnet-4-5"', b'"<synthetic>"'),
        claude_line("b2").replace(b'"claude-sonnet-4-5"', b"42"),
        claude_line("b3", timestamp=1786000000),
        claude_line("b4", timestamp="yesterday"),
        claude_line("b5", isApiErrorMessage=True),
        claude_line("b6", message="text"),
        claude_line("b7").replace(b'"cache_creation_input_tokens":0', b'"cache_creation":{"ephemeral_1h_input_tokens":7,"ephemeral_5m_input_tokens":null}'),
        claude_line("b8").replace(b'"cache_creation_input_tokens":0', b'"cache_creation":{"ephemeral_1h_input_tokens":7,"ephemeral_5m_input_tokens":3}'),
        b'{"message":{"usage":{}}}',
        # numbers past 64 bits (orjson: floats) or past a double (orjson: malformed JSON)
        claude_line("c1", timestamp=2**64 + 7),
        claude_line("c2", timestamp=-(2**63) - 1),
        claude_line("c3", timestamp=10**400),
        claude_line("c4").replace(b'"input_tokens":5', b'"input_tokens":-9223372036854775809'),
        claude_line("c5").replace(b'"input_tokens":5', b'"input_tokens":1' + b"0" * 400),
        claude_line("c6").replace(b'"role"', b'"big":1' + b"0" * 400 + b',"role"'),  # in a skipped field
        claude_line("c7").replace(b'"role"', b'"big":1e400,"role"'),
    ],
    "codex": [
        dumps({"timestamp": "2026-08-20T10:00:00.000Z", "type": "session_meta", "payload": {"id": SID, "cwd": "/p/x", "cli_version": "0.98.0"}}),
        dumps({"timestamp": "2026-08-20T10:00:01.000Z", "type": "turn_context", "payload": {"cwd": "/p/x", "model": "gpt-5.2-codex"}}),
        codex_token_line(100, 10),
        codex_token_line(100, 10),  # a re-emit
        dumps({"timestamp": "2026-08-20T10:00:06.000Z", "type": "event_msg", "payload": {"type": "token_count", "info": None}}),
        codex_token_line(250, 30).replace(b'"rate_limits"', b'"note":"\xff","rate_limits"'),  # invalid UTF-8 in a skipped field
        codex_token_line(300, 40).replace(b'"input_tokens":300', b'"input_tokens":300.0', 1),
        codex_token_line(400, 50).replace(b'"input_tokens":400', b'"input_tokens":"400"', 1),
        codex_token_line(500, 60, ts="not a time"),
        codex_token_line(600, 70, ts=1786000000000),
        codex_token_line(50, 5),  # totals reset: last_token_usage is the call
        dumps({"timestamp": "2026-08-20T10:00:09.000Z", "type": "event_msg", "payload": {"type": "token_count", "info": [1]}}),
        dumps({"timestamp": "2026-08-20T10:00:09.000Z", "type": "event_msg", "payload": {"type": "token_count", "info": {}}}),
        dumps({"timestamp": "2026-08-20T10:00:09.000Z", "type": "event_msg", "payload": "token_count"}),
        dumps({"timestamp": "2026-08-20T10:00:09.000Z", "type": "other", "payload": {"type": "token_count", "info": None}}),
        codex_token_line(700, 80, ts=2**64 + 7),
        codex_token_line(700, 80, ts=-(2**63) - 1),
        codex_token_line(700, 80, ts=10**400),
        codex_token_line(2**64 + 7, 80),
        codex_token_line(800, 90).replace(b'"rate_limits"', b'"big":1' + b"0" * 400 + b',"rate_limits"'),  # in a skipped field
        codex_token_line(900, 95).replace(b'"model_context_window":272000', b'"model_context_window":1e400'),
    ],
}


@pytest.mark.parametrize("source", sorted(TYPED_EDGES))
def test_typed_decoder_gives_what_the_checked_path_gives(source):
    """A bulk parse decodes records with msgspec into typed structs; any line that does not
    fit them goes the checked (orjson) way. Either way: the same events, counts, reasons."""
    from scripts.adapters.base import FileSink, ParseContext, iter_complete_lines

    content = b"\n".join(TYPED_EDGES[source]) + b"\n"
    path = f"/x/.claude/projects/-p-x/{SID}.jsonl" if source == "claude" else f"/x/sessions/2026/08/20/rollout-2026-08-20T10-00-00-{SID}.jsonl"
    parses = []
    for bulk in (False, True):
        bad = []
        sink = FileSink(path, on_bad=lambda p, where, reason: bad.append((where, reason)))
        ctx = ParseContext(path=path, device="d", bulk=bulk)
        adapters.load(source).parse_lines(ctx, iter_complete_lines(content, 1), sink)
        parses.append((orjson.dumps(list(sink.events.values())), sink.counts(), sink.versions, bad, ctx.state))
    assert parses[0] == parses[1]
    events, counts = orjson.loads(parses[1][0]), parses[1][1]
    assert events and counts["rejected"], counts  # the edges include both
