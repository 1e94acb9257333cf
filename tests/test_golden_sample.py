"""Golden gate: on logs from ../shared/peers/make_sample_logs.py the claude and codex events
add up to its expected.json exactly, bucket by bucket and UTC day by day; and, when a
ccusage binary is given (CCUSAGE_BIN, installed outside the repo), to what
``ccusage daily --json --offline -z UTC`` reports on the same logs."""
from __future__ import annotations

import collections
import json
import os
import subprocess

import orjson
import pytest

from conftest import PYTHON, event_bytes, run_cmd, sample_env

KINDS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheCreation1hTokens", "cacheReadTokens", "reasoningTokens", "events", "totalTokens")


def ccusage_row(ev: dict) -> dict:
    u = ev["usage"]
    row = {
        "inputTokens": u["input_tokens"],
        "outputTokens": u["output_tokens"],
        "cacheCreationTokens": u["cache_write_tokens"],
        "cacheCreation1hTokens": u["cache_write_1h_tokens"],
        "cacheReadTokens": u["cache_read_tokens"],
        "reasoningTokens": u["reasoning_tokens"],
        "events": 1,
    }
    row["totalTokens"] = row["inputTokens"] + row["outputTokens"] + row["cacheCreationTokens"] + row["cacheReadTokens"]
    return row


def sums(artifacts) -> dict:
    """Totals of the bundle's claude and codex events: by source, model, UTC day, month."""
    out = {k: collections.defaultdict(collections.Counter) for k in ("bySource", "byModel", "byDay", "byMonth")}
    total = collections.Counter()
    for source in ("claude", "codex"):
        for line in event_bytes(artifacts, source).splitlines():
            ev = orjson.loads(line)
            row = ccusage_row(ev)
            for bucket, key in (("bySource", source), ("byModel", ev["raw_model"]), ("byDay", ev["timestamp"][:10]), ("byMonth", ev["timestamp"][:7])):
                out[bucket][key].update(row)
            total.update(row)
    out["totals"] = total
    return out


def mismatches(got: dict, expected: dict) -> list[str]:
    bad = []
    for bucket in ("bySource", "byModel", "byDay", "byMonth"):
        if set(got[bucket]) != set(expected[bucket]):
            bad.append(f"{bucket}: keys differ: {sorted(set(got[bucket]) ^ set(expected[bucket]))}")
            continue
        for key, want in expected[bucket].items():
            for kind in KINDS:
                if got[bucket][key][kind] != want[kind]:
                    bad.append(f"{bucket}[{key}].{kind}: {got[bucket][key][kind]} != {want[kind]}")
    for kind in KINDS:
        if got["totals"][kind] != expected["totals"][kind]:
            bad.append(f"totals.{kind}: {got['totals'][kind]} != {expected['totals'][kind]}")
    return bad


@pytest.fixture(scope="module")
def golden(sample_logs, tmp_path_factory):
    logs = sample_logs(20000, seed=42)
    art = tmp_path_factory.mktemp("golden") / "art"
    env = sample_env(logs, art)
    run_cmd([PYTHON, "-m", "scripts.normalize", "--bundle", "--source", "claude", "--source", "codex", "--artifacts", str(art)], env=env)
    with open(logs / "expected.json") as fh:
        expected = json.load(fh)
    return logs, art, expected


def test_claude_and_codex_equal_expected_json_at_20k(golden):
    logs, art, expected = golden
    got = sums(art)
    assert got["totals"]["events"] == 20000
    assert mismatches(got, expected) == []
    frag = json.loads((art / "runs" / ".current" / "normalize.json").read_text())["sources"]
    g = expected["generator"]
    assert frag["claude"]["duplicates"] == g["claude_duplicate_lines"]
    assert frag["codex"]["duplicates"] == g["codex_reemitted_lines"]
    assert frag["claude"]["rejected"] == frag["codex"]["rejected"] == 0
    assert frag["claude"]["balanced"] and frag["codex"]["balanced"]


def ccusage_daily(logs, ccusage: str, sandbox) -> dict:
    env = {"PATH": "/usr/bin:/bin", "TZ": "UTC", "NO_COLOR": "1", "LOG_LEVEL": "0", "HOME": str(sandbox / "home"),
           "XDG_CACHE_HOME": str(sandbox / "cache"), "XDG_CONFIG_HOME": str(sandbox / "config"),
           "CLAUDE_CONFIG_DIR": str(logs / "home" / ".claude"), "CODEX_HOME": str(logs / "home" / ".codex")}
    proc = subprocess.run([ccusage, "daily", "--json", "--offline", "-z", "UTC"], env=env, capture_output=True, timeout=300, check=True)
    return json.loads(proc.stdout)


def compare_with_ccusage(art, daily: dict) -> list[str]:
    got = sums(art)["byDay"]
    bad = []
    theirs = {row["period"]: row for row in daily["daily"]}
    if set(theirs) != set(got):
        return [f"days differ: {sorted(set(theirs) ^ set(got))}"]
    for day, row in theirs.items():
        for kind in ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "totalTokens"):
            if row[kind] != got[day][kind]:
                bad.append(f"{day}.{kind}: ccusage {row[kind]} != ours {got[day][kind]}")
    return bad


@pytest.mark.skipif(not os.environ.get("CCUSAGE_BIN"), reason="set CCUSAGE_BIN to a ccusage binary (installed outside the repo)")
def test_claude_and_codex_equal_ccusage_daily(golden, tmp_path):
    logs, art, _expected = golden
    assert compare_with_ccusage(art, ccusage_daily(logs, os.environ["CCUSAGE_BIN"], tmp_path)) == []
