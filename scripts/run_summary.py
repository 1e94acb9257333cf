"""run-summary: join the stage fragments of this run into runs/<run-id>.json and runs/latest.json.

Make runs it last, every time. A stage that Make skipped left no fragment: it is a cache
hit. Source counts are carried over from the previous summary when normalize did not run
(nothing changed, so they are still true).
"""
from __future__ import annotations

import os

import click

from scripts.cli import artifacts_option, stage_command
from scripts.core.runlog import read_fragments, runs_dir, utc_now_iso
from scripts.shared_io import AtomicFile, dumps_doc, read_doc

RUN_SUMMARY_SCHEMA_VERSION = 1
STAGES = ("cache_check", "extract_cursor", "extract_cliproxy", "normalize", "aggregate", "price", "suggest", "snapshot")
# The caches a run can hit, and the stage that owns each.
CACHES = {"aggregates": "aggregate", "reports": "price", "snapshot": "snapshot"}
KEEP_RUNS = 50


def transform(fragments: dict, previous: dict | None, finished_at: str) -> dict:
    """The run summary from this run's fragments (pure)."""
    run = fragments.get("run") or {}
    stages = {}
    for name in STAGES:
        frag = fragments.get(name)
        if frag is None:
            stages[name] = {"ran": False}
        else:
            stages[name] = {k: v for k, v in frag.items() if k not in ("sources",)}
    norm = fragments.get("normalize")
    if norm is not None:
        sources = norm["sources"]
        prev_sources = (previous or {}).get("sources", {})
        for name, prev in prev_sources.items():
            sources.setdefault(name, prev)
    else:
        sources = (previous or {}).get("sources", {})
        for s in sources.values():
            s["cache"] = {"hit": s.get("files", 0), "miss": 0, "resumed": 0, "invalidate": 0, "deleted": s.get("deleted_files", 0)}
    parsed = {"hit": 0, "miss": 0, "resumed": 0, "invalidate": 0}
    for s in sources.values():
        for k in parsed:
            parsed[k] += (s.get("cache") or {}).get(k, 0)
    caches = {"parsed_events": parsed}
    for cache, stage in CACHES.items():
        frag = fragments.get(stage)
        outcome = (frag or {}).get("cache_outcome") or ("hit" if frag is None else "miss")
        caches[cache] = {"hit": int(outcome == "hit"), "miss": int(outcome == "miss"), "invalidate": int(outcome == "invalidate")}
    totals = {k: sum(s.get(k, 0) for s in sources.values()) for k in ("records", "events", "duplicates", "not_a_call", "rejected", "events_from_deleted_files")}
    totals["balanced"] = totals["events"] + totals["duplicates"] + totals["not_a_call"] + totals["rejected"] == totals["records"]
    return {
        "schema_version": RUN_SUMMARY_SCHEMA_VERSION,
        "run_id": run.get("run_id", "unknown"),
        "started_at": run.get("started_at"),
        "finished_at": finished_at,
        "status": "complete",
        "timezone": (fragments.get("cache_check") or {}).get("timezone"),
        "stages": stages,
        "caches": caches,
        "sources": dict(sorted(sources.items())),
        "totals": totals,
    }


@stage_command("run-summary")
@artifacts_option
@click.option("--quiet", is_flag=True, help="Do not print the one-line summary.")
def cli(artifacts, quiet):
    """Write the run summary for the run cache-check opened (runs/<run-id>.json and
    runs/latest.json) and print one line about it.

    Example:

    \b
        run-summary --artifacts artifacts && jq .totals artifacts/runs/latest.json
    """
    fragments = read_fragments(artifacts)
    latest = os.path.join(runs_dir(artifacts), "latest.json")
    previous = read_doc(latest) if os.path.exists(latest) else None
    summary = transform(fragments, previous, utc_now_iso())
    body = dumps_doc(summary)
    with AtomicFile(os.path.join(runs_dir(artifacts), f"{summary['run_id']}.json")) as fh:
        fh.write(body)
    with AtomicFile(latest) as fh:
        fh.write(body)
    _prune(runs_dir(artifacts))
    if not quiet:
        t = summary["totals"]
        ran = [s for s, v in summary["stages"].items() if v.get("ran")]
        click.echo(
            f"run {summary['run_id']}: {t['events']:,} events from {t['records']:,} records "
            f"({t['duplicates']:,} duplicates, {t['not_a_call']:,} not calls, {t['rejected']:,} rejected); "
            f"stages run: {', '.join(ran) or 'none (all cached)'}",
            err=True,
        )


def _prune(directory: str) -> None:
    runs = sorted(n for n in os.listdir(directory) if n.endswith(".json") and n != "latest.json" and not n.startswith("."))
    for name in runs[:-KEEP_RUNS]:
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


main = cli

if __name__ == "__main__":
    cli()
