"""`make ledger` on generated logs: builds the ledger after the events, rebuilds nothing
when nothing changed, and rebuilds when the benchmark table changes."""
from __future__ import annotations

import json

import pytest

from conftest import load_events, make, sample_env, shared_path
from ledger_support import write_archive

MODELS_CSV = shared_path("data", "models.csv")
pytestmark = pytest.mark.skipif(not MODELS_CSV.exists(), reason="../shared/data not present")


def test_make_ledger(sample_logs, tmp_path):
    logs = sample_logs(2000, 11)
    expected = json.loads((logs / "expected.json").read_text())
    artifacts = tmp_path / "artifacts"
    env = sample_env(logs, artifacts, MODELS_CSV=str(MODELS_CSV), CLIPROXY_USAGE_DIR=str(write_archive(tmp_path / "cliproxy")))
    first = make("ledger", env=env)
    assert b"ledger: " in first.stderr
    out = artifacts / "ledger"
    cov = json.loads((out / "coverage.json").read_text())
    # the archive is also a source: its successful requests are events beside the logs'
    proxied = load_events(artifacts, "cliproxy")
    assert proxied, "the CLIProxyAPI archive should give events"
    assert cov["inputs"]["events"]["events"] == expected["totals"]["events"] + len(proxied)
    assert cov["inputs"]["benchmarks"]["cells"] == 3304 and cov["inputs"]["cliproxy"]["present"]
    import sqlite3

    db = sqlite3.connect(out / "tokentally.db")
    tokens = db.execute("SELECT SUM(total_tokens) FROM events").fetchone()[0]
    proxied_tokens = sum(ev["total_tokens"] for ev in proxied)
    assert tokens == expected["totals"]["totalTokens"] + proxied_tokens == db.execute("SELECT SUM(usage_total_tokens) FROM ledger").fetchone()[0]
    db.close()

    mtime = (out / "tokentally.db").stat().st_mtime_ns
    again = make("ledger", env=env)
    assert b"ledger: " not in again.stderr
    assert (out / "tokentally.db").stat().st_mtime_ns == mtime

    rebuilt = make("ledger", env={**env, "MODELS_CSV": ""})
    assert b"ledger: " in rebuilt.stderr
    assert json.loads((out / "coverage.json").read_text())["inputs"]["benchmarks"] is None
