"""Cost of ../shared/peers/make_sample_logs.py logs (20,000 calls) through the whole pipeline
equals its expected.json, which prices from the same LiteLLM data.

The committed book knowingly differs from that copy in one place: Claude Sonnet 4.5's
>200k-token long-context tier (pricing-overrides.json). So the equality is tested with the
plain import (no overrides), and the committed book's surplus is checked to be exactly
that tier applied to the calls whose prompt exceeded 200k tokens.
"""
from __future__ import annotations

import pytest

from conftest import ROOT, load_events, load_json, make, sample_env, shared_path, stage

EVENTS = 20_000
TOLERANCE = 0.001  # 0.1%


@pytest.fixture(scope="module")
def runs(sample_logs, tmp_path_factory):
    logs = sample_logs(events=EVENTS, seed=42)
    tmp = tmp_path_factory.mktemp("peers")
    plain = tmp / "plain.json"
    stage("price", "import-litellm", shared_path("data", "litellm-model-prices.json"), "--source-date", "2026-11-25", "-o", plain)
    out = {}
    for name, book in (("plain", plain), ("committed", ROOT / "pricing.json")):
        artifacts = tmp / name
        make("all", env=sample_env(logs, artifacts, PRICING=book))
        out[name] = artifacts
    return load_json(logs / "expected.json"), out


def test_plain_import_matches_expected_cost(runs):
    expected, out = runs
    monthly = load_json(out["plain"] / "reports" / "monthly.json")
    totals = monthly["totals"]
    assert totals["events"] == expected["totals"]["events"] == EVENTS
    assert totals["total_tokens"] == expected["totals"]["totalTokens"]
    assert monthly["unpriced"] == []
    want = expected["totals"]["costUSD"]
    assert abs(totals["cost_usd"] - want) <= TOLERANCE * want
    assert abs(totals["cost_usd"] - want) < 0.01  # in fact equal to the cent
    for period in monthly["periods"]:
        month = expected["byMonth"][period["period"]]
        assert abs(period["cost_usd"] - month["costUSD"]) <= TOLERANCE * month["costUSD"]


def test_committed_book_differs_only_by_the_long_context_tier(runs):
    expected, out = runs
    plain = load_json(out["plain"] / "reports" / "monthly.json")["totals"]["cost_usd"]
    committed = load_json(out["committed"] / "reports" / "monthly.json")["totals"]["cost_usd"]
    base, tier = (3, 15, 3.75, 6, 0.3), (6, 22.5, 7.5, 12, 0.6)

    def cost(u, r):
        cw1h = u.get("cache_write_1h_tokens", 0)
        return (u["input_tokens"] * r[0] + u["output_tokens"] * r[1] + (u["cache_write_tokens"] - cw1h) * r[2]
                + cw1h * r[3] + u["cache_read_tokens"] * r[4]) / 1e6

    long_calls = [e for e in load_events(out["committed"], "claude")
                  if e["usage"]["input_tokens"] + e["usage"]["cache_write_tokens"] + e["usage"]["cache_read_tokens"] > 200_000]
    assert len(long_calls) == expected["generator"]["claude_calls_over_200k_prompt"] > 0
    assert {e["model"] for e in long_calls} == {"claude-sonnet-4-5"}
    delta = sum(cost(e["usage"], tier) - cost(e["usage"], base) for e in long_calls)
    assert committed - plain == pytest.approx(delta, abs=0.0001)  # rows are rounded to the micro-dollar
    assert committed > expected["totals"]["costUSD"]
