"""snapshot --statusline: the line, finding the bundle, stdin, errors, and its speed."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PYTHON, ROOT, run_cmd
from ui_bundle import build_bundle

from scripts.core import statusline


def ts(s: str) -> float:
    return dt.datetime.fromisoformat(s).timestamp()


def snapshot_doc(**over) -> dict:
    doc = {
        "schema_version": 1,
        "generated_at": "2026-08-20T11:50:00.000Z",
        "month": "2026-08",
        "timezone": "UTC",
        "mode": "compact",
        "totals": {"cost_usd": 82.812034, "tokens": 146378116, "blended_usd_per_mtok": 0.57, "session_count": 35, "skipped_unpriced_count": 0},
        "top_providers": [],
        "top_models": [],
        "suggestions": [],
        "today": {"date": "2026-08-20", "cost_usd": 4.1234, "tokens": 123},
        "latest_blocks": [
            {"provider": "claude", "start": "2026-08-20T10:00:00.000Z", "end": "2026-08-20T15:00:00.000Z",
             "first_timestamp": "2026-08-20T10:05:00.000Z", "last_timestamp": "2026-08-20T11:05:00.000Z",
             "total_tokens": 3_000_000, "cost_usd": 2.49, "total_cost_usd": 2.49},
            {"provider": "codex", "start": "2026-08-19T10:00:00.000Z", "end": "2026-08-19T15:00:00.000Z",
             "first_timestamp": "2026-08-19T10:05:00.000Z", "last_timestamp": "2026-08-19T11:05:00.000Z",
             "total_tokens": 1, "cost_usd": 9.0, "total_cost_usd": 9.0},
        ],
    }
    doc.update(over)
    return doc


def test_line_with_active_block_and_burn_rate():
    line = statusline.render(snapshot_doc(), ts("2026-08-20T12:00:00+00:00"))
    assert line == "today $4.12 · Aug $82.81 · block claude $2.49 @ $2.49/h, 3h00m left"


def test_line_without_block_stale_day_other_month_and_unpriced():
    doc = snapshot_doc(totals={"cost_usd": None, "tokens": 5, "blended_usd_per_mtok": None, "session_count": 1, "skipped_unpriced_count": 3})
    # next morning, no snapshot since: today's cost is unknown (not $0), the block ended, the data is old
    line = statusline.render(doc, ts("2026-08-21T09:00:00+00:00"))
    assert line == "today n/a · Aug $?* · (data 21h10m old)"
    # a snapshot of a past month is labelled with the month itself
    line = statusline.render(snapshot_doc(), ts("2026-09-01T00:10:00+00:00"))
    assert line.startswith("today n/a · 2026-08 $82.81")


def test_today_in_the_snapshot_time_zone():
    doc = snapshot_doc(timezone="Asia/Tokyo", today={"date": "2026-08-21", "cost_usd": 1.0, "tokens": 1}, latest_blocks=[])
    # 2026-08-20 16:00 UTC is already the 21st in Tokyo
    assert statusline.render(doc, ts("2026-08-20T16:00:00+00:00")).startswith("today $1.00 · Aug")


def _run(args, *, env=None, cwd=None, input=None):
    return run_cmd([PYTHON, "-m", "scripts.snapshot", "--statusline", *map(str, args)], env=env, cwd=cwd or ROOT, input=input)


def test_missing_unreadable_and_unknown_version_never_fail(tmp_path):
    proc = _run(["--artifacts", tmp_path])
    assert proc.returncode == 0 and proc.stdout == b"tokentally: no snapshot yet (run make all)\n"
    assert str(tmp_path / "ui-snapshot.json") in proc.stderr.decode()
    (tmp_path / "ui-snapshot.json").write_text('{"schema_version": 1, "tot')
    assert _run(["--artifacts", tmp_path]).stdout == b"tokentally: snapshot unreadable\n"
    (tmp_path / "ui-snapshot.json").write_text(json.dumps({"schema_version": 2}))
    assert _run(["--artifacts", tmp_path]).stdout == b"tokentally: snapshot v2 not supported (update tokentally)\n"
    proc = run_cmd([PYTHON, "-m", "scripts.snapshot", "--statusline", "--bogus"], check=False)
    assert proc.returncode == 2


@pytest.fixture(scope="module")
def bundle(sample_logs, tmp_path_factory):
    return build_bundle(sample_logs(2000), tmp_path_factory.mktemp("ui-sl"), month="2026-08", mode="compact")


def test_finds_the_bundle_from_anywhere(bundle, tmp_path):
    expected = _run(["--artifacts", bundle]).stdout
    assert b"2026-08 $" in expected
    # ARTIFACTS from the environment, run from another directory
    assert _run([], env={"ARTIFACTS": str(bundle)}, cwd=tmp_path).stdout == expected
    # --artifacts wins over ARTIFACTS
    assert _run(["--artifacts", bundle], env={"ARTIFACTS": str(tmp_path)}, cwd=tmp_path).stdout == expected
    # neither: the checkout's own artifacts/, whatever the current directory
    assert statusline.checkout_artifacts() == str(ROOT / "artifacts")
    proc = _run([], cwd=tmp_path)
    own = ROOT / "artifacts" / "ui-snapshot.json"
    if own.exists():
        assert proc.stdout.startswith(b"today ")
    else:
        assert str(own) in proc.stderr.decode()
    # the statusline reads the snapshot only: no reports, no logs
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(bundle / "ui-snapshot.json", lone)
    assert _run(["--artifacts", lone]).stdout == expected


def test_accepts_claude_code_json_on_stdin_and_never_waits(bundle):
    payload = json.dumps({"session_id": "abc", "model": {"id": "claude-opus-4-5", "display_name": "Opus"},
                          "workspace": {"current_dir": "/tmp"}, "cost": {"total_cost_usd": 1.5}}).encode()
    expected = _run(["--artifacts", bundle]).stdout
    assert _run(["--artifacts", bundle], input=payload).stdout == expected
    # a writer that never closes stdin does not hold the line up
    t0 = time.monotonic()
    proc = subprocess.Popen([PYTHON, "-m", "scripts.snapshot", "--statusline", "--artifacts", str(bundle)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(payload)
    proc.stdin.flush()
    out = proc.stdout.read()
    proc.wait(timeout=5)
    proc.stdin.close()
    assert out == expected and time.monotonic() - t0 < 2


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "snapshot"
    return [str(script)] if script.exists() else [PYTHON, "-m", "scripts.snapshot"]


def test_statusline_is_fast_and_imports_no_click(bundle, capsys):
    cmd = [*_console_script(), "--statusline", "--artifacts", str(bundle)]
    walls = []
    for _ in range(20):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, cwd="/")
        walls.append((time.perf_counter() - t0) * 1000)
        assert proc.returncode == 0 and proc.stdout.startswith(b"today ")
    base = []
    for _ in range(20):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
        base.append((time.perf_counter() - t0) * 1000)
    with capsys.disabled():
        print(f"\nstatusline wall time over 20 runs of {' '.join(cmd[:2])}: median {statistics.median(walls):.1f} ms, "
              f"max {max(walls):.1f} ms (bare interpreter start: median {statistics.median(base):.1f} ms)")
    assert statistics.median(walls) < 100
    imports = subprocess.run([sys.executable, "-X", "importtime", "-m", "scripts.snapshot", "--statusline", "--artifacts", str(bundle)],
                             capture_output=True, cwd=ROOT).stderr.decode()
    loaded = {line.rsplit("|", 1)[-1].strip() for line in imports.splitlines() if line.startswith("import time:")}
    assert not {"click", "orjson", "jsonschema", "sqlite3"} & loaded, sorted(loaded)
