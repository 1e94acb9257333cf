"""CLIProxyAPI runtime metrics: v7 records and v6 exports, each request once, latency
percentiles over successful requests, failure rates, bad records counted."""
from __future__ import annotations

import json

import pytest

from ledger_support import V7_SERIES, v7_record, write_archive
from scripts.core.ledger_runtime import UNKNOWN_PROVIDER, percentile, read_archive
from scripts.shared_io import DataError, Diagnostics


def test_v6_and_v7_archive(tmp_path):
    archive = read_archive(str(write_archive(tmp_path / "cliproxy")), Diagnostics())
    v7_requests = sum(len(lat) + f for _, _, lat, f in V7_SERIES)
    assert archive.files == 2
    assert archive.records == v7_requests + 1 + 3  # + the archived-twice line + three v6 details
    assert archive.duplicates == 1
    assert archive.used == v7_requests + 3
    claude = archive.series[("claude", "claude-sonnet-4-5")].metrics()  # canonical model: no date
    assert claude["requests"] == 12 and claude["failures"] == 2
    assert claude["failure_rate"] == round(2 / 12, 6)
    # nearest rank over the ten successful latencies 1000..10000: p50 = 5th, p95 = 10th
    assert (claude["latency_p50_ms"], claude["latency_p95_ms"], claude["latency_mean_ms"]) == (5000, 10000, 5500)
    assert claude["latency_samples"] == 10 and claude["ttft_p50_ms"] == 400
    assert claude["total_tokens"] == 12 * 1200
    v6 = archive.series[(UNKNOWN_PROVIDER, "claude-sonnet-4-5")].metrics()
    assert (v6["requests"], v6["failures"], v6["latency_p50_ms"], v6["latency_p95_ms"], v6["ttft_p50_ms"]) == (3, 1, 2100, 3300, None)
    assert v6["first_seen"] == "2026-04-01T10:00:00.123Z" and v6["last_seen"] == "2026-04-01T10:06:00.000Z"


def test_a_request_in_two_directories_counts_once(tmp_path):
    a = write_archive(tmp_path / "a")
    b = write_archive(tmp_path / "b")
    one = read_archive(str(a), Diagnostics())
    both = read_archive([str(a), str(b)], Diagnostics())
    assert both.used == one.used and both.duplicates == 2 * one.duplicates + one.used


def test_v7_without_request_id_dedupes_on_content(tmp_path):
    rec = v7_record(1, "codex", "gpt-5.2-codex", 700)
    rec.pop("request_id")
    (tmp_path / "a.jsonl").write_text(json.dumps(rec) + "\n" + json.dumps(rec) + "\n")
    archive = read_archive(str(tmp_path), Diagnostics())
    assert archive.used == 1 and archive.duplicates == 1


def test_other_json_shapes(tmp_path):
    snapshot = {"apis": {"k": {"models": {"gemini-2.5-pro": {"details": [{"timestamp": 1767225600000, "latency_ms": 900, "failed": False, "tokens": {"input_tokens": 5, "output_tokens": 6}}]}}}}}
    (tmp_path / "mgmt.json").write_text(json.dumps({"usage": snapshot, "failed_requests": 0}))
    (tmp_path / "list.json").write_text(json.dumps([v7_record(3, "gemini", "gemini-2.5-pro", 1200)]))
    archive = read_archive(str(tmp_path), Diagnostics())
    assert archive.series[(UNKNOWN_PROVIDER, "gemini-2.5-pro")].metrics()["total_tokens"] == 11
    assert archive.series[("gemini", "gemini-2.5-pro")].requests == 1


def test_bad_records_are_counted_and_strict_fails(tmp_path, capsys):
    good = json.dumps(v7_record(1, "claude", "claude-sonnet-4-5", 1000))
    (tmp_path / "u.jsonl").write_text(good + "\n{broken\n" + json.dumps({"hello": 1}) + "\n" + json.dumps(dict(v7_record(2, "claude", "x", 1), timestamp="yesterday")) + "\n")
    (tmp_path / "other.json").write_text(json.dumps({"not": "usage"}))
    archive = read_archive(str(tmp_path), Diagnostics())
    assert archive.used == 1
    assert archive.skipped == {"bad timestamp": 1, "not a CLIProxyAPI usage export": 1, "not a usage record": 1, "not valid JSON": 1}
    err = capsys.readouterr().err
    assert f"{tmp_path / 'u.jsonl'}:2: not valid JSON" in err and f"{tmp_path / 'u.jsonl'}:3: " in err
    with pytest.raises(DataError, match=r"other.json:1: not a CLIProxyAPI usage export"):
        read_archive(str(tmp_path), Diagnostics(strict=True))


def test_absent_archive_is_empty():
    archive = read_archive("/nonexistent/cliproxy", Diagnostics())
    assert archive.used == 0 and archive.summary()["present"] is False
    assert read_archive(None, Diagnostics()).summary()["files"] == 0


def test_percentile_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([7], 0.95) == 7
    assert percentile([1, 2, 3, 4], 0.5) == 2
    assert percentile(list(range(1, 21)), 0.95) == 19
    assert percentile(list(range(1, 101)), 0.95) == 95
