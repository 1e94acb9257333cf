"""A stage's process that released refresh early (scripts/core/background.py) still decides
the run: when it fails after the release the run fails in one line and writes no run
summary, and the next run repairs everything; run alone, normalize waits for it."""
from __future__ import annotations

import shutil

from conftest import load_json, make, sample_env, stage
from scripts.bench import append_one_percent
from test_cache import assert_same_as_forced_rebuild


def _block(art, day: str) -> None:
    """Put a directory where normalize will write events/claude/<day>.jsonl."""
    path = art / "events" / "claude" / f"{day}.jsonl"
    if path.exists():
        path.unlink()
    (path / "blocker").mkdir(parents=True)


def _unblock(art, day: str) -> None:
    shutil.rmtree(art / "events" / "claude" / f"{day}.jsonl")


def _fails_in_one_line(env, mention: str = "Error") -> None:
    """make all fails, saying why in one line that names ``mention`` (no traceback)."""
    res = make("all", env=env, check=False)
    assert res.returncode != 0
    err = res.stderr.decode()
    assert mention in err and "Traceback" not in err, err


def _built_live(sample_logs, tmp_path, seed: int):
    """A copy of generated logs, a bundle built from them, and one day of new calls:
    ``(live logs, bundle, env, new calls to append)``."""
    logs = sample_logs(events=2000, seed=seed)
    delta = sample_logs(events=40, seed=1000 + seed, start="2026-09-30", days=1)
    live = tmp_path / "live"
    shutil.copytree(logs / "home", live / "home")
    art = tmp_path / "art"
    env = sample_env(live, art)
    make("all", env=env)
    return live, art, env, delta


def _first_day(art) -> str:
    return sorted(p.stem for p in (art / "events" / "claude").glob("*.jsonl"))[0]


def test_first_run_failing_after_the_release_fails_the_run(sample_logs, tmp_path):
    logs = sample_logs(events=2000, seed=5)
    probe = tmp_path / "probe"
    make("all", env=sample_env(logs, probe))
    day = _first_day(probe)
    art = tmp_path / "art"
    env = sample_env(logs, art)
    _block(art, day)
    _fails_in_one_line(env)
    assert not (art / "runs" / "latest.json").exists(), "a failed run writes no run summary"
    _unblock(art, day)
    make("all", env=env)
    assert_same_as_forced_rebuild(env, art, tmp_path / "fresh")


def test_aggregate_failing_after_its_release_fails_the_run(sample_logs, tmp_path):
    """A first run's aggregate releases refresh once aggregates.json is written and saves
    its state for the next run meanwhile: a failure there still fails the run."""
    logs = sample_logs(events=2000, seed=8)
    art = tmp_path / "art"
    env = sample_env(logs, art)
    state = art / "cache" / "aggregate" / "state.bin"
    (state / "blocker").mkdir(parents=True)  # a directory where the state goes
    _fails_in_one_line(env)
    assert not (art / "runs" / "latest.json").exists(), "a failed run writes no run summary"
    assert (art / "reports" / "daily.json").exists(), "price ran while aggregate saved its state"
    shutil.rmtree(state)
    make("all", env=env)
    assert_same_as_forced_rebuild(env, art, tmp_path / "fresh")


def test_later_run_failing_after_the_release_fails_the_run(sample_logs, tmp_path):
    live, art, env, delta = _built_live(sample_logs, tmp_path, 6)
    before = load_json(art / "runs" / "latest.json")["run_id"]
    append_one_percent(str(live / "home"), str(delta), 0)
    _block(art, "2026-09-30")
    _fails_in_one_line(env, "2026-09-30")
    assert load_json(art / "runs" / "latest.json")["run_id"] == before, "a failed run writes no run summary"
    _unblock(art, "2026-09-30")
    make("all", env=env)
    assert_same_as_forced_rebuild(env, art, tmp_path / "fresh")


def test_normalize_alone_returns_only_when_every_source_is_written(sample_logs, tmp_path):
    live, art, env, delta = _built_live(sample_logs, tmp_path, 7)
    append_one_percent(str(live / "home"), str(delta), 0)
    stage("cache_check", "--artifacts", art, "--quiet", env=env)
    index = art / "cache" / "normalize" / "claude" / "index.sqlite.sum"  # rewritten by each save
    stamp = art / "stamps" / "claude.normalized"
    index_before, stamp_before = index.stat().st_mtime_ns, stamp.stat().st_mtime_ns
    stage("normalize", "--bundle", "--only-stale", "--artifacts", art, env=env)
    # the command has returned: its per-source processes have saved and stamped
    assert index.stat().st_mtime_ns > index_before
    assert stamp.stat().st_mtime_ns > stamp_before
    assert not (art / "cache" / "normalize" / "claude" / "days-pending.json").exists()


def test_finish_waits_for_every_tracked_process_and_reports_the_failed():
    import os

    from scripts.core import background

    pids = []
    for code in (0, 3):
        pid = os.fork()
        if pid == 0:
            os._exit(code)
        pids.append(pid)
    background.track(pids[0], "ok one")
    background.track(pids[1], "bad one")
    assert background.finish() == [("bad one", 3)]
    assert background.finish() == []  # nothing left to wait for


def test_idle_work_runs_once_when_a_wait_comes_and_can_be_dropped():
    from scripts.core import background

    done = []
    background.when_idle(lambda: done.append(1))
    background.do_idle_work()
    background.do_idle_work()
    assert done == [1]
    background.when_idle(lambda: done.append(2))
    background.drop_idle_work()
    background.do_idle_work()
    assert done == [1]
