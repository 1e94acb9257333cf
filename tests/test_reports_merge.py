"""`make merge` of two machines' bundles that share half their events gives the same
reports as one bundle built from the union of their logs."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import load_events, load_json, load_jsonl, make, sample_env, stage

KINDS = ("daily", "weekly", "monthly", "sessions", "projects", "blocks")
COMPARED = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens", "reasoning_tokens",
            "cache_write_1h_tokens", "total_tokens", "events", "sessions", "first_timestamp", "last_timestamp",
            "cost_usd", "subscription_usd", "total_cost_usd", "cache_savings_usd")


def _copy_logs(logs: Path, files: list[Path], dest: Path) -> Path:
    for f in files:
        target = dest / f.relative_to(logs)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
    (dest / "home" / ".claude" / "projects").mkdir(parents=True, exist_ok=True)
    (dest / "home" / ".codex" / "sessions").mkdir(parents=True, exist_ok=True)
    return dest


def _pick(entry: dict) -> dict:
    return {k: entry.get(k) for k in COMPARED}


@pytest.fixture(scope="module")
def bundles(sample_logs, tmp_path_factory):
    logs = sample_logs(2000, 42)
    # per source, A holds the files of the first two thirds of the bytes, B those of the
    # last two thirds: the middle third (half of each bundle) is on both machines
    a_files, b_files = [], []
    for source in (".claude", ".codex"):
        files = sorted((logs / "home" / source).rglob("*.jsonl"))
        sizes = [f.stat().st_size for f in files]
        total, at = sum(sizes), 0
        for f, size in zip(files, sizes):
            if at < 2 * total / 3:
                a_files.append(f)
            if at + size > total / 3:
                b_files.append(f)
            at += size
    root = tmp_path_factory.mktemp("merge")
    a_logs = _copy_logs(logs, a_files, root / "logs-a")
    b_logs = _copy_logs(logs, b_files, root / "logs-b")
    union_logs = _copy_logs(logs, sorted(set(a_files) | set(b_files)), root / "logs-union")
    made = {}
    for name, src, device in (("a", a_logs, "laptop"), ("b", b_logs, "desktop"), ("union", union_logs, "one")):
        art = root / name
        make("all", env=sample_env(src, art, TIMEZONE="UTC", DEVICE=device))
        made[name] = art
    merged = root / "merged"
    make("merge", env=sample_env(union_logs, root / "unused", TIMEZONE="UTC", INPUTS=f"{made['a']} {made['b']}", MERGED=str(merged)))
    made["merged"] = merged
    return made


def _events(art: Path) -> list[dict]:
    return load_events(art, "claude") + load_events(art, "codex")


def test_the_bundles_share_half_their_events(bundles):
    a = {e["id"] for e in _events(bundles["a"])}
    b = {e["id"] for e in _events(bundles["b"])}
    shared = a & b
    assert 0.4 < len(shared) / len(a) < 0.6 and 0.4 < len(shared) / len(b) < 0.6
    merged = _events(bundles["merged"])
    assert len(merged) == len(a | b) == len({e["id"] for e in merged})
    # each event keeps the machine it was recorded on (shared ones: the first input's)
    devices = {e["device"] for e in merged}
    assert devices == {"laptop", "desktop"}


@pytest.mark.parametrize("kind", KINDS)
def test_merged_reports_equal_the_union_bundle(bundles, kind):
    merged = load_json(bundles["merged"] / "reports" / f"{kind}.json")
    union = load_json(bundles["union"] / "reports" / f"{kind}.json")
    assert _pick(merged["totals"]) == _pick(union["totals"])
    for part in ("rows", "periods", "by_provider", "by_model"):
        key = lambda e: (e.get("period"), e.get("provider"), e.get("model"))  # noqa: E731
        assert [(key(e), _pick(e)) for e in merged[part]] == [(key(e), _pick(e)) for e in union[part]], part


def test_merged_bundle_is_complete(bundles):
    merged = bundles["merged"]
    for name in ("aggregates/aggregates.json", "reports/suggestions.json", "ui-snapshot.json"):
        assert (merged / name).exists(), name
    assert load_json(merged / "reports" / "suggestions.json")["month"] == "2026-09"


def test_merge_refuses_what_is_not_a_bundle(tmp_path):
    proc = stage("merge", "--out", tmp_path / "out", tmp_path, check=False)
    assert proc.returncode == 1
    assert proc.stderr.decode().strip().endswith("not a bundle: it has no events/ directory (copy the whole artifacts directory)")
    assert len(proc.stderr.decode().strip().splitlines()) == 1


def test_merge_counts_every_line(tmp_path):
    """Inputs in the day layout and in the older one file per source (a bundle from a
    machine that runs an older version) merge alike."""
    bundle = tmp_path / "b1"
    (bundle / "events" / "claude").mkdir(parents=True)
    good = ('{"id":"x1","provider":"claude","model":"m","session_id":"s","timestamp":"2026-08-01T10:00:00.000Z",'
            '"usage":{"input_tokens":5,"output_tokens":1},"total_tokens":6,"device":"d1"}\n')
    bigger = good.replace('"input_tokens":5', '"input_tokens":50').replace('"total_tokens":6', '"total_tokens":51').replace("d1", "d2")
    (bundle / "events" / "claude" / "2026-08-01.jsonl").write_text(good + "not json\n" + good)
    other = tmp_path / "b2"
    (other / "events").mkdir(parents=True)
    (other / "events" / "claude.jsonl").write_text(bigger)
    proc = stage("merge", "--out", tmp_path / "out", bundle, other)
    err = proc.stderr.decode()
    assert "b1/events/claude/2026-08-01.jsonl:2: not valid JSON" in err
    assert "1 events from 3 event lines (2 duplicates, 1 bad lines)" in err
    kept = load_jsonl(tmp_path / "out" / "events" / "claude" / "2026-08-01.jsonl")
    assert sorted(p.name for p in (tmp_path / "out" / "events").rglob("*")) == ["2026-08-01.jsonl", "claude"]
    assert [e["device"] for e in kept] == ["d2"]  # the copy with more tokens wins
    rollup = load_json(tmp_path / "out" / "rollups" / "claude.json")
    assert rollup["rows"][0][10] == 50
