"""events/<source>/<YYYY-MM-DD>.jsonl: filed by UTC day, and a run rewrites only the days
a change can reach, while staying byte-identical to a FORCE=1 rebuild."""
from __future__ import annotations

import json
import os
import shutil

from conftest import load_json, make, sample_env


def _days(art, source="claude") -> dict[str, tuple[int, int]]:
    """day -> (inode, mtime) of a source's day files: a rewrite (temp + rename) changes the inode."""
    out = {}
    for p in sorted((art / "events" / source).glob("*.jsonl")):
        st = p.stat()
        out[p.stem] = (st.st_ino, st.st_mtime_ns)
    return out


def _tree(art) -> dict[str, bytes]:
    return {p.relative_to(art).as_posix(): p.read_bytes() for p in sorted((art / "events").rglob("*")) if p.is_file()}


def _append_call(path, day: str, tag: str) -> None:
    """Append to a Claude log one new call dated ``day`` (a copy of its last call, new ids)."""
    lines = path.read_bytes().splitlines()
    last = next(json.loads(x) for x in reversed(lines) if b'"usage"' in x)
    last["message"]["id"] = f"{last['message']['id']}-{tag}"
    last["requestId"] = f"{last.get('requestId', 'req')}-{tag}"
    last["uuid"] = f"{last.get('uuid', 'u')}-{tag}"
    last["timestamp"] = f"{day}T23:59:30.000Z"
    with open(path, "ab") as fh:
        fh.write(json.dumps(last).encode() + b"\n")


def _same_as_forced(env, art, tmp_path, name):
    fresh = tmp_path / f"fresh-{name}"
    shutil.copytree(art, fresh)  # keeps the history of deleted logs, as FORCE=1 does
    make("all", env=dict(env, ARTIFACTS=str(fresh), FORCE="1"))
    assert _tree(art) == _tree(fresh), f"{name}: events differ from FORCE=1"


def test_day_files_follow_utc_whatever_the_time_zone(sample_logs, tmp_path):
    logs = sample_logs(events=1000, seed=5)
    utc, la = tmp_path / "utc", tmp_path / "la"
    make("all", env=sample_env(logs, utc))
    make("all", env=sample_env(logs, la, TIMEZONE="America/Los_Angeles"))
    tree = _tree(utc)
    assert tree and tree == _tree(la)
    for rel, data in tree.items():
        day = rel.rsplit("/", 1)[1][:-6]
        assert all(json.loads(line)["timestamp"][:10] == day for line in data.splitlines()), rel
    assert not list((utc / "events").glob("*.jsonl"))  # no single file per source any more


def _built_from_a_live_copy(sample_logs, tmp_path, seed):
    """Generated logs copied to a live home (so a test can change them) and built once."""
    logs = sample_logs(events=1000, seed=seed)
    live = tmp_path / "live"
    shutil.copytree(logs / "home", live / "home")
    art = tmp_path / "art"
    env = sample_env(live, art)
    make("all", env=env)
    return live, art, env


def test_an_append_rewrites_only_its_days_and_a_day_without_events_goes(sample_logs, tmp_path):
    live, art, env = _built_from_a_live_copy(sample_logs, tmp_path, seed=6)
    before = _days(art)
    codex_before = _days(art, "codex")
    victim = sorted((live / "home" / ".claude" / "projects").rglob("*.jsonl"))[0]
    _append_call(victim, "2027-01-15", "a")
    make("all", env=env)
    after = _days(art)
    assert set(after) == set(before) | {"2027-01-15"}
    assert {d for d in before if after[d] != before[d]} == set(), "an untouched day was rewritten"
    assert _days(art, "codex") == codex_before
    s = load_json(art / "runs" / "latest.json")
    assert s["sources"]["claude"]["days_written"] == 1 and s["sources"]["claude"]["cache"]["resumed"] == 1
    _same_as_forced(env, art, tmp_path, "appended")

    # the new day's only holder is deleted: kept as history, then forgotten with its day
    victim.unlink()
    make("all", env=env)
    assert "2027-01-15" in _days(art)
    make("forget", env=env)
    assert "2027-01-15" not in _days(art)
    _same_as_forced(env, art, tmp_path, "forgotten")


def test_a_missing_day_and_an_interrupted_rewrite_are_repaired(sample_logs, tmp_path):
    live, art, env = _built_from_a_live_copy(sample_logs, tmp_path, seed=7)
    good = _tree(art)
    days = sorted(_days(art))
    gone, torn = days[0], days[1]
    (art / "events" / "claude" / f"{gone}.jsonl").unlink()
    # a run cut short after it listed the days it was rewriting, mid-way through them
    (art / "events" / "claude" / f"{torn}.jsonl").write_bytes(b"")
    (art / "cache" / "normalize" / "claude" / "days-pending.json").write_text(json.dumps({"days": [torn]}))
    (art / "events" / "claude" / "1999-01-01.jsonl").write_bytes(b"{}\n")  # a day no file holds
    os.utime(art / "stamps" / "claude.fp")  # make normalize run (no log changed)
    make("all", env=env)
    assert _tree(art) == good
    assert not (art / "cache" / "normalize" / "claude" / "days-pending.json").exists()


def test_a_call_replaced_on_another_day_keeps_its_place(sample_logs, tmp_path):
    """A later, bigger snapshot of a call can carry another day: the call moves to that day
    at its first-appearance place, incrementally as from scratch."""
    logs = sample_logs(events=600, seed=9)
    live = tmp_path / "live"
    shutil.copytree(logs / "home", live / "home")
    art = tmp_path / "art"
    env = sample_env(live, art)
    make("all", env=env)
    victim = sorted((live / "home" / ".claude" / "projects").rglob("*.jsonl"))[0]
    first = next(json.loads(x) for x in victim.read_bytes().splitlines() if b'"usage"' in x)
    _append_call(victim, "2020-01-01", "early")  # a day before all the others
    make("all", env=env)
    first["message"]["usage"]["output_tokens"] += 1000
    first["timestamp"] = "2020-01-01T00:00:01.000Z"
    with open(victim, "ab") as fh:
        fh.write(json.dumps(first).encode() + b"\n")
    make("all", env=env)
    day = [json.loads(x) for x in (art / "events" / "claude" / "2020-01-01.jsonl").read_bytes().splitlines()]
    assert [e["source_line"] for e in day][0] > day[1]["source_line"]  # the replaced call first
    _same_as_forced(env, art, tmp_path, "replaced")
