"""Shared test fixtures: paths, the sample-log generator, running commands and make."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = (ROOT.parent / "shared") if (ROOT.parent / "shared").is_dir() else Path(os.environ.get("TOKENTALLY_SHARED", "/work/shared"))
FIXTURES = ROOT / "fixtures"
SCHEMAS = ROOT / "schemas"
PYTHON = sys.executable


def shared_path(*parts: str) -> Path:
    """A path in ../shared (the generator and reference data). Where that folder is
    absent (a copy of the project elsewhere), the tests that need it are skipped, saying so."""
    if not SHARED.is_dir():
        pytest.skip(f"needs ../shared (sample-log generator and reference data); not found at {SHARED}", allow_module_level=True)
    return SHARED.joinpath(*parts)


def run_cmd(args, *, env=None, input=None, cwd=ROOT, check=True, timeout=600):
    """Run a command with a clean, test-controlled environment; return CompletedProcess."""
    full_env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    full_env.setdefault("PATH", "/usr/bin:/bin")
    full_env.update(env or {})
    proc = subprocess.run(args, cwd=cwd, env=full_env, input=input, capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout.decode(errors='replace')[-3000:]}\nstderr:\n{proc.stderr.decode(errors='replace')[-3000:]}")
    return proc


def stage(name: str, *args, **kw):
    """Run a stage as `python -m scripts.<name>` with the test interpreter."""
    return run_cmd([PYTHON, "-m", f"scripts.{name}", *map(str, args)], **kw)


def make(*targets, env=None, check=True, timeout=900):
    """Run the real Make in the checkout; HOME is an empty directory unless given."""
    base = {"HOME": env.get("HOME") if env and "HOME" in env else str(ROOT / ".test-home")}
    base.update(env or {})
    os.makedirs(base["HOME"], exist_ok=True)
    return run_cmd(["make", "--no-print-directory", *targets], env=base, check=check, timeout=timeout)


_SAMPLE_CACHE: dict[tuple, Path] = {}


@pytest.fixture(scope="session")
def sample_logs(tmp_path_factory):
    """Factory: generate logs with ../shared/peers/make_sample_logs.py once per (events, seed).

    Returns the output dir (with home/.claude, home/.codex and expected.json)."""

    def make_logs(events: int = 2000, seed: int = 42, **extra) -> Path:
        key = (events, seed, tuple(sorted(extra.items())))
        if key not in _SAMPLE_CACHE:
            out = tmp_path_factory.mktemp(f"sample{events}_{seed}")
            args = [PYTHON, str(shared_path("peers", "make_sample_logs.py")), "--out", str(out), "--events", str(events), "--seed", str(seed)]
            for k, v in extra.items():
                args += [f"--{k.replace('_', '-')}", str(v)]
            run_cmd(args)
            _SAMPLE_CACHE[key] = out
        return _SAMPLE_CACHE[key]

    return make_logs


def sample_env(logs_dir: Path, artifacts: Path, **extra) -> dict:
    """Make/stage environment that points every source at generated logs (others absent)."""
    home = logs_dir / "home"
    env = {
        "HOME": str(logs_dir / "empty-home"),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "CODEX_HOME": str(home / ".codex"),
        "ARTIFACTS": str(artifacts),
        "TIMEZONE": "UTC",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def load_jsonl(path) -> list[dict]:
    with open(path, "rb") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_json(path):
    with open(path, "rb") as fh:
        return json.load(fh)


@pytest.fixture(scope="session")
def plain_book(tmp_path_factory) -> Path:
    """The pricing book imported from the shared LiteLLM copy without our overrides: the
    prices make_sample_logs.py's expected.json uses (no long-context tier)."""
    out = tmp_path_factory.mktemp("plain-book") / "plain.json"
    stage("price", "import-litellm", shared_path("data", "litellm-model-prices.json"), "--source-date", "2026-11-25", "-o", out)
    return out


def event_bytes(artifacts, source) -> bytes:
    """A source's whole event stream in a bundle: its day files events/<source>/<day>.jsonl
    joined in day order (what `cat events/<source>/*.jsonl` prints)."""
    return b"".join(p.read_bytes() for p in sorted((Path(artifacts) / "events" / source).glob("*.jsonl")))


def load_events(artifacts, source) -> list[dict]:
    return [json.loads(line) for line in event_bytes(artifacts, source).splitlines() if line.strip()]
