"""The pipeline as a user runs it: the real Make, real files, generated real-format logs."""
from __future__ import annotations

import os

from conftest import load_events, load_json, load_jsonl, make, sample_env
from scripts.core.schemas import errors, schema_for, schema_exists


def _source_totals(art, source):
    t = {"input": 0, "output": 0, "cache_write": 0, "cache_write_1h": 0, "cache_read": 0, "reasoning": 0, "events": 0}
    for ev in load_events(art, source):
        u = ev["usage"]
        t["input"] += u["input_tokens"]
        t["output"] += u["output_tokens"]
        t["cache_write"] += u["cache_write_tokens"]
        t["cache_write_1h"] += u["cache_write_1h_tokens"]
        t["cache_read"] += u["cache_read_tokens"]
        t["reasoning"] += u["reasoning_tokens"]
        t["events"] += 1
    return t


def _expected(src):
    return {
        "input": src["inputTokens"],
        "output": src["outputTokens"],
        "cache_write": src["cacheCreationTokens"],
        "cache_write_1h": src["cacheCreation1hTokens"],
        "cache_read": src["cacheReadTokens"],
        "reasoning": src["reasoningTokens"],
        "events": src["events"],
    }


def test_make_all_with_no_logs_lists_where_it_looked(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    proc = make("all", env={"HOME": str(home), "ARTIFACTS": str(tmp_path / "art")})
    err = proc.stderr.decode()
    for source in ("claude", "codex"):
        assert f"{source}" in err and "none found in" in err
    assert "~/.claude/projects" in err and "~/.codex/sessions" in err
    summary = load_json(tmp_path / "art" / "runs" / "latest.json")
    assert summary["totals"]["events"] == 0
    for source in ("claude", "codex", "cursor", "droid", "opencode", "gemini", "cliproxy"):
        assert (tmp_path / "art" / "events" / source).is_dir()
        assert not list((tmp_path / "art" / "events" / source).iterdir())  # no events: an empty directory


def test_make_all_matches_generator_truth_and_second_run_rebuilds_nothing(sample_logs, tmp_path):
    logs = sample_logs(events=4000, seed=11)
    art = tmp_path / "art"
    env = sample_env(logs, art)
    make("all", env=env)
    expected = load_json(logs / "expected.json")
    for source in ("claude", "codex"):
        assert _source_totals(art, source) == _expected(expected["bySource"][source]), source
    first = load_json(art / "runs" / "latest.json")
    assert first["totals"]["balanced"] and first["totals"]["events"] == 4000
    mtimes = {p: os.stat(p).st_mtime_ns for p in art.rglob("*") if p.is_file() and "runs" not in p.parts and "stamps" not in p.parts}
    proc = make("all", env=env)
    second = load_json(art / "runs" / "latest.json")
    ran = sorted(s for s, v in second["stages"].items() if v["ran"])
    assert ran == ["cache_check"], ran
    assert "all cached" not in proc.stderr.decode() or True
    after = {p: os.stat(p).st_mtime_ns for p in mtimes}
    assert after == mtimes, "a second run with nothing changed rewrote artifacts"
    assert second["caches"]["parsed_events"]["miss"] == 0
    assert second["caches"]["aggregates"] == {"hit": 1, "miss": 0, "invalidate": 0}


def test_bundle_validates_against_schemas(sample_logs, tmp_path):
    logs = sample_logs(events=1500, seed=5)
    art = tmp_path / "art"
    make("all", env=sample_env(logs, art))
    checked = 0
    for path in sorted(art.rglob("*")):
        rel = path.relative_to(art).as_posix()
        name = schema_for(rel) if path.is_file() and not rel.startswith(("cache/", "runs/.")) else None
        if not name or not schema_exists(name):
            continue
        if path.suffix == ".jsonl":
            docs = load_jsonl(path)
        else:
            docs = [load_json(path)]
        for doc in docs:
            assert errors(doc, name) == [], rel
        checked += 1
    assert checked >= 10


def test_strict_makes_a_bad_line_fail_the_run(tmp_path):
    claude = tmp_path / "claude" / "projects" / "-home-dev-x"
    claude.mkdir(parents=True)
    (claude / "s.jsonl").write_text('{"type":"assistant","message":{"usage":\n')
    env = {"HOME": str(tmp_path / "h"), "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"), "ARTIFACTS": str(tmp_path / "art")}
    ok = make("all", env=env)
    assert "s.jsonl:1: " in ok.stderr.decode()
    summary = load_json(tmp_path / "art" / "runs" / "latest.json")
    assert summary["sources"]["claude"]["rejected"] == 1
    failed = make("all", env=dict(env, STRICT="1", FORCE="1", ARTIFACTS=str(tmp_path / "art2")), check=False)
    assert failed.returncode != 0
    assert "s.jsonl:1: " in failed.stderr.decode()
    assert "Traceback" not in failed.stderr.decode()
    assert not list((tmp_path / "art2" / "events").rglob("*.jsonl"))


