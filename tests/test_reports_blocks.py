"""5-hour blocks as ccusage draws them: against a recorded `ccusage blocks --json --offline`
output (tests/golden/ccusage-blocks-seed11.json, made from generated logs), the block
rules at their edges, and the read-time active block and burn rate."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, load_json, make, sample_env, stage
from scripts.core.aggregation import BLOCK_MS, HOUR_MS, assign_blocks
from scripts.core.blocks import active_blocks, burn, is_active

GOLDEN = ROOT / "tests" / "golden" / "ccusage-blocks-seed11.json"
H = HOUR_MS
T0 = 1_785_556_800_000  # 2026-08-01T04:00:00Z


def _ours(art: Path) -> list[dict]:
    return [p for p in load_json(art / "reports" / "blocks.json")["periods"] if p["provider"] == "claude"]


def _compare(ours: list[dict], theirs: list[dict]) -> None:
    assert [b["start"] for b in ours] == [b["startTime"] for b in theirs]
    for mine, cc in zip(ours, theirs):
        where = cc["startTime"]
        assert mine["end"] == cc["endTime"], where
        assert mine["last_timestamp"] == cc["actualEndTime"], where
        assert mine["events"] == cc["entries"], where
        t = cc["tokenCounts"]
        assert (mine["input_tokens"], mine["output_tokens"], mine["cache_write_tokens"], mine["cache_read_tokens"]) == (
            t["inputTokens"], t["outputTokens"], t["cacheCreationInputTokens"], t["cacheReadInputTokens"]), where
        assert mine["total_tokens"] == cc["totalTokens"], where
        # ccusage prices the few >200k-prompt calls per field at its snapshot's tier rates
        assert mine["cost_usd"] == pytest.approx(cc["costUSD"], rel=0.02), where


def test_blocks_agree_with_recorded_ccusage(sample_logs, tmp_path, plain_book):
    golden = load_json(GOLDEN)
    logs = sample_logs(3000, 11, days=4)
    art = tmp_path / "art"
    # the plain LiteLLM import: the committed book bills >200k prompts whole at the tier rate
    make("all", env=sample_env(logs, art, TIMEZONE="UTC", PRICING=plain_book))
    ours = _ours(art)
    assert len(ours) == len(golden["blocks"]) == 12
    _compare(ours, golden["blocks"])


@pytest.mark.skipif(not os.environ.get("CCUSAGE_BIN"), reason="set CCUSAGE_BIN to compare with a live ccusage")
def test_blocks_agree_with_live_ccusage(sample_logs, tmp_path, plain_book):
    logs = sample_logs(20000, 42)
    art = tmp_path / "art"
    make("all", env=sample_env(logs, art, TIMEZONE="UTC", PRICING=plain_book))
    home = tmp_path / "cc"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TZ": "UTC", "NO_COLOR": "1", "LOG_LEVEL": "0",
           "XDG_CACHE_HOME": str(home / "cache"), "XDG_CONFIG_HOME": str(home / "config"),
           "CLAUDE_CONFIG_DIR": str(logs / "home" / ".claude")}
    out = subprocess.run([os.environ["CCUSAGE_BIN"], "blocks", "--json", "--offline"], env=env, capture_output=True, check=True)
    theirs = [b for b in json.loads(out.stdout)["blocks"] if not b["isGap"]]
    _compare(_ours(art), theirs)


def test_block_rules_at_their_edges():
    # a block starts at the hour of its first call
    assert assign_blocks({T0 + 15 * 60_000: [T0 + 20 * 60_000, T0 + 25 * 60_000]}) == {T0 + 15 * 60_000: T0}
    # more than 5 hours after the block's start: a new block, even without a gap
    spans = {T0 + k * 3_600_000: [T0 + k * H + 1000, T0 + k * H + 2000] for k in range(7)}
    starts = assign_blocks(spans)
    assert [starts[s] for s in sorted(spans)] == [T0] * 5 + [T0 + 5 * H] * 2
    # a gap of exactly 5 hours keeps the block; one millisecond more starts a new one
    a = T0 + 10 * 60_000
    assert assign_blocks({T0: [a, a], T0 + 4 * H: [a + 4 * H - 1, a + 4 * H - 1]})[T0 + 4 * H] == T0
    gap = {T0: [a, a], T0 + 5 * H + 900_000: [a + 5 * H + 1, a + 5 * H + 1]}
    assert assign_blocks(gap)[T0 + 5 * H + 900_000] == T0 + 5 * H
    # a call exactly 5 hours after the block's start stays in it (ccusage: "> 5 hours")
    assert assign_blocks({T0: [T0, T0], T0 + 5 * H: [T0 + 5 * H, T0 + 5 * H]})[T0 + 5 * H] == T0


def _block(first_ms: int, last_ms: int, tokens: int, cost: float | None) -> dict:
    from scripts.core.aggregation import iso_ms

    start = first_ms - first_ms % H
    return {"provider": "claude", "start": iso_ms(start), "end": iso_ms(start + BLOCK_MS), "first_timestamp": iso_ms(first_ms),
            "last_timestamp": iso_ms(last_ms), "total_tokens": tokens, "cost_usd": cost}


def test_active_block_burn_rate_and_projection():
    b = _block(T0 + 30 * 60_000, T0 + 90 * 60_000, 600_000, 6.0)  # 1 hour of calls
    now = T0 + 2 * H
    assert is_active(b, now)
    info = burn(b, now)
    assert info["burn_rate_tokens_per_hour"] == 600_000 and info["burn_rate_usd_per_hour"] == 6.0
    assert info["remaining_minutes"] == 180.0
    assert info["projected_tokens"] == 600_000 + 3 * 600_000 and info["projected_cost_usd"] == 24.0
    # after the block's end, or 5 hours after its last call, nothing is active
    assert not is_active(b, T0 + BLOCK_MS)
    assert active_blocks({"periods": [b]}, T0 + BLOCK_MS) == []
    assert [x["start"] for x in active_blocks({"periods": [b]}, now)] == [b["start"]]
    assert burn(_block(T0, T0, 100, None), T0)["burn_rate_usd_per_hour"] is None


def test_report_blocks_active_uses_the_clock_it_is_given(sample_logs, tmp_path):
    logs = sample_logs(3000, 11, days=4)
    art = tmp_path / "art"
    make("all", env=sample_env(logs, art, TIMEZONE="UTC"))
    last = _ours(art)[-1]
    inside = last["last_timestamp"]
    out = stage("report", "blocks", "--active", "--now", inside, "--artifacts", art).stdout.decode()
    assert f"active block (claude): {last['start']} to {last['end']}" in out
    assert "burn rate" in out and "projected" in out
    later = stage("report", "blocks", "--active", "--now", "2030-01-01T00:00:00Z", "--artifacts", art).stdout.decode()
    assert later == "no active block\n"
    doc = json.loads(stage("report", "blocks", "--format", "json", "--now", inside, "--artifacts", art).stdout)
    assert [p["start"] for p in doc["periods"] if p["active"] and p["provider"] == "claude"] == [last["start"]]
    assert [b["tokens"] for b in doc["active_blocks"] if b["provider"] == "claude"] == [last["total_tokens"]]
    # the artifact itself holds no clock
    assert all("active" not in p for p in load_json(art / "reports" / "blocks.json")["periods"])
