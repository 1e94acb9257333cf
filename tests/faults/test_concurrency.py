"""Concurrent use: ``make -j2`` and two runs on one bundle at once.

``make all`` (and ``forget``, ``dashboard``, ``ledger``, and ``demo`` through ``all``) runs its
graph holding ``$(ARTIFACTS)/.lock`` (scripts/locked.sh): a second run on the same bundle says
it waits, waits up to LOCK_WAIT seconds, then gives up with one clear line. The lock is
flock(2), so a killed holder frees it; where flock(1) is missing, scripts/core/filelock.py
takes the same lock.
"""
from __future__ import annotations

import fcntl
import os
import random
import shutil
import subprocess
import time
from contextlib import contextmanager

import pytest

from conftest import ROOT

from .harness import LONG, check_bundle, diff_results, figure, known_versions, make, results, start_make

WAIT_MSG = "another run is updating"
GAVE_UP = "gave up: another run is still updating"


@contextmanager
def holding(art):
    """Hold the bundle's lock as another run would (flock(2) on $(ARTIFACTS)/.lock)."""
    art.mkdir(parents=True, exist_ok=True)
    fd = os.open(art / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)


def _without_flock(tmp_path) -> str:
    """A PATH like this one minus flock(1): what a Mac has."""
    bin_dir = tmp_path / "bin-without-flock"
    bin_dir.mkdir(exist_ok=True)
    for d in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            src = os.path.join(d, name)
            if name != "flock" and not (bin_dir / name).exists() and os.access(src, os.X_OK) and os.path.isfile(src):
                (bin_dir / name).symlink_to(src)
    assert shutil.which("flock", path=str(bin_dir)) is None
    return str(bin_dir)


def test_j2_gives_byte_identical_artifacts(tree, reference, tmp_path):
    rounds = 4 if LONG else 2
    for i in range(rounds):
        art = tmp_path / f"j2-{i}"
        proc = make(tree.env(art), "-j2", "all")
        err = proc.stderr.decode()
        assert "jobserver unavailable" not in err and "warning" not in err.lower(), err
        assert not diff_results(results(art), results(reference))
        # and a second -j2 run on it (nothing changed) rewrites nothing
        before = {p: p.stat().st_mtime_ns for p in art.rglob("*") if p.is_file() and "runs" not in p.parts}
        make(tree.env(art), "-j2", "all")
        assert {p: p.stat().st_mtime_ns for p in before} == before
    figure("concurrency.j2_runs_identical_to_serial", rounds)


@pytest.mark.parametrize("no_flock", [False, True], ids=["flock", "python-fallback"])
def test_two_runs_at_once_on_one_bundle(tree, reference, tmp_path, no_flock):
    """Both finish, one of them said it waited, and the bundle is exactly a single run's."""
    rounds = 8 if LONG else 3
    extra = {"PATH": _without_flock(tmp_path)} if no_flock else {}
    want = results(reference)
    known = known_versions(reference)
    rng = random.Random(9)
    waited = 0
    for i in range(rounds):
        art = tmp_path / f"two-{i}"
        env = tree.env(art, **extra)
        flags = ["-j2"] if i % 2 else []
        a = start_make(env, *flags, "all")
        time.sleep(rng.uniform(0, 0.05))
        b = start_make(env, "all")
        out = [p.communicate(timeout=300) for p in (a, b)]
        assert a.returncode == 0 and b.returncode == 0, [o[1].decode()[-2000:] for o in out]
        errs = [o[1].decode() for o in out]
        assert all("Traceback" not in e for e in errs)
        if any(WAIT_MSG in e for e in errs):
            waited += 1
            line = next(l for e in errs for l in e.splitlines() if WAIT_MSG in l)
            assert line == f"make all: another run is updating {art} (it holds {art}/.lock); waiting up to 600s for it to finish"
        assert not diff_results(results(art), want)
        chk = check_bundle(art, known, settled=True)
        assert not chk.problems, chk.problems[:5]
    assert waited >= rounds - 1, f"only {waited} of {rounds} pairs overlapped"
    figure(f"concurrency.two_runs_at_once.{'python_fallback' if no_flock else 'flock'}", f"{rounds} pairs, {waited} waited, all identical to one run")


