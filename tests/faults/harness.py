"""What the fault tests share: a fixture tree of all seven sources plus generated logs, make
runs that can be killed at a chosen moment, and the checks that a bundle is whole.

A *tree* is a copy of ``fixtures/`` (its SQLite databases built) and a generated Claude +
Codex history, with the environment that points ``make`` at both. The suite's figures (kill
points, fuzz cases, records accounted for, ...) are collected in ``FIGURES`` and printed at
the end of the session (``tests/faults/conftest.py``).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from adapter_harness import build_fixture_copy
from conftest import ROOT, run_cmd, shared_path
from scripts.core.schemas import errors, schema_for

PROFILE = os.environ.get("TOKENTALLY_FAULTS", "fast").strip() or "fast"
LONG = PROFILE == "long"
SOURCES = ("claude", "codex", "cursor", "droid", "opencode", "gemini", "cliproxy")
DEVICE = "faultbox"
FIGURES: dict[str, object] = {}


def figure(name: str, value) -> None:
    FIGURES[name] = value


# ---------------------------------------------------------------- trees
@dataclass
class Tree:
    fixtures: Path
    logs: Path  # generated: logs/home/.claude, logs/home/.codex, logs/expected.json
    home: Path
    extra_env: dict = field(default_factory=dict)

    def env(self, artifacts: Path, **extra) -> dict:
        fx = self.fixtures
        env = {
            "HOME": str(self.home),
            "ARTIFACTS": str(artifacts),
            "TIMEZONE": "UTC",
            "MONTH": "2026-08",
            "DEVICE": DEVICE,
            "CLAUDE_CONFIG_DIR": f"{self.logs / 'home' / '.claude'},{fx / 'claude'}",
            "CODEX_HOME": f"{self.logs / 'home' / '.codex'},{fx / 'codex'}",
            "CURSOR_STATE_DB": str(fx / "cursor" / "build" / "state.vscdb"),
            "DROID_SESSIONS_DIR": str(fx / "droid" / "sessions"),
            "OPENCODE_DATA_DIR": str(fx / "opencode" / "build"),
            "GEMINI_DATA_DIR": str(fx / "gemini"),
            "CLIPROXY_USAGE_DIR": str(fx / "cliproxy"),
        }
        env.update(self.extra_env)
        env.update({k: str(v) for k, v in extra.items()})
        return env


def generate_logs(out: Path, events: int, seed: int) -> Path:
    run_cmd([sys.executable, str(shared_path("peers", "make_sample_logs.py")), "--out", str(out), "--events", str(events), "--seed", str(seed)])
    return out


def build_tree(dest: Path, events: int = 3000, seed: int = 7, logs: Path | None = None) -> Tree:
    """A tree in ``dest``: the fixtures (databases built) and ``events`` generated calls
    (or a copy of the generated ``logs`` given)."""
    dest.mkdir(parents=True, exist_ok=True)
    fx = build_fixture_copy(dest)
    gen = dest / "gen"
    if logs is not None:
        shutil.copytree(logs, gen)
    else:
        generate_logs(gen, events, seed)
    home = dest / "empty-home"
    home.mkdir(exist_ok=True)
    return Tree(fixtures=fx, logs=gen, home=home)


# ---------------------------------------------------------------- make
def clean_env(env: dict) -> dict:
    full = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    full.setdefault("PATH", "/usr/bin:/bin")
    full.update(env)
    return full


def make(env: dict, *targets: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(["make", "--no-print-directory", *targets], cwd=ROOT, env=clean_env(env), capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"make {' '.join(targets)} exited {proc.returncode}\n{proc.stderr.decode(errors='replace')[-4000:]}")
    return proc


def start_make(env: dict, *targets: str, **kw) -> subprocess.Popen:
    """``make`` in a process group of its own, so one signal reaches every stage and worker."""
    return subprocess.Popen(["make", "--no-print-directory", *targets], cwd=ROOT, env=clean_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **kw)


def group_cmdlines(pgid: int) -> list[str]:
    """Command lines of the live processes in process group ``pgid``."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'
            fields = stat[stat.rindex(b")") + 2:].split()
            if int(fields[2]) != pgid or fields[0] == b"Z":
                continue
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                out.append(fh.read().replace(b"\0", b" ").decode(errors="replace").strip())
        except (OSError, ValueError):
            continue
    return out


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=60)
    # nothing of the group may outlive the kill (a worker writing on would spoil the check)
    deadline = time.monotonic() + 10
    while group_cmdlines(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not group_cmdlines(proc.pid), "processes of the killed run are still alive"


STAGE_MODULES = ("cache_check", "extract_cursor", "normalize", "refresh")
REFRESH_STEPS = ("cache_check", "extract_cursor", "normalize", "aggregate", "price", "suggest", "snapshot")


def where_now(cmdlines: list[str], art: Path) -> str:
    """Which stage a moment of the run is in, from its live processes and the fragments the
    finished stages left in runs/.current/."""
    for module in STAGE_MODULES:
        procs = [c for c in cmdlines if f"scripts.{module}" in c]
        if not procs:
            continue
        if module == "normalize" and len(procs) > 1:
            return f"normalize ({len(procs) - 1} parse workers)"
        if module == "refresh":
            if len(procs) > 1:
                return f"refresh, normalize ({len(procs) - 1} parse workers)"
            done = [s for s in REFRESH_STEPS if (art / "runs" / ".current" / f"{s}.json").exists()]
            return f"refresh, after {done[-1].replace('_', '-')}" if done else "refresh, cache-check"
        return module.replace("_", "-")
    if any("locked.sh" in c or c.startswith("flock") for c in cmdlines) and not any("bundle-graph" in c for c in cmdlines):
        return "taking the lock"
    if not cmdlines:
        return "before make started"
    return "make, between stages"


# ---------------------------------------------------------------- bundles
# The artifacts a run produces (compared byte for byte); runs/ and cache/ hold the clock,
# inode numbers and run ids, and are checked for validity instead.
RESULT_DIRS = ("events", "rollups", "aggregates", "reports", "raw")
RESULT_FILES = ("ui-snapshot.json",)


def _strip_clock(rel: str, data: bytes) -> bytes:
    if rel == "ui-snapshot.json":
        doc = orjson.loads(data)
        doc.pop("generated_at", None)
        # present once a run summary exists (docs/contracts/ui-snapshot.md): a first build
        # lacks it, a later one has it, by contract
        doc.pop("run_summary_path", None)
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    return data


def results(art: Path) -> dict[str, bytes]:
    """The bundle's result artifacts (relative path -> bytes; the snapshot without its clock)."""
    out = {}
    for d in RESULT_DIRS:
        base = art / d
        if base.is_dir():
            for p in sorted(base.rglob("*")):
                if p.is_file() and not p.name.startswith("."):
                    rel = p.relative_to(art).as_posix()
                    out[rel] = _strip_clock(rel, p.read_bytes())
    for name in RESULT_FILES:
        p = art / name
        if p.exists():
            out[name] = _strip_clock(name, p.read_bytes())
    for p in sorted((art / "stamps").glob("*.fp")) if (art / "stamps").is_dir() else []:
        if p.name != "view.fp":  # holds today's date
            out[p.relative_to(art).as_posix()] = p.read_bytes()
    return out


def diff_results(got: dict, want: dict) -> list[str]:
    problems = [f"missing {k}" for k in sorted(set(want) - set(got))]
    problems += [f"unexpected {k}" for k in sorted(set(got) - set(want))]
    problems += [f"differs: {k}" for k in sorted(set(got) & set(want)) if got[k] != want[k]]
    return problems


def is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


@dataclass
class Check:
    files: int = 0
    known: int = 0  # byte-identical to a version a whole run writes
    validated: int = 0  # parsed and checked against their schema
    temps: int = 0  # a writer's temp file, cut short by the kill
    garbage_packs: int = 0  # cache packs the index does not refer to (removed by the next run)
    problems: list = field(default_factory=list)


def check_bundle(art: Path, known: dict[str, set] | None = None, settled: bool = False) -> Check:
    """Every file under ``art`` is absent or complete and valid.

    A file whose bytes equal a version that a whole run writes (``known``: relative path ->
    set of byte strings) is complete by definition; any other JSON/JSONL file must parse and
    follow its schema, a Markdown report must end its last line, a stamp be a stamp. Temp
    files of a writer cut short and cache packs the index does not refer to are counted;
    ``settled`` (after a completed run) allows neither."""
    c = Check()
    known = known or {}
    if not art.exists():
        return c
    packs_referenced: dict[str, set] = {}
    for p in sorted(art.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(art).as_posix()
        c.files += 1
        if is_temp(p.name):
            c.temps += 1
            if settled:
                c.problems.append(f"{rel}: temp file left after a completed run")
            continue
        if rel == ".lock":
            continue
        data = p.read_bytes()
        parts = rel.split("/")
        if parts[0] == "cache" and parts[1] == "normalize":
            if p.name == "index.sqlite":
                doc = _read_index(p)
                if doc is None:
                    c.problems.append(f"{rel}: not a whole index")
                    continue
                c.problems += [f"{rel}: {m}" for m in _check_index(p.parent, doc)]
                packs_referenced[str(p.parent)] = set(doc.get("packs", {}))
                c.validated += 1
            continue  # packs: checked through their index below
        if rel == "cache/price/aggregates.previous.json":
            # price's hard link to the aggregates document it priced last (a whole one:
            # aggregate writes it by rename); compared with by the next run
            try:
                doc = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                c.problems.append(f"{rel}: not valid JSON ({exc})")
                continue
            if not isinstance(doc, dict) or doc.get("kind") != "aggregates":
                c.problems.append(f"{rel}: not an aggregates document")
            c.validated += 1
            continue
        if parts[0] == "cache" and parts[1] in ("aggregate", "price"):
            # the incremental aggregate's and price's states (binary, with their own digest)
            from scripts.core.view_cache import verify

            why = verify(data)
            if why:
                c.problems.append(f"{rel}: {why}")
            c.validated += 1
            continue
        cmp = _strip_clock(rel, data) if rel in RESULT_FILES else data
        if cmp in known.get(rel, ()):
            c.known += 1
            continue
        try:
            if rel.endswith(".normalized"):
                if data:
                    c.problems.append(f"{rel}: a .normalized stamp is empty")
                continue
            if rel.endswith(".md"):
                if data and not data.endswith(b"\n"):
                    c.problems.append(f"{rel}: cut short")
                c.validated += 1
                continue
            if rel.endswith(".jsonl"):
                if data and not data.endswith(b"\n"):
                    c.problems.append(f"{rel}: last line cut short")
                docs = [orjson.loads(line) for line in data.splitlines() if line.strip()]
            elif rel.endswith((".json", ".fp")):
                docs = [orjson.loads(data)]
            else:
                c.problems.append(f"{rel}: an artifact of unknown kind")
                continue
        except orjson.JSONDecodeError as exc:
            c.problems.append(f"{rel}: not valid JSON ({exc})")
            continue
        # stage fragments (runs/.current/) and listings (cache/manifest/) are internal: JSON only
        name = None if rel.startswith(("runs/.current/", "cache/manifest/")) else schema_for(rel)
        if name is None and not rel.startswith(("runs/.current/", "cache/manifest/")):
            c.problems.append(f"{rel}: no schema for this artifact")
        if name:
            for doc in docs:
                for msg in errors(doc, name, limit=2):
                    c.problems.append(f"{rel}: {msg}")
                    break
        c.validated += 1
    # packs: those the index refers to are complete (checked in _check_index); others are
    # garbage of a cut-short parse, deleted by the next normalize
    for d in sorted({p.parent for p in art.glob("cache/normalize/*/pack-*")}):
        for p in sorted(d.glob("pack-*")):
            if p.name not in packs_referenced.get(str(d), set()):
                c.garbage_packs += 1
                if settled:
                    c.problems.append(f"{p.relative_to(art)}: a pack no index refers to, after a completed run")
    return c


def _read_index(index: Path) -> dict | None:
    """An index database's packs and files as the next run sees them: a copy is opened
    (with the journal a killed run left, which SQLite rolls back), not the index itself.
    Its sum is not required to match: where it does not (a run killed between the commit
    and the sum's write), the next run rebuilds the index, never misreads it."""
    import sqlite3
    import tempfile

    from scripts.core.parse_index import read_packs

    with tempfile.TemporaryDirectory() as tmp:
        for suffix in ("", "-journal"):
            if Path(str(index) + suffix).exists():
                shutil.copyfile(str(index) + suffix, os.path.join(tmp, "index.sqlite" + suffix))
        try:
            con = sqlite3.connect(os.path.join(tmp, "index.sqlite"))
            try:
                packs = read_packs(con)
                files = {path: {"packed": packed} for path, packed in con.execute("SELECT path, packed FROM files")}
            finally:
                con.close()
        except sqlite3.DatabaseError:
            return None
    return {"packs": packs, "files": files}


def _check_index(directory: Path, doc: dict) -> list[str]:
    out = []
    for name, size in doc.get("packs", {}).items():
        p = directory / name
        if not p.exists():
            out.append(f"pack {name} is missing")
        elif p.stat().st_size != size:
            out.append(f"pack {name} has {p.stat().st_size} bytes, the index says {size}")
    from scripts.core.event_cache import location

    for path, e in doc.get("files", {}).items():
        for day, seg in location(e)[0].items():
            if seg[0] in doc.get("packs", {}) and seg[1] + seg[2] > doc["packs"][seg[0]]:
                out.append(f"{path}: segment of {day} beyond its pack")
    return out


def known_versions(*bundles: Path) -> dict[str, set]:
    """Relative path -> the byte versions these (complete) bundles hold."""
    out: dict[str, set] = {}
    for art in bundles:
        for p in art.rglob("*"):
            if p.is_file() and not is_temp(p.name):
                rel = p.relative_to(art).as_posix()
                data = p.read_bytes()
                out.setdefault(rel, set()).add(_strip_clock(rel, data) if rel in RESULT_FILES else data)
    return out


def copy_bundle(src: Path, dst: Path) -> None:
    """A copy that keeps modification times (Make's cache is in them)."""
    shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copy2)
