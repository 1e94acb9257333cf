"""golden: lock and verify the pipeline's totals on canonical generated logs.

The canonical input is ``make_sample_logs.py --events 20000 --seed 42`` (deterministic).
``golden lock`` runs ``make all`` on it and writes tests/golden/sample-<events>-seed<seed>.json:
token totals per source and per UTC day, cost per model, and a hash of each events file
(its day files joined in name order, with the temp path replaced). ``golden verify`` runs it again and checks the result
equals the locked file exactly, and that the token totals equal the generator's
expected.json exactly.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile

import click

from scripts.cli import stage_command
from scripts.core import event_files
from scripts.core.sample_logs import ROOT, generate, pipeline_env
from scripts.shared_io import DataError, dumps_doc, write_doc

BUCKETS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_write_1h_tokens", "cache_read_tokens", "reasoning_tokens")
EXPECTED_KEYS = {
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "cache_write_tokens": "cacheCreationTokens",
    "cache_write_1h_tokens": "cacheCreation1hTokens",
    "cache_read_tokens": "cacheReadTokens",
    "reasoning_tokens": "reasoningTokens",
}


def golden_path(events: int, seed: int) -> str:
    return os.path.join(ROOT, "tests", "golden", f"sample-{events}-seed{seed}.json")


def build(events: int, seed: int, workdir: str) -> tuple[dict, dict]:
    """Run the canonical pipeline; return (golden document, generator expected.json)."""
    logs = generate(workdir, events, seed)
    art = os.path.join(workdir, "bundle")
    env = pipeline_env(os.path.join(logs, "home"), art, os.path.join(workdir, "home"),
                       PRICING=os.path.join(ROOT, "pricing.json"), DEVICE="golden")
    proc = subprocess.run(["make", "--no-print-directory", "-s", "all"], cwd=ROOT, env=env, capture_output=True)
    if proc.returncode != 0:
        raise DataError(f"make all failed: {proc.stderr.decode(errors='replace')[-500:]}")
    with open(os.path.join(logs, "expected.json")) as fh:
        expected = json.load(fh)
    by_source: dict[str, dict] = {}
    by_day: dict[str, dict] = {}
    hashes = {}
    prefix = (logs.rstrip("/") + "/").encode()
    for source in ("claude", "codex"):
        data = event_files.read_source(art, source)
        hashes[source] = hashlib.sha256(data.replace(prefix, b"<logs>/")).hexdigest()
        tot = {k: 0 for k in BUCKETS}
        tot["events"] = 0
        for line in data.splitlines():
            ev = json.loads(line)
            for k in BUCKETS:
                tot[k] += ev["usage"][k]
            tot["events"] += 1
            day = by_day.setdefault(ev["timestamp"][:10], {})
            day[source] = day.get(source, 0) + ev["total_tokens"]
        by_source[source] = tot
    with open(os.path.join(art, "reports", "monthly.json")) as fh:
        monthly = json.load(fh)
    doc = {
        "schema_version": 1,
        "inputs": {"generator": "make_sample_logs.py", "events": events, "seed": seed, "timezone": "UTC", "pricing": "pricing.json"},
        "by_source": by_source,
        "by_day": dict(sorted(by_day.items())),
        "cost_usd_by_model": {f"{r['provider']}/{r['model']}": r["cost_usd"] for r in monthly["by_model"]},
        "total_cost_usd": monthly["totals"]["cost_usd"],
        "events_sha256": hashes,
    }
    return doc, expected


def check_expected(doc: dict, expected: dict) -> list[str]:
    problems = []
    for source, tot in doc["by_source"].items():
        exp = expected["bySource"][source]
        for k, ek in EXPECTED_KEYS.items():
            if tot[k] != exp[ek]:
                problems.append(f"{source}.{k}: {tot[k]} != expected {exp[ek]}")
        if tot["events"] != exp["events"]:
            problems.append(f"{source}.events: {tot['events']} != expected {exp['events']}")
    for day, exp in expected["byDay"].items():
        got = sum(doc["by_day"].get(day, {}).values())
        if got != exp["totalTokens"]:
            problems.append(f"day {day}: {got} tokens != expected {exp['totalTokens']}")
    return problems


@stage_command("golden")
@click.argument("action", type=click.Choice(("lock", "verify")))
@click.option("--events", type=int, default=20_000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
def cli(action, events, seed):
    """Lock or verify the golden totals of the canonical generated logs.

    Example:

    \b
        golden lock      # after an intended change of the numbers (e.g. a new pricing book)
        golden verify    # in make check
    """
    with tempfile.TemporaryDirectory(prefix="tokentally-golden-") as work:
        doc, expected = build(events, seed, work)
    problems = check_expected(doc, expected)
    if problems:
        raise DataError("tokens differ from the generator's expected.json: " + "; ".join(problems[:5]))
    path = golden_path(events, seed)
    if action == "lock":
        write_doc(path, doc)
        click.echo(f"golden: locked {os.path.relpath(path, ROOT)}", err=True)
        return
    if not os.path.exists(path):
        raise DataError("no golden file; run `make golden-lock`", where=path)
    with open(path) as fh:
        locked = json.load(fh)
    if dumps_doc(locked) != dumps_doc(doc):
        diffs = [k for k in doc if doc[k] != locked.get(k)]
        raise DataError(f"differs from the locked golden file in {', '.join(diffs)} (intended? run `make golden-lock`)", where=path)
    click.echo(f"golden: {events:,} calls match {os.path.relpath(path, ROOT)} and expected.json exactly", err=True)


main = cli

if __name__ == "__main__":
    sys.exit(cli())