@pytest.mark.parametrize("no_flock", [False, True], ids=["flock", "python-fallback"])
def test_a_run_that_cannot_wait_gives_up_with_one_clear_line(tree, tmp_path, no_flock):
    art = tmp_path / "held"
    extra = {"PATH": _without_flock(tmp_path)} if no_flock else {}
    with holding(art):
        t0 = time.monotonic()
        proc = make(tree.env(art, LOCK_WAIT=1, **extra), "all", check=False)
        took = time.monotonic() - t0
        err = proc.stderr.decode().strip().splitlines()
        assert proc.returncode != 0
        assert err[0] == f"make all: another run is updating {art} (it holds {art}/.lock); waiting up to 1s for it to finish"
        assert err[1] == f"make all: gave up: another run is still updating {art} (it holds {art}/.lock); run it again when that one has finished (LOCK_WAIT=1s)"
        assert 0.9 < took < 10
        assert sorted(p.name for p in art.iterdir()) == [".lock"], "a run that gave up wrote to the bundle"
        proc = make(tree.env(art, LOCK_WAIT=0, **extra), "all", check=False)
        ours = [line for line in proc.stderr.decode().splitlines() if not line.startswith("make: ***")]
        assert proc.returncode != 0 and len(ours) == 1 and GAVE_UP in ours[0]
    # released while a second run waits: it goes on
    with holding(art):
        waiter = start_make(tree.env(art, LOCK_WAIT=30, **extra), "all")
        time.sleep(1.0)
        assert waiter.poll() is None
    _out, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err.decode()[-2000:]
    assert WAIT_MSG in err.decode()
    assert (art / "runs" / "latest.json").exists()


def test_a_killed_holder_frees_the_lock(tree, tmp_path):
    """kill -9 of a running make leaves no stale lock: the next run starts at once."""
    art = tmp_path / "killed"
    p = start_make(tree.env(art), "all")
    deadline = time.monotonic() + 60
    while not (art / "stamps" / "claude.fp").exists():
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.001)
    os.killpg(p.pid, 9)
    p.communicate()
    proc = make(tree.env(art, LOCK_WAIT=0), "all")
    assert WAIT_MSG not in proc.stderr.decode() and GAVE_UP not in proc.stderr.decode()


@pytest.mark.parametrize("target", ["forget", "dashboard", "ledger", "demo"])
def test_other_bundle_writers_respect_the_lock(tree, tmp_path, target):
    art = ROOT / "artifacts" / "demo" if target == "demo" else tmp_path / "bundle"
    if target != "demo":
        make(tree.env(art), "all")
    marker = {p: p.stat().st_mtime_ns for p in art.rglob("*") if p.is_file()}
    env = tree.env(art, LOCK_WAIT=0)
    if target == "demo":
        env = {k: v for k, v in env.items() if k in ("HOME", "PATH", "LOCK_WAIT")}
    with holding(art):
        proc = make(env, target, check=False)
    err = proc.stderr.decode()
    assert proc.returncode != 0 and f"make {'all' if target == 'demo' else target}: gave up" in err, err
    assert {p: p.stat().st_mtime_ns for p in marker if p.exists()} == marker, "it wrote to the held bundle"
    if target != "demo":
        # and with the lock free it runs (forget -> all nests without a second lock)
        proc = make(tree.env(art, LOCK_WAIT=0), target, timeout=300)
        assert GAVE_UP not in proc.stderr.decode()


def test_warm_run_cost_of_the_lock(tree, reference, tmp_path):
    """The lock adds a shell and flock(1), no Python: a warm `make all` stays ~0.1 s."""
    art = tmp_path / "warm"
    make(tree.env(art), "all")
    env = dict(os.environ, **tree.env(art))

    def median(args):
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            subprocess.run(args, cwd=ROOT, env=env, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        return sorted(times)[3]

    locked = median(["make", "all"])
    unlocked = median(["make", "bundle-graph"])
    figure("concurrency.warm_make_all_seconds", {"with_lock": round(locked, 3), "graph_alone": round(unlocked, 3)})
    assert locked - unlocked < 0.05, (locked, unlocked)


def test_a_run_clears_only_its_own_bundles_leftovers(tree, tmp_path):
    """The temp files a killed writer left are cleared by the next run of that bundle, not
    those inside a bundle nested in it (artifacts/demo in artifacts), which has its own lock."""
    art = tmp_path / "outer"
    make(tree.env(art), "all")
    leftovers = [art / ".ui-snapshot.json.k1ll3d.tmp", art / "events" / "claude" / ".2026-08-01.jsonl.k1ll3d.tmp",
                 art / "cache" / "normalize" / "codex" / ".index.sqlite.k1ll3d.tmp"]
    nested = art / "demo" / "events" / "claude" / ".2026-08-01.jsonl.l1v3.tmp"
    for p in leftovers + [nested]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"{\"cut")
    make(tree.env(art), "all")
    assert not any(p.exists() for p in leftovers)
    assert nested.exists()
