"""aggregate: normalized events (or slot rollups) -> token totals per period, provider and model.

Pricing-independent: a price change never re-runs this stage.
"""
from __future__ import annotations

import glob
import os

import click

from scripts.cli import artifacts_option, filter_options, split_multi, stage_command, strict_option, timezone_option
from scripts.core.aggregation import REPORT_KINDS, Filters, aggregate_rollups
from scripts.core.rollup import Rollup
from scripts.core.runlog import StageTimer
from scripts.shared_io import STDIO, AtomicFile, Diagnostics, display_name, dumps_line, iter_jsonl, strict_from_env

REQUIRED = ("provider", "model", "timestamp", "usage")


def fallback_id(ev: dict) -> str:
    """A deterministic id for an event that has none (older formats): the same call
    always gets the same id, so a repeated line still counts once."""
    import hashlib

    from scripts.shared_io import dumps_line

    key = {k: ev.get(k) for k in ("provider", "model", "session_id", "timestamp", "usage")}
    return "sha1:" + hashlib.sha1(dumps_line(key)).hexdigest()


def rollup_from_events(path: str, diag: Diagnostics) -> list[list]:
    """Slot rollup of an events JSONL stream; events repeated by id count once."""
    roll = Rollup()
    seen: set[str] = set()
    name = display_name(path)
    for lineno, ev in iter_jsonl(path, diag):
        if not isinstance(ev, dict) or any(k not in ev for k in REQUIRED) or not isinstance(ev.get("usage"), dict):
            diag.bad_line(name, lineno, "not a normalized event (needs " + ", ".join(REQUIRED) + ")")
            continue
        event_id = ev.get("id") or fallback_id(ev)
        if event_id in seen:
            continue
        seen.add(event_id)
        try:
            ev["usage"] = {k: int(ev["usage"].get(k, 0) or 0) for k in _usage_keys()}
            ev["timestamp"] = normalize_timestamp(ev["timestamp"])
            ev.setdefault("session_id", "unknown")
            roll.add_event(ev)
        except (TypeError, ValueError, KeyError) as exc:
            diag.bad_line(name, lineno, f"bad event ({exc})")
    return roll.rows()


def normalize_timestamp(value):
    from scripts.core.event import normalize_timestamp as normalize

    return normalize(value)


def _usage_keys():
    from scripts.core.event import USAGE_KEYS

    return USAGE_KEYS


def rollup_from_files(paths: list[str]) -> list[list]:
    """The rows of rollup artifacts (``rollups/<source>.json``), concatenated."""
    from scripts.core.report_query import read_rollup_rows

    return read_rollup_rows(paths)


def transform(rollup_rows, *, timezone: str, filters: Filters, kinds=REPORT_KINDS, now_ms: int | None = None) -> dict:
    """The aggregates document (pure; ``now_ms``, if given, marks the active block)."""
    return aggregate_rollups(rollup_rows, timezone, filters, kinds, now_ms)


@stage_command("aggregate")
@click.argument("events", required=False, default=None)
@click.option("--rollups", "rollup_dir", default=None, help="Read slot rollups from this directory (what `make` uses) instead of events.")
@click.option("--report", "kinds", multiple=True, type=click.Choice(REPORT_KINDS), help="Only these report kinds (default all).")
@click.option("-o", "--output", default=STDIO, show_default=True, help="Where to write the aggregates document.")
@click.option("--force", is_flag=True, envvar="FORCE", help="With --rollups and -o: ignore the incremental state in $ARTIFACTS/cache/aggregate/ (env FORCE=1).")
@timezone_option
@filter_options
@artifacts_option
@strict_option
def cli(events, rollup_dir, kinds, output, force, timezone, since, until, providers, models, projects, artifacts, strict):
    """Total the tokens of normalized events by day, ISO week, month, session, project
    and 5-hour block, per provider and model, in the chosen time zone.

    EVENTS is a JSONL file of normalized events (``-`` = stdin).

    Example:

    \b
        normalize --source codex rollout.jsonl | aggregate - --timezone Europe/Berlin
        aggregate --rollups artifacts/rollups -o artifacts/aggregates/aggregates.json
    """
    from scripts.core.periods import parse_day, resolve_zone_name

    diag = Diagnostics(strict=strict_from_env(strict))
    timer = StageTimer(artifacts if rollup_dir else None, "aggregate")
    for value, what in ((since, "--since"), (until, "--until")):
        if value:
            parse_day(value, what)
    zone_name = resolve_zone_name(timezone)
    filters = Filters(since, until, split_multi(providers), split_multi(models), split_multi(projects))
    # no clock here: whether a block is active is decided by whoever reads the report
    outcome = "invalidate" if output != STDIO and os.path.exists(output) else "miss"
    if rollup_dir and output != STDIO and set(kinds or REPORT_KINDS) == set(REPORT_KINDS):
        # the bundle's case: redo only the report rows whose rollup rows changed, reading
        # only the rollup days needed (scripts/core/aggregate_incr.py); the bytes are
        # those of transform()
        from scripts.core.aggregate_incr import build_from_files

        stats, n_rows = build_from_files(glob.glob(os.path.join(rollup_dir, "*.json")), zone_name, filters, output,
                                         os.path.join(artifacts, "cache", "aggregate"), force)
        timer.finish(rollup_rows=n_rows, bad_lines=diag.bad_lines, cache_outcome=outcome, cache=stats.as_dict())
        return
    if rollup_dir:
        rows = rollup_from_files(glob.glob(os.path.join(rollup_dir, "*.json")))
    else:
        rows = rollup_from_events(events or STDIO, diag)
    doc = transform(rows, timezone=zone_name, filters=filters, kinds=kinds or REPORT_KINDS)
    with AtomicFile(output) as fh:
        fh.write(dumps_line(doc))  # compact: 12 MB less to write and parse than indented
    timer.finish(rollup_rows=len(rows), bad_lines=diag.bad_lines, cache_outcome=outcome)


main = cli

if __name__ == "__main__":
    cli()
