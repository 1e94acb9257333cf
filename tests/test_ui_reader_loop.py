"""A reader polling ui-snapshot.json while `make all` rewrites it never sees half a file.

The reader is a separate process that opens, reads and parses the file as fast as it
can; `make all` runs repeatedly with SNAPSHOT_MODE alternating, so every run rewrites the
snapshot (the mode is in view.fp). A control run with a writer that does *not* write
atomically shows the reader does catch torn files.
"""
from __future__ import annotations

import json
import os
import subprocess
import time

from conftest import PYTHON, make, sample_env
from ui_bundle import build_bundle

READER = r"""
import json, os, sys
path, stop = sys.argv[1], sys.argv[2]
reads = errors = missing = 0
versions, modes, bad = set(), set(), []
while not os.path.exists(stop):
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        missing += 1
        continue
    try:
        doc = json.loads(data)
        versions.add(doc["generated_at"])
        modes.add(doc["mode"])
    except Exception as exc:
        errors += 1
        if len(bad) < 3:
            bad.append(f"{type(exc).__name__}: {exc} ({len(data)} bytes)")
    reads += 1
print(json.dumps({"reads": reads, "errors": errors, "missing": missing, "versions": len(versions), "modes": sorted(modes), "bad": bad}))
"""


def start_reader(path, stop):
    return subprocess.Popen([PYTHON, "-c", READER, str(path), str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish_reader(proc, stop) -> dict:
    stop.write_text("")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


def test_reader_never_sees_a_torn_snapshot_while_make_rewrites_it(sample_logs, tmp_path, capsys):
    logs = sample_logs(2000)
    artifacts = build_bundle(logs, tmp_path, month="2026-08", mode="compact")
    snapshot = artifacts / "ui-snapshot.json"
    stop = tmp_path / "stop"
    reader = start_reader(snapshot, stop)
    runs = 6
    try:
        for i in range(runs):
            mode = "extended" if i % 2 == 0 else "compact"
            make("all", env=sample_env(logs, artifacts, MONTH="2026-08", SNAPSHOT_MODE=mode))
    finally:
        result = finish_reader(reader, stop)
    with capsys.disabled():
        print(f"\nreader loop: {result['reads']} reads during {runs} `make all` runs, {result['errors']} parse errors, "
              f"{result['missing']} missing, {result['versions']} distinct snapshots, modes {result['modes']}")
    assert result["errors"] == 0, result["bad"]
    assert result["missing"] == 0
    assert result["reads"] > 100
    assert result["versions"] >= runs, "every run rewrote the snapshot"
    assert result["modes"] == ["compact", "extended"]


def test_control_a_non_atomic_writer_is_caught(tmp_path):
    """The same reader does see torn files when the writer rewrites in place."""
    path = tmp_path / "ui-snapshot.json"
    body = json.dumps({"schema_version": 1, "generated_at": "x", "mode": "compact", "pad": "x" * 20000}).encode()
    path.write_bytes(body)
    stop = tmp_path / "stop"
    reader = start_reader(path, stop)
    try:
        time.sleep(0.2)
        for _ in range(30):
            with open(path, "wb") as fh:  # truncate, half, pause, rest: what an atomic write avoids
                fh.write(body[: len(body) // 2])
                fh.flush()
                os.fsync(fh.fileno())
                time.sleep(0.02)
                fh.write(body[len(body) // 2 :])
    finally:
        result = finish_reader(reader, stop)
    assert result["errors"] > 0
