"""report: print one report from the bundle's cached artifacts, in well under a second.

Reads ``$ARTIFACTS/reports/<kind>.json``; a filter or time zone the cached report cannot
answer is re-aggregated from ``$ARTIFACTS/rollups/`` in-process. Never reads the logs.
"""
from __future__ import annotations

import sys

import click

from scripts.cli import artifacts_option, filter_options, split_multi, stage_command

KINDS = ("daily", "weekly", "monthly", "sessions", "projects", "blocks")


@stage_command("report")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--format", "fmt", type=click.Choice(("table", "markdown", "json", "csv")), default="table", show_default=True, help="Output format.")
@click.option("--by", "view", type=click.Choice(("row", "period", "provider", "model")), default="row", show_default=True,
              help="One line per period x provider x model (row), per period, per provider or per model.")
@click.option("--timezone", "timezone", default=None, help="IANA zone (default: the zone the bundle was built in).")
@click.option("--pricing", envvar="PRICING", default=None, help="Pricing book for re-aggregated answers (default: the bundle's).")
@click.option("--active", "active_only", is_flag=True, help="blocks: only the active block(s), with burn rate and projection.")
@click.option("--now", "now", default=None, help="blocks: the moment that decides which block is active (ISO 8601; default: now).")
@filter_options
@artifacts_option
def cli(kind, fmt, view, timezone, pricing, active_only, now, since, until, providers, models, projects, artifacts):
    """Print a daily, weekly, monthly, sessions, projects or blocks report.

    The answer comes from the bundle `make all` wrote: the cached report, or for
    other dates, providers, models, projects or time zone, the bundle's slot rollups
    (no log is read). Dates are YYYY-MM-DD in the time zone. For blocks, the active
    block (if any) is shown with its burn rate and a projection to its end.

    Example:

    \b
        report daily --since 2026-08-01 --format table
        report monthly --by provider --format markdown
        report sessions --project billing-api --format csv
        report blocks --active
    """
    from scripts.core.aggregation import Filters
    from scripts.core.periods import parse_day, resolve_zone_name
    from scripts.core.render import render
    from scripts.core.report_query import answer

    for value, what in ((since, "--since"), (until, "--until")):
        if value:
            parse_day(value, what)
    zone = resolve_zone_name(timezone) if timezone else None
    filters = Filters(since, until, split_multi(providers), split_multi(models), split_multi(projects))
    report, _how = answer(artifacts, kind, zone_name=zone, filters=filters, pricing_path=pricing)
    out = sys.stdout
    if kind == "blocks":
        _show_blocks(report, fmt, view, now, active_only, out)
        return
    out.write(render(report, fmt, view))


def _now_ms(now: str | None) -> int:
    import time

    if not now:
        return int(time.time() * 1000)
    from scripts.core.event import normalize_timestamp, timestamp_ms

    try:
        return timestamp_ms(normalize_timestamp(now))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--now") from None


def _show_blocks(report: dict, fmt: str, view: str, now: str | None, active_only: bool, out) -> None:
    """Blocks with the read-time verdict: which block is active, its burn rate."""
    from scripts.core.blocks import active_blocks, is_active
    from scripts.core.render import render
    from scripts.shared_io import dumps_doc

    now_ms = _now_ms(now)
    active = active_blocks(report, now_ms)
    if active_only:
        if fmt == "json":
            out.write(dumps_doc({"active_blocks": active}).decode())
        elif fmt == "csv":
            import csv

            keys = list(active[0]) if active else ["provider", "start", "end"]
            w = csv.DictWriter(out, keys, lineterminator="\n")
            w.writeheader()
            w.writerows(active)
        else:
            out.write(_describe_active(active) or "no active block\n")
        return
    if fmt == "json":
        doc = dict(report)
        doc["periods"] = [dict(p, active=is_active(p, now_ms)) for p in report.get("periods", [])]
        doc["active_blocks"] = active
        out.write(dumps_doc(doc).decode())
        return
    out.write(render(report, fmt, view))
    if fmt in ("table", "markdown") and active:
        out.write("\n" + _describe_active(active))


def _describe_active(active: list[dict]) -> str:
    lines = []
    for b in active:
        cost = "unpriced" if b["cost_usd"] is None else f"${b['cost_usd']:,.2f}"
        rate = "" if b["burn_rate_usd_per_hour"] is None else f", ${b['burn_rate_usd_per_hour']:,.2f}/h"
        proj = "" if b["projected_cost_usd"] is None else f", ${b['projected_cost_usd']:,.2f}"
        lines.append(
            f"active block ({b['provider']}): {b['start']} to {b['end']}, {b['tokens']:,} tokens, {cost}; "
            f"burn rate {b['burn_rate_tokens_per_hour']:,.0f} tokens/h{rate}; "
            f"projected by its end ({b['remaining_minutes']:.0f} min left): {b['projected_tokens']:,} tokens{proj}"
        )
    return "\n".join(lines) + ("\n" if lines else "")


main = cli

if __name__ == "__main__":
    cli()
