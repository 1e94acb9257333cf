"""Every adapter over its fixtures gives exactly the hand-checked events, its counts add up
per file, and the result does not depend on the order files are discovered in."""
from __future__ import annotations

import json
import os
import random

import orjson
import pytest

from adapter_harness import (
    SOURCES,
    build_fixture_copy,
    check_event_contract,
    env_path,
    expected_counts,
    expected_events,
    file_key,
    parse_source,
    project,
    source_files,
)
from conftest import PYTHON, event_bytes, run_cmd
from scripts import adapters
from scripts.normalize import transform


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return build_fixture_copy(tmp_path_factory.mktemp("fx"))


@pytest.mark.parametrize("source", SOURCES)
def test_events_match_expected(fx, tmp_path, source):
    events, _ = parse_source(fx, source, tmp_path)
    for ev in events:
        check_event_contract(ev, source)
    got = sorted((project(ev, fx, source) for ev in events), key=lambda e: e["id"])
    want = expected_events(source)
    assert [e["id"] for e in got] == [e["id"] for e in want]
    for g, w in zip(got, want):
        assert g == w, g["id"]


@pytest.mark.parametrize("source", SOURCES)
def test_counts_add_up_per_file(fx, tmp_path, source):
    events, results = parse_source(fx, source, tmp_path)
    want = expected_counts(source)
    got_files = {}
    versions: dict = {}
    notes: dict = {}
    for path, res in results.items():
        c = res.counts
        assert len(res.ids) + c["duplicates"] + c["not_a_call"] + sum(c["rejected"].values()) == c["records"], path
        got_files[file_key(path, fx, source)] = {
            "records": c["records"],
            "events": len(res.ids),
            "duplicates": c["duplicates"],
            "not_a_call": c["not_a_call"],
            "rejected": c["rejected"],
        }
        for k, n in res.versions.items():
            versions[k] = versions.get(k, 0) + n
        for k, n in c["notes"].items():
            notes[k] = notes.get(k, 0) + n
        if "notes" in want["files"][file_key(path, fx, source)]:
            assert c["notes"] == want["files"][file_key(path, fx, source)]["notes"], path
    assert got_files == {k: {f: v for f, v in e.items() if f != "notes"} for k, e in want["files"].items()}
    assert versions == want["versions"]
    assert notes == want["source"]["notes"]
    # across files: the copies cross-file deduplication drops are duplicates
    per_file_events = sum(len(r.ids) for r in results.values())
    records = sum(r.counts["records"] for r in results.values())
    dups = sum(r.counts["duplicates"] for r in results.values()) + per_file_events - len(events)
    nac = sum(r.counts["not_a_call"] for r in results.values())
    rej = sum(sum(r.counts["rejected"].values()) for r in results.values())
    assert {"records": records, "events": len(events), "duplicates": dups, "not_a_call": nac, "rejected": rej} == {
        k: v for k, v in want["source"].items() if k != "notes"
    }
    assert len(events) + dups + nac + rej == records


@pytest.mark.parametrize("source", SOURCES)
def test_discovery_order_does_not_matter(fx, tmp_path, source):
    def dump(order, seed=0):
        events, _ = parse_source(fx, source, tmp_path / order, order=order, seed=seed)
        return b"".join(orjson.dumps(ev, option=orjson.OPT_SORT_KEYS) + b"\n" for ev in events)

    first = dump("sorted")
    assert dump("reversed") == first
    for seed in (1, 2, 3):
        assert dump("shuffled", seed) == first


@pytest.mark.parametrize("source", SOURCES)
def test_pipe_mode_is_order_independent_and_agrees(fx, tmp_path, source):
    """``normalize --source X FILE...`` (transform) gives the bundle's events whatever the
    order of its inputs. (Pipe mode reads a finished file: a cut-short last line is parsed,
    and rejected, instead of being left for later; it is never an event either way.)"""
    files = source_files(fx, source, tmp_path)
    if source == "opencode":
        files = [f for f in files if not f.endswith(".db")] + [f for f in files if f.endswith(".db")]

    def run(order):
        inputs = [(f, open(f, "rb").read()) for f in order]
        from scripts.shared_io import Diagnostics
        import io

        return [orjson.dumps(ev, option=orjson.OPT_SORT_KEYS) for ev in transform(source, inputs, device="testbox", diag=Diagnostics(stream=io.StringIO()))]

    base = run(sorted(files))
    rng = random.Random(7)
    for _ in range(3):
        shuffled = list(files)
        rng.shuffle(shuffled)
        assert run(shuffled) == base
    bundle_events, _ = parse_source(fx, source, tmp_path / "b")
    strip = lambda evs: sorted(  # noqa: E731
        json.dumps({k: v for k, v in (orjson.loads(e) if isinstance(e, bytes) else e).items() if k != "source_line" or source != "cursor"}, sort_keys=True)
        for e in evs
    )
    assert strip(base) == strip(bundle_events)


