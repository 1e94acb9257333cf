"""Generated logs for benchmarks and golden checks (../shared/peers/make_sample_logs.py),
and the clean environment `make all` runs in when pointed at them."""
from __future__ import annotations

import os
import subprocess
import sys

from scripts.shared_io import DataError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def shared_dir() -> str | None:
    for cand in (os.environ.get("TOKENTALLY_SHARED"), os.path.join(os.path.dirname(ROOT), "shared"), "/work/shared"):
        if cand and os.path.exists(os.path.join(cand, "peers", "make_sample_logs.py")):
            return cand
    return None


def generate(workdir: str, events: int, seed: int, start: str = "2026-08-01", days: int = 60) -> str:
    """Generated logs, reused when already there (generation takes ~10 s per 200k calls)."""
    shared = shared_dir()
    if shared is None:
        raise DataError("../shared/peers/make_sample_logs.py not found (set TOKENTALLY_SHARED)")
    out = os.path.join(workdir, f"logs-{events}-{seed}-{start}-{days}")
    if not os.path.exists(os.path.join(out, "expected.json")):
        subprocess.run(
            [sys.executable, os.path.join(shared, "peers", "make_sample_logs.py"), "--out", out, "--events", str(events),
             "--seed", str(seed), "--start", start, "--days", str(days)],
            check=True, capture_output=True,
        )
    return out


def pipeline_env(home: str, artifacts: str, user_home: str, **extra: str) -> dict:
    """The environment for `make all` on generated logs under ``home`` (its .claude and
    .codex), with an empty ``user_home`` so no real log is read, in UTC."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    env.update(
        HOME=user_home,
        CLAUDE_CONFIG_DIR=os.path.join(home, ".claude"),
        CODEX_HOME=os.path.join(home, ".codex"),
        ARTIFACTS=artifacts,
        TIMEZONE="UTC",
        TZ="UTC",
    )
    env.update(extra)
    os.makedirs(user_home, exist_ok=True)
    return env
