"""snapshot: the one small file that menu-bar apps, editor plugins and prompts read.

Written atomically to ``$ARTIFACTS/ui-snapshot.json`` from the priced reports; see
docs/contracts/ui-snapshot.md.
"""
from __future__ import annotations

import os

import click

from scripts.cli import artifacts_option, stage_command, timezone_option
from scripts.core.runlog import StageTimer, utc_now_iso
from scripts.shared_io import AtomicFile, DataError, dumps_doc, read_doc

SNAPSHOT_SCHEMA_VERSION = 1
MODES = ("compact", "extended")
TOP_N = 5


def _load(reports_dir: str, kind: str) -> dict:
    path = os.path.join(reports_dir, f"{kind}.json")
    if not os.path.exists(path):
        raise DataError("missing; run `make all` first", where=path)
    return read_doc(path)


def _summary_row(name: str, row: dict) -> dict:
    return {
        "name": name,
        "tokens": row["total_tokens"],
        "total_cost_usd": row.get("total_cost_usd") or 0.0,
        "blended_usd_per_mtok": row.get("blended_usd_per_mtok"),
        "session_count": row["sessions"],
    }


def transform(monthly: dict, daily: dict, blocks: dict | None, *, month: str, today: str, mode: str, generated_at: str, links: dict, timezone: str) -> dict:
    """The snapshot document (pure: the clock comes in as arguments)."""
    month_total = next((p for p in monthly["periods"] if p["period"] == month), None)
    providers = [p for p in monthly.get("period_providers", []) if p["period"] == month]
    models = [r for r in monthly["rows"] if r["period"] == month]
    providers.sort(key=lambda r: (-(r.get("total_cost_usd") or 0), -r["total_tokens"], r["provider"]))
    models.sort(key=lambda r: (-(r.get("total_cost_usd") or 0), -r["total_tokens"], r["provider"], r["model"]))
    limit = None if mode == "extended" else TOP_N
    day_row = next((p for p in daily["periods"] if p["period"] == today), None)
    unpriced_events = sum(r["events"] for r in models if r.get("priced_as") is None)
    doc = {
        "schema_version": SNAPSHOT_SCHEMA_VERSION,
        "generated_at": generated_at,
        "month": month,
        "timezone": timezone,
        "mode": mode,
        "totals": {
            "cost_usd": (month_total or {}).get("total_cost_usd") or 0.0,
            "tokens": (month_total or {}).get("total_tokens", 0),
            "blended_usd_per_mtok": (month_total or {}).get("blended_usd_per_mtok"),
            "session_count": (month_total or {}).get("sessions", 0),
            "skipped_unpriced_count": unpriced_events,
        },
        "top_providers": [_summary_row(p["provider"], p) for p in providers[:limit]],
        "top_models": [dict(_summary_row(r["model"], r), provider=r["provider"]) for r in models[:limit]],
        "suggestions": [],
        "today": {"date": today, "cost_usd": (day_row or {}).get("total_cost_usd") or 0.0, "tokens": (day_row or {}).get("total_tokens", 0)},
    }
    doc.update({k: v for k, v in links.items() if v})
    if mode == "extended":
        doc["days"] = [
            {"date": p["period"], "cost_usd": p.get("total_cost_usd") or 0.0, "tokens": p["total_tokens"]}
            for p in daily["periods"]
            if p["period"].startswith(month)
        ]
        doc["active_block"] = None
    return doc


@stage_command("snapshot")
@click.option("--month", envvar="MONTH", default="", help="YYYY-MM (default: this month in the time zone).")
@click.option("--mode", envvar="SNAPSHOT_MODE", type=click.Choice(MODES), default="compact", show_default=True, help="compact: top 5; extended: everything, plus days and the active block.")
@click.option("-o", "--output", default=None, help="Where to write (default $ARTIFACTS/ui-snapshot.json; - for stdout).")
@timezone_option
@artifacts_option
def cli(month, mode, output, timezone, artifacts):
    """Write the UI snapshot from the bundle's priced reports.

    Example:

    \b
        snapshot --artifacts artifacts --mode extended
        SNAPSHOT_MODE=compact snapshot -o - | jq .totals
    """
    from scripts.core.periods import Periods, parse_month, resolve_zone_name

    timer = StageTimer(artifacts, "snapshot")
    tz = resolve_zone_name(timezone)
    periods = Periods(tz)
    month = parse_month(month) if month else periods.month_now()
    reports_dir = os.path.join(artifacts, "reports")
    links = {
        "run_summary_path": "runs/latest.json" if os.path.exists(os.path.join(artifacts, "runs", "latest.json")) else None,
        "reconcile_summary_path": "pricing/reconcile-latest.json"
        if os.path.exists(os.path.join(artifacts, "pricing", "reconcile-latest.json"))
        else None,
    }
    doc = transform(
        _load(reports_dir, "monthly"),
        _load(reports_dir, "daily"),
        None,
        month=month,
        today=periods.today(),
        mode=mode,
        generated_at=utc_now_iso(),
        links=links,
        timezone=tz,
    )
    target = output or os.path.join(artifacts, "ui-snapshot.json")
    outcome = "invalidate" if os.path.exists(target) else "miss"
    with AtomicFile(target) as fh:
        fh.write(dumps_doc(doc))
    timer.finish(mode=mode, month=month, cache_outcome=outcome)


main = cli

if __name__ == "__main__":
    cli()