PRIVATE = [
    # message text, prompts, code and credentials from the fixtures: none may reach an event
    "flaky", "retry logic", "pytest -q", "fix the failing parser", "tokenizer drops", "checkout test fails",
    "vi.runAllTimersAsync", "deploy.sh", "caf", "dev@example.com", "user@example.com", "sk-client-key", "sk-local",
    "rate limited", "login button", "Rotate the TLS", "Looking at it now", "state_snapshot", "127.0.0.1", "Explain",
]


@pytest.mark.parametrize("source", SOURCES)
def test_no_text_reaches_an_event(fx, tmp_path, source):
    events, _ = parse_source(fx, source, tmp_path)
    blob = orjson.dumps(events).decode()
    for needle in PRIVATE:
        assert needle not in blob, needle


def test_extract_cursor_output_holds_no_text(fx, tmp_path):
    source_files(fx, "cursor", tmp_path)
    data = (tmp_path / "raw" / "cursor.jsonl").read_text()
    for needle in ("checkout test fails", "vi.runAllTimersAsync", "dev@example.com", "pro", "deploy.sh", "Three commits"):
        assert needle not in data.replace("projects", ""), needle


@pytest.mark.parametrize("source", SOURCES)
def test_bundle_mode_matches_expected(fx, tmp_path, source):
    """The real command line: (extract-cursor then) normalize --bundle, as make runs it."""
    mod = adapters.load(source)
    art = tmp_path / "art"
    env = {"HOME": str(tmp_path / "home"), mod.ENV_VAR: str(env_path(fx, source)), "DEVICE": "testbox"}
    if source == "cursor":
        run_cmd([PYTHON, "-m", "scripts.extract_cursor", "--artifacts", str(art), "-o", str(art / "raw" / "cursor.jsonl")], env=env)
    run_cmd([PYTHON, "-m", "scripts.normalize", "--bundle", "--source", source, "--artifacts", str(art)], env=env)
    events = [orjson.loads(line) for line in event_bytes(art, source).splitlines()]
    got = sorted((project(ev, fx, source) for ev in events), key=lambda e: e["id"])
    assert got == expected_events(source)
    frag = json.loads((art / "runs" / ".current" / "normalize.json").read_text())["sources"][source]
    want = expected_counts(source)["source"]
    assert frag["balanced"] is True
    for key in ("records", "events", "duplicates", "not_a_call", "rejected", "notes"):
        assert frag[key] == want[key], key
    assert frag["source_versions"] == expected_counts(source)["versions"]
    assert frag["newer_than_fixtures"] == []
    if source == "cursor":
        extract = json.loads((art / "runs" / ".current" / "extract_cursor.json").read_text())
        for key, value in expected_counts("cursor")["extract"].items():
            assert extract[key] == value, key


def test_every_adapter_declares_its_module_api():
    for source in SOURCES:
        mod = adapters.load(source)
        for name in ("NAME", "ADAPTER_VERSION", "FORMAT_VERSIONS", "ENV_VAR", "roots_from_env", "search_locations", "discover"):
            assert hasattr(mod, name), (source, name)
        assert mod.NAME == source
        assert mod.resumable in (True, False)
        assert hasattr(mod, "parse_lines") if mod.resumable else hasattr(mod, "parse_content")
        # defaults cover Linux and macOS without the variable
        assert mod.roots_from_env(None)


def test_default_locations(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    home = str(tmp_path)
    assert adapters.load("droid").roots_from_env(None) == [os.path.join(home, ".factory", "sessions")]
    assert adapters.load("opencode").roots_from_env(None) == [os.path.join(home, ".local", "share", "opencode")]
    assert adapters.load("gemini").roots_from_env(None) == [os.path.join(home, ".gemini")]
    assert adapters.load("cliproxy").roots_from_env(None) == [os.path.join(home, ".local", "share", "tokentally", "cliproxy")]
    cursor = adapters.load("cursor")
    monkeypatch.setattr("sys.platform", "linux")
    assert cursor.roots_from_env(None) == [os.path.join(home, ".config", "Cursor", "User", "globalStorage", "state.vscdb")]
    monkeypatch.setattr("sys.platform", "darwin")
    assert cursor.roots_from_env(None) == [os.path.join(home, "Library", "Application Support", "Cursor", "User", "globalStorage", "state.vscdb")]
    assert cursor.roots_from_env("~/a.vscdb, /b.vscdb") == [os.path.join(home, "a.vscdb"), "/b.vscdb"]
