"""Run bookkeeping: each stage that runs leaves a fragment; the run summary joins them.

``cache-check`` opens a run (``runs/.current/run.json``); every stage that Make runs
writes ``runs/.current/<stage>.json`` with its duration, record counts and cache
metrics; ``run-summary`` turns them into ``runs/<run-id>.json`` and ``runs/latest.json``.
A stage Make skipped leaves no fragment: the summary records it as a cache hit.
"""
from __future__ import annotations

import datetime as dt
import os
import time

import orjson

from scripts.shared_io import AtomicFile, dumps_doc

CURRENT = ".current"


def runs_dir(artifacts: str) -> str:
    return os.path.join(artifacts, "runs")


def current_dir(artifacts: str) -> str:
    return os.path.join(artifacts, "runs", CURRENT)


def utc_now_iso() -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def start_run(artifacts: str) -> dict:
    """Open a new run: clear the previous run's fragments, record id and start time."""
    cur = current_dir(artifacts)
    os.makedirs(cur, exist_ok=True)
    for name in os.listdir(cur):
        if name.endswith(".json"):
            os.unlink(os.path.join(cur, name))
    now = dt.datetime.now(dt.timezone.utc)
    run = {
        "run_id": now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-{os.getpid()}",
        "started_at": utc_now_iso(),
        "started_ns": time.time_ns(),
    }
    write_fragment(artifacts, "run", run)
    return run


def write_fragment(artifacts: str, stage: str, data: dict) -> None:
    with AtomicFile(os.path.join(current_dir(artifacts), f"{stage}.json")) as fh:
        fh.write(dumps_doc(data))


def read_fragments(artifacts: str) -> dict[str, dict]:
    cur = current_dir(artifacts)
    out: dict[str, dict] = {}
    try:
        names = sorted(os.listdir(cur))
    except OSError:
        return out
    for name in names:
        if name.endswith(".json") and not name.startswith("."):
            try:
                with open(os.path.join(cur, name), "rb") as fh:
                    out[name[:-5]] = orjson.loads(fh.read())
            except (OSError, orjson.JSONDecodeError):
                continue
    return out


class StageTimer:
    """Times a stage and writes its fragment when a bundle directory is given."""

    def __init__(self, artifacts: str | None, stage: str):
        self.artifacts = artifacts
        self.stage = stage
        self.t0 = time.perf_counter()
        self.data: dict = {}

    def finish(self, **data) -> dict:
        self.data.update(data)
        self.data["duration_ms"] = round((time.perf_counter() - self.t0) * 1000, 1)
        self.data["ran"] = True
        if self.artifacts:
            write_fragment(self.artifacts, self.stage, self.data)
        return self.data
