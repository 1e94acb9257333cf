"""kill -9 anywhere in ``make all``: what is left is absent or complete and valid, and the
next ``make all`` gives exactly what an uninterrupted run gives.

Kill points are found by watching the run: a stage's process appearing, a file a stage
writes appearing (or a writer's temp file, i.e. mid-write), the parse workers running, or
plain time. The whole process group gets SIGKILL (make, the stages, the parse workers, the
lock holder). Where each kill landed is read from the live processes at that moment.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path


from .harness import (
    LONG,
    check_bundle,
    copy_bundle,
    diff_results,
    figure,
    group_cmdlines,
    is_temp,
    kill_group,
    known_versions,
    make,
    results,
    start_make,
    where_now,
)


class Moment:
    """What a predicate may look at while the run goes on."""

    def __init__(self, art, pgid, t0):
        self.art = art
        self.pgid = pgid
        self.t0 = t0
        self._cmd = None

    def cmdlines(self):
        if self._cmd is None:
            self._cmd = group_cmdlines(self.pgid)
        return self._cmd


def after(seconds):
    return lambda m: time.monotonic() - m.t0 >= seconds


def proc(module):
    return lambda m: any(f"scripts.{module}" in c for c in m.cmdlines())


def workers():
    # normalize runs inside refresh; its parse workers are forked copies of that process
    return lambda m: sum("scripts.refresh" in c or "scripts.normalize" in c for c in m.cmdlines()) >= 2


def exists(rel):
    return lambda m: os.path.exists(os.path.join(m.art, rel))


def any_file(directory, prefix=""):
    def pred(m):
        try:
            return any(n.startswith(prefix) and not is_temp(n) for n in os.listdir(os.path.join(m.art, directory)))
        except OSError:
            return False

    return pred


def temp_in(directory):
    def pred(m):
        try:
            return any(is_temp(n) for n in os.listdir(os.path.join(m.art, directory)))
        except OSError:
            return False

    return pred


def changed(rel, before_ns):
    def pred(m):
        try:
            return os.stat(os.path.join(m.art, rel)).st_mtime_ns != before_ns.get(rel)
        except OSError:
            return False

    return pred


# (label, predicate) in the order a cold run meets them
COLD_POINTS = [
    ("at once", after(0)),
    ("refresh starts (cache-check)", proc("refresh")),
    ("first source stamp", exists("stamps/claude.fp")),
    ("manifests written", exists("cache/manifest/cliproxy.json")),
    ("setting stamps", exists("stamps/device.fp")),
    ("cache-check done", exists("runs/.current/cache_check.json")),
    ("raw/cursor.jsonl mid-write", temp_in("raw")),
    ("raw/cursor.jsonl written", exists("raw/cursor.jsonl")),
    ("normalize starts", exists("runs/.current/extract_cursor.json")),
    ("parse workers running", workers()),
    ("first pack written", any_file("cache/normalize/claude", "pack-")),
    ("events mid-write", temp_in("events/claude")),
    ("claude events written", any_file("events/claude")),
    ("claude index saved", exists("cache/normalize/claude/index.sqlite")),
    ("codex events written", any_file("events/codex")),
    ("last rollup written", exists("rollups/cliproxy.json")),
    ("normalized stamps", exists("stamps/claude.normalized")),
    ("normalize done", exists("runs/.current/normalize.json")),
    ("aggregates mid-write", temp_in("aggregates")),
    ("aggregates written", exists("aggregates/aggregates.json")),
    ("first report written", exists("reports/daily.json")),
    ("reports mid-write", temp_in("reports")),
    ("markdown reports", exists("reports/blocks.md")),
    ("suggestions written", exists("reports/suggestions.json")),
    ("snapshot written", exists("ui-snapshot.json")),
    ("run summary written", exists("runs/latest.json")),
]


def kill_at(env, art, pred, delay=0.0, timeout=60.0):
    """Start ``make all``, kill its process group once ``pred`` holds (plus ``delay``);
    return where it landed (None: the run finished first)."""
    p = start_make(env, "all")
    t0 = time.monotonic()
    try:
        while True:
            m = Moment(art, p.pid, t0)
            if pred(m):
                break
            if p.poll() is not None:
                p.communicate()
                return None
            if time.monotonic() - t0 > timeout:
                raise AssertionError("the run neither finished nor reached the kill point")
            time.sleep(0.0003)
        if delay:
            time.sleep(delay)
        landed = where_now(group_cmdlines(p.pid), art)
    finally:
        if p.returncode is None:
            kill_group(p)
    return landed


def _points():
    if not LONG:
        return [(label, pred, 0.0) for i, (label, pred) in enumerate(COLD_POINTS) if i % 2 == 0 or "mid-write" in label]
    out = []
    for label, pred in COLD_POINTS:
        for delay in (0.0, 0.004):
            out.append((f"{label}{' +4ms' if delay else ''}", pred, delay))
    return out


def _time_points(duration: float, n: int):
    return [(f"t={duration * i / n * 1000:.0f}ms", after(duration * i / n), 0.0) for i in range(1, n)]


def test_kill_at_watched_moments_of_a_cold_run(tree, reference, tmp_path):
    env0 = tree.env(tmp_path / "unused")
    want = results(reference)
    known = known_versions(reference)
    # the time grid spans an uninterrupted run of this machine
    t0 = time.monotonic()
    make(tree.env(tmp_path / "timed"), "all")
    duration = time.monotonic() - t0
    points = _points() + _time_points(duration, 16 if LONG else 4)
    log = []
    for i, (label, pred, delay) in enumerate(points):
        art = tmp_path / f"k{i:02d}"
        env = dict(env0, ARTIFACTS=str(art))
        landed = kill_at(env, art, pred, delay)
        chk = check_bundle(art, known)
        assert not chk.problems, f"after a kill at {label!r} ({landed}): {chk.problems[:5]}"
        make(env, "all")
        diff = diff_results(results(art), want)
        assert not diff, f"after a kill at {label!r} ({landed}) the next run differs: {diff[:5]}"
        settled = check_bundle(art, known, settled=True)
        assert not settled.problems, f"after a kill at {label!r}: {settled.problems[:5]}"
        log.append({"point": label, "landed": landed or "run finished first", "files_left": chk.files,
                    "identical_to_final": chk.known, "validated": chk.validated, "temp_files": chk.temps,
                    "garbage_packs": chk.garbage_packs})
    landed = Counter(e["landed"].split(",")[0].split(" (")[0] for e in log)
    figure("kill.watched.points", len(log))
    figure("kill.watched.landed_per_stage", dict(sorted(landed.items())))
    figure("kill.watched.temp_files_left_then_swept", sum(e["temp_files"] for e in log))
    figure("kill.watched.garbage_packs_left_then_removed", sum(e["garbage_packs"] for e in log))
    figure("kill.watched.log", [f"{e['point']}: {e['landed']} ({e['files_left']} files left)" for e in log])
    missed = [e["point"] for e in log if e["landed"] == "run finished first"]
    assert len(log) - len(missed) >= (40 if LONG else 12), f"only {len(log) - len(missed)} kills landed; missed: {missed}"


# ---------------------------------------------------------------- incremental runs
def _cut_logs(full_home, live_home, fraction):
    """The live logs as a prefix of the full ones: each file's first ``fraction`` of lines
    (every third file not there yet until the end), cut in the middle of a line in some."""
    files = sorted(p for p in full_home.rglob("*.jsonl"))
    for i, src in enumerate(files):
        dst = live_home / src.relative_to(full_home)
        if i % 3 == 0 and fraction < 1:
            continue
        lines = src.read_bytes().splitlines(keepends=True)
        keep = lines[: int(len(lines) * fraction)]
        tail = b""
        if i % 4 == 1 and len(keep) < len(lines) and fraction < 1:
            tail = lines[len(keep)][: len(lines[len(keep)]) // 2]
        data = b"".join(keep) + tail
        if dst.exists() and dst.read_bytes() == data:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(dst, "ab") as fh:  # append, as the tools do
            old = dst.stat().st_size
            assert data[:old] == dst.read_bytes()[:old]
            fh.write(data[old:])


def age(home, seconds=60):
    """Date the logs back: a real log was last written well before the run that reads it
    (one written within the last 2 s gets a content hash in the cache, which would hide
    a stale listing)."""
    t = time.time() - seconds
    for p in home.rglob("*.jsonl"):
        os.utime(p, (t, t))


def test_kill_anywhere_in_incremental_runs(tree, tmp_path):
    """A chain of runs on growing logs, a changed pricing book and a changed time zone; in each,
    the killed bundle is recovered by the next run and then equals a twin bundle that was never
    killed."""
    full = tree.logs / "home"
    live = tmp_path / "live"
    book = tmp_path / "pricing.json"
    from conftest import ROOT

    book.write_bytes((ROOT / "pricing.json").read_bytes())
    killed, twin = tmp_path / "killed", tmp_path / "twin"

    def env_for(art, tz="UTC"):
        e = tree.env(art, PRICING=book, TIMEZONE=tz)
        e["CLAUDE_CONFIG_DIR"] = f"{live / '.claude'},{tree.fixtures / 'claude'}"
        e["CODEX_HOME"] = f"{live / '.codex'},{tree.fixtures / 'codex'}"
        return e

    _cut_logs(full, live, 0.2)
    make(env_for(twin), "all")
    copy_bundle(twin, killed)
    steps = 14 if LONG else 4
    points = [
        ("parse cache written", lambda m: m.changed("cache/normalize/claude/index.sqlite")),
        ("events written", lambda m: m.changed("events/claude")),  # a day file renamed in
        ("index saved", lambda m: m.changed("cache/normalize/codex/index.sqlite")),
        ("cache-check done", lambda m: m.changed("runs/.current/cache_check.json")),
        ("reports written", lambda m: m.changed("reports/daily.json")),
        ("refresh starts", proc("refresh")),
        ("snapshot", lambda m: m.changed("ui-snapshot.json")),
    ]
    log = []
    tz = "UTC"
    for step in range(steps):
        kind = ("append", "append+pricing", "timezone")[step % 3]
        if kind.startswith("append"):
            age(live)
            _cut_logs(full, live, min(1.0, 0.2 + 0.8 * (step + 1) / steps))
        if "pricing" in kind:
            doc = json.loads(book.read_text())
            m = doc["models"]["claude-sonnet-4-5"]
            m["input_usd_per_mtok"] = 3.1 if m["input_usd_per_mtok"] == 3 else 3
            book.write_text(json.dumps(doc, indent=2) + "\n")
        if kind == "timezone":
            tz = "America/Los_Angeles" if tz == "UTC" else "UTC"
        before = {}
        for rel in ("events/claude", "cache/normalize/claude/index.sqlite", "cache/normalize/codex/index.sqlite", "reports/daily.json", "ui-snapshot.json",
                    "runs/.current/cache_check.json"):
            try:
                before[rel] = os.stat(killed / rel).st_mtime_ns
            except OSError:
                pass
        known = known_versions(killed)
        label, pred = points[step % len(points)]
        make(env_for(twin, tz), "all")
        known_after = known_versions(twin)
        for rel, versions in known_after.items():
            known.setdefault(rel, set()).update(versions)

        def pred_with_changes(m, pred=pred):
            m.changed = lambda rel: changed(rel, before)(m)
            return pred(m)

        landed = kill_at(env_for(killed, tz), killed, pred_with_changes)
        chk = check_bundle(killed, known)
        assert not chk.problems, f"step {step} ({kind}), kill at {label!r} ({landed}): {chk.problems[:5]}"
        make(env_for(killed, tz), "all")
        diff = diff_results(results(killed), results(twin))
        assert not diff, f"step {step} ({kind}), kill at {label!r} ({landed}): the next run differs: {diff[:5]}"
        log.append(f"step {step} {kind}: {label}: {landed or 'run finished first'}")
    # and the chain's end equals a from-scratch build of the same logs
    fresh = tmp_path / "fresh"
    make(env_for(fresh, tz), "all")
    assert not diff_results(results(killed), results(fresh))
    figure("kill.chain.points", len(log))
    figure("kill.chain.log", log)
    assert sum("finished first" not in e for e in log) >= (8 if LONG else 2)


# ---------------------------------------------------------------- before every write
HOOK = Path(__file__).resolve().parent / "killhook"


def hooked(env, art, tmp, n, log=None):
    """``env`` with the kill hook (killhook/sitecustomize.py): SIGKILL before write ``n``."""
    counter = tmp / f"counter-{n}-{time.monotonic_ns()}"
    e = dict(env, PYTHONPATH=str(HOOK), TOKENTALLY_KILL_ROOT=str(art), TOKENTALLY_KILL_COUNTER=str(counter), TOKENTALLY_KILL_AT=str(n))
    if log:
        e["TOKENTALLY_KILL_LOG"] = str(log)
    return e


def count_writes(env, art, tmp) -> list[str]:
    """Run ``make all`` whole with the hook counting; return its writes in order."""
    log = tmp / f"writes-{time.monotonic_ns()}.log"
    make(hooked(env, art, tmp, 0, log), "all")
    return [line.split("\t", 2)[2] for line in log.read_text().splitlines()]


def stage_of(op: str) -> str:
    """The stage a write belongs to, from the path it touches."""
    path = op.split(" ", 1)[1].split(" -> ")[-1]
    if path in ("runs", "runs/.current") or (op.startswith("remove ") and path.startswith("runs/.current/")):
        return "cache-check"  # opening the run: the last run's fragments cleared
    if path.startswith("runs/.current/"):
        name = os.path.basename(path).lstrip(".").split(".")[0]  # a stage's fragment (run.json: the run opened)
        return "cache-check" if name == "run" else name.replace("_", "-")
    if path.endswith(".normalized"):
        return "normalize"
    for prefix, stage in (("runs/.current", "cache-check"), ("runs", "run-summary"), ("stamps", "cache-check"),
                          ("cache/manifest", "cache-check"), ("cache/normalize", "normalize"), ("cache", "cache-check"),
                          ("raw", "extract-cursor"), ("events", "normalize"), ("rollups", "normalize"),
                          ("aggregates", "aggregate"), ("reports/suggestions", "suggest"), ("reports/.suggestions", "suggest"),
                          ("reports", "price"), ("ui-snapshot", "snapshot"), (".ui-snapshot", "snapshot")):
        if path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + "."):
            return stage
    return "?"


def _sample(k: int, m: int) -> list[int]:
    if LONG or k <= m:
        return list(range(1, k + 1))
    return sorted({1 + round(i * (k - 1) / (m - 1)) for i in range(m)})


def _kill_before_writes(env, art_of, prepare, want, known, tmp, writes, m):
    per_stage: Counter = Counter()
    for n in _sample(len(writes), m):
        art = art_of(n)
        prepare(art)
        log = tmp / f"kill-{n}.log"
        p = start_make(hooked(env(art), art, tmp, n, log), "all")
        p.communicate(timeout=300)
        assert p.returncode == -9, f"kill before write {n} ({writes[n - 1]}): make exited {p.returncode}"
        killed_op = log.read_text().splitlines()[-1].split("\t", 2)[2]
        chk = check_bundle(art, known)
        assert not chk.problems, f"killed before write {n} ({killed_op}): {chk.problems[:5]}"
        make(env(art), "all")
        diff = diff_results(results(art), want)
        assert not diff, f"killed before write {n} ({killed_op}): the next run differs: {diff[:5]}"
        settled = check_bundle(art, known, settled=True)
        assert not settled.problems, f"killed before write {n} ({killed_op}): {settled.problems[:5]}"
        per_stage[stage_of(killed_op)] += 1
        shutil.rmtree(art)
    return per_stage


def test_kill_before_every_write_of_a_cold_run(tree, reference, tmp_path):
    """SIGKILL before the n-th file-system change a cold ``make all`` makes to the bundle, for
    every n (long profile; a spread sample in the fast one)."""
    writes = count_writes(tree.env(tmp_path / "count"), tmp_path / "count", tmp_path)
    per_stage = _kill_before_writes(lambda art: tree.env(art), lambda n: tmp_path / f"w{n:04d}", lambda art: None,
                                    results(reference), known_versions(reference), tmp_path, writes, 10)
    figure("kill.every_write.cold.writes_in_a_run", len(writes))
    figure("kill.every_write.cold.points", sum(per_stage.values()))
    figure("kill.every_write.cold.per_stage", dict(sorted(per_stage.items())))


def test_kill_before_every_write_of_an_incremental_run(tree, tmp_path):
    """The same on a run that resumes appended logs (and reads new files) with a warm cache."""
    full = tree.logs / "home"
    live = tmp_path / "live"

    def env(art):
        e = tree.env(art)
        e["CLAUDE_CONFIG_DIR"] = f"{live / '.claude'},{tree.fixtures / 'claude'}"
        e["CODEX_HOME"] = f"{live / '.codex'},{tree.fixtures / 'codex'}"
        return e

    _cut_logs(full, live, 0.5)
    age(live)
    before = tmp_path / "before"
    make(env(before), "all")
    _cut_logs(full, live, 0.8)  # fixed from here on: every kill starts from `before` + these logs
    after = tmp_path / "after"
    copy_bundle(before, after)
    writes = count_writes(env(after), after, tmp_path)
    fresh = tmp_path / "fresh"
    make(env(fresh), "all")
    assert not diff_results(results(after), results(fresh)), "an incremental run differs from a cold one"
    known = known_versions(before, after)
    per_stage = _kill_before_writes(env, lambda n: tmp_path / f"w{n:04d}", lambda art: copy_bundle(before, art),
                                    results(after), known, tmp_path, writes, 10)
    figure("kill.every_write.incremental.writes_in_a_run", len(writes))
    figure("kill.every_write.incremental.points", sum(per_stage.values()))
    figure("kill.every_write.incremental.per_stage", dict(sorted(per_stage.items())))
