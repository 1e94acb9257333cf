"""`bench --growth` (make bench-growth): peak RSS of make all as the history grows.

A tiny series runs end to end: generated logs of a few days and of more days, a cold
run and two later runs each, the tokens checked against the generator, a document that
follows its schema under bench/growth/ (not among the timing results the gate reads)."""
from __future__ import annotations

import json

from conftest import PYTHON, SCHEMAS, run_cmd, shared_path
from scripts.core import schemas


def test_a_growth_series_measures_each_history_and_writes_its_document(tmp_path):
    shared = shared_path()
    artifacts = tmp_path / "artifacts"
    proc = run_cmd([PYTHON, "-m", "scripts.bench", "--growth", "2,6", "--per-day", "40", "--artifacts", str(artifacts),
                    "--workdir", str(tmp_path / "work")], env={"TOKENTALLY_SHARED": str(shared)})
    err = proc.stderr.decode()
    assert "2 days, 80 calls" in err and "6 days, 240 calls" in err and "largest process, cold:" in err, err
    doc = json.loads((artifacts / "bench" / "growth" / "latest.json").read_text())
    assert schemas.errors(doc, "bench-growth.v1.schema.json") == [] and (SCHEMAS / "bench-growth.v1.schema.json").exists()
    assert [p["days"] for p in doc["series"]] == [2, 6] and doc["correct"] and all(p["correct"] for p in doc["series"])
    assert all(len(p["later"]["runs_s"]) == 2 and p["cold"]["peak_rss_mb"] > 0 for p in doc["series"])
    assert not list((artifacts / "bench").glob("*.json"))  # the gate's history holds timing results only
    # the generated logs stay as they were (the later runs append to a copy)
    assert not list((tmp_path / "work").glob("logs-240-*/home/**/*-r0.jsonl"))


def test_growth_days_must_be_a_list_of_numbers(tmp_path):
    proc = run_cmd([PYTHON, "-m", "scripts.bench", "--growth", "20,x", "--artifacts", str(tmp_path)], check=False)
    assert proc.returncode == 2 and b"not a comma-separated list of days" in proc.stderr
