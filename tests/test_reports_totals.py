"""Daily and monthly totals per provider and model against the generator's truth (UTC)
and against an independent computation from the events (America/Los_Angeles)."""
from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import load_events, load_json, make, sample_env, stage

EVENTS = 20_000
KINDS = ("daily", "weekly", "monthly", "sessions", "projects", "blocks")
# expected.json names -> our usage fields
EXPECTED_FIELDS = {
    "inputTokens": "input_tokens",
    "outputTokens": "output_tokens",
    "cacheCreationTokens": "cache_write_tokens",
    "cacheCreation1hTokens": "cache_write_1h_tokens",
    "cacheReadTokens": "cache_read_tokens",
    "reasoningTokens": "reasoning_tokens",
    "totalTokens": "total_tokens",
    "events": "events",
}
USAGE = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens", "tool_input_tokens",
         "tool_output_tokens", "reasoning_tokens", "cache_write_1h_tokens")


@pytest.fixture(scope="module")
def bundle(sample_logs, tmp_path_factory, plain_book):
    """20k generated calls priced with the plain LiteLLM import (what expected.json uses;
    the committed book adds a long-context tier, see tests/test_pricing_peers.py)."""
    logs = sample_logs(EVENTS, 42)
    art = tmp_path_factory.mktemp("totals") / "art"
    make("all", env=sample_env(logs, art, TIMEZONE="UTC", PRICING=plain_book))
    return logs, art, plain_book


def _report(art: Path, kind: str) -> dict:
    return load_json(art / "reports" / f"{kind}.json")


def _assert_matches(ours: dict, truth: dict, where: str) -> None:
    for theirs, mine in EXPECTED_FIELDS.items():
        assert ours[mine] == truth[theirs], f"{where}: {mine} {ours[mine]} != {truth[theirs]}"
    assert ours["cost_usd"] == pytest.approx(truth["costUSD"], rel=1e-3), where


def test_daily_totals_equal_expected_utc(bundle):
    logs, art, _ = bundle
    expected = load_json(logs / "expected.json")
    daily = _report(art, "daily")
    periods = {p["period"]: p for p in daily["periods"]}
    assert sorted(periods) == sorted(expected["byDay"])
    for day, truth in expected["byDay"].items():
        _assert_matches(periods[day], truth, day)
    _assert_matches(daily["totals"], expected["totals"], "totals")


def test_monthly_totals_per_provider_and_model_equal_expected_utc(bundle):
    logs, art, _ = bundle
    expected = load_json(logs / "expected.json")
    monthly = _report(art, "monthly")
    periods = {p["period"]: p for p in monthly["periods"]}
    assert sorted(periods) == sorted(expected["byMonth"])
    for month, truth in expected["byMonth"].items():
        _assert_matches(periods[month], truth, month)
    providers = {p["provider"]: p for p in monthly["by_provider"]}
    for source, truth in expected["bySource"].items():
        _assert_matches(providers[source], truth, source)
    models = {p["model"]: p for p in monthly["by_model"]}
    for raw, truth in expected["byModel"].items():
        canonical = raw.rsplit("-", 1)[0] if raw[-8:].isdigit() else raw
        _assert_matches(models[canonical], truth, raw)
    # every report covers the same calls
    for kind in KINDS:
        assert _report(art, kind)["totals"]["total_tokens"] == expected["totals"]["totalTokens"], kind


def _independent(events: list[dict], zone: str, book: dict) -> tuple[dict, dict]:
    """(day, provider, model) and (month, provider, model) sums computed straight from
    the events with zoneinfo, and their cost from the book's flat rates."""
    tz = ZoneInfo(zone)
    day_sums: dict = defaultdict(lambda: defaultdict(float))
    month_sums: dict = defaultdict(lambda: defaultdict(float))
    for ev in events:
        t = dt.datetime.fromisoformat(ev["timestamp"].replace("Z", "+00:00")).astimezone(tz)
        u = ev["usage"]
        rates = book["models"][ev["model"]]
        inp = rates["input_usd_per_mtok"]
        cw5 = rates.get("cache_write_5m_usd_per_mtok", inp)  # the book's documented defaults
        cw1h_rate = rates.get("cache_write_1h_usd_per_mtok", cw5)
        cr = rates.get("cache_read_usd_per_mtok", inp * 0.1)
        cw1h = u["cache_write_1h_tokens"]
        cost = (u["input_tokens"] * inp + u["output_tokens"] * rates["output_usd_per_mtok"]
                + (u["cache_write_tokens"] - cw1h) * cw5 + cw1h * cw1h_rate + u["cache_read_tokens"] * cr) / 1e6
        for sums, key in ((day_sums, (t.strftime("%Y-%m-%d"), ev["provider"], ev["model"])),
                          (month_sums, (t.strftime("%Y-%m"), ev["provider"], ev["model"]))):
            s = sums[key]
            for k in USAGE:
                s[k] += u[k]
            s["events"] += 1
            s["cost"] += cost
    return day_sums, month_sums


def _check_rows(rows: list[dict], truth: dict, where: str) -> None:
    mine = {(r["period"], r["provider"], r["model"]): r for r in rows}
    assert sorted(mine) == sorted(truth), where
    for key, s in truth.items():
        for k in USAGE + ("events",):
            assert mine[key][k] == s[k], f"{where} {key} {k}"
        assert mine[key]["cost_usd"] == pytest.approx(s["cost"], rel=1e-3), f"{where} {key}"


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "UTC"])
def test_rows_per_provider_and_model_equal_independent_computation(bundle, zone):
    logs, art, plain = bundle
    events = load_events(art, "claude") + load_events(art, "codex")
    assert len(events) == EVENTS
    book = json.loads(plain.read_text())
    day_truth, month_truth = _independent(events, zone, book)
    for kind, truth in (("daily", day_truth), ("monthly", month_truth)):
        proc = stage("report", kind, "--format", "json", "--timezone", zone, "--artifacts", art, env={"PRICING": str(plain)})
        report = json.loads(proc.stdout)
        assert report["timezone"] == zone
        _check_rows(report["rows"], truth, f"{zone} {kind}")
    if zone != "UTC":
        # the zone matters: Los Angeles days are not UTC days
        utc = load_json(art / "reports" / "daily.json")
        assert {(r["period"], r["provider"], r["model"]): r["events"] for r in utc["rows"]} != {
            k: v["events"] for k, v in day_truth.items()
        }


def test_aggregate_in_los_angeles_from_the_make_graph(bundle, tmp_path):
    """TIMEZONE given to make buckets the cached reports the same way."""
    logs, art, plain = bundle
    la = tmp_path / "la"
    make("all", env=sample_env(logs, la, TIMEZONE="America/Los_Angeles", PRICING=plain))
    events = load_events(la, "claude") + load_events(la, "codex")
    book = json.loads(plain.read_text())
    day_truth, month_truth = _independent(events, "America/Los_Angeles", book)
    _check_rows(_report(la, "daily")["rows"], day_truth, "make daily LA")
    _check_rows(_report(la, "monthly")["rows"], month_truth, "make monthly LA")