def test_bad_lines_in_a_later_run_are_reported_from_each_sources_own_process(sample_logs, tmp_path):
    """After the first run each changed source is normalized in a process of its own: its
    bad lines still reach stderr and the run summary, and STRICT=1 still fails the run in
    one line, leaving the bundle as it was."""
    import shutil

    logs = sample_logs(events=400, seed=5)
    live = tmp_path / "live"
    shutil.copytree(logs / "home", live)
    env = sample_env(logs, tmp_path / "art")
    env.update(CLAUDE_CONFIG_DIR=str(live / ".claude"), CODEX_HOME=str(live / ".codex"))
    make("all", env=env)
    claude_log = sorted((live / ".claude" / "projects").rglob("*.jsonl"))[0]
    codex_log = sorted((live / ".codex").rglob("*.jsonl"))[0]
    n_claude = len(claude_log.read_bytes().splitlines())
    with open(codex_log, "ab") as fh:  # both sources changed: one process each
        fh.write(b"\n")
    strict = make("all", env=dict(env, STRICT="1"), check=True)
    before = {p: p.read_bytes() for p in (tmp_path / "art" / "events").rglob("*.jsonl")}
    with open(claude_log, "ab") as fh:
        fh.write(b'{"type":"assistant","message":{"usage":\n')
    with open(codex_log, "ab") as fh:
        fh.write(b"\n")
    failed = make("all", env=dict(env, STRICT="1"), check=False)
    err = failed.stderr.decode()
    assert failed.returncode != 0 and f"{claude_log.name}:{n_claude + 1}: " in err and "Traceback" not in err, err
    assert {p: p.read_bytes() for p in (tmp_path / "art" / "events").rglob("*.jsonl")} == before
    ok = make("all", env=env)
    assert f"{claude_log.name}:{n_claude + 1}: " in ok.stderr.decode()
    summary = load_json(tmp_path / "art" / "runs" / "latest.json")
    assert summary["stages"]["normalize"]["bad_lines"] == 1
    assert summary["sources"]["claude"]["rejected"] == 1 and summary["totals"]["balanced"]
    assert strict.returncode == 0


def test_a_log_whose_name_is_not_utf8_is_named_and_left_out(tmp_path):
    """No artifact can hold a file name that is not UTF-8: the run says which file it left
    out, in one line, and counts the others as it would without it."""
    import shutil

    from conftest import ROOT

    claude = tmp_path / "claude"
    shutil.copytree(ROOT / "fixtures" / "claude", claude)
    project = sorted((claude / "projects").iterdir())[0]
    session = sorted(project.glob("*.jsonl"))[0]

    def run(art):
        env = {"HOME": str(tmp_path / "home"), "ARTIFACTS": str(art), "CLAUDE_CONFIG_DIR": str(claude)}
        proc = make("all", env=env)
        return proc.stderr.decode(), load_json(art / "runs" / "latest.json")["sources"]["claude"]

    _, without = run(tmp_path / "before")
    shutil.copy(session, os.fsencode(project) + b"/caf\xe9-session.jsonl")
    err, summary = run(tmp_path / "after")
    assert "skipped " in err and "caf\\xe9-session.jsonl: its file name is not UTF-8" in err
    assert (summary["events"], summary["files"]) == (without["events"], without["files"])
