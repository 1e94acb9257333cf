"""snapshot: the one small file that menu-bar apps, editor plugins and prompts read.

Written atomically to ``$ARTIFACTS/ui-snapshot.json`` from the priced reports; see
docs/contracts/ui-snapshot.md. ``snapshot --statusline`` prints one line from that file
for a shell prompt or Claude Code's status line.

The module imports nothing heavy at the top: ``--statusline`` runs on every prompt, so
its path (``main`` -> scripts.core.statusline) must not load click or orjson. The click
command is built on first use (``cli`` below).
"""
from __future__ import annotations

import os
import sys

SNAPSHOT_SCHEMA_VERSION = 1
SUGGESTIONS_SCHEMA_VERSION = 1
MODES = ("compact", "extended")
TOP_N = 5
# The fields of a blocks-report row that a reader needs to decide, at read time, whether
# the block is active and how fast it burns (scripts.core.blocks.is_active / burn).
BLOCK_FIELDS = ("provider", "start", "end", "first_timestamp", "last_timestamp", "total_tokens", "cost_usd", "total_cost_usd")


def _summary_row(name: str, row: dict) -> dict:
    return {
        "name": name,
        "tokens": row["total_tokens"],
        "total_cost_usd": row.get("total_cost_usd"),
        "blended_usd_per_mtok": row.get("blended_usd_per_mtok"),
        "session_count": row["sessions"],
    }


def _by_cost(row: dict) -> tuple:
    return (-(row.get("total_cost_usd") or 0), -row["total_tokens"])


def month_days(month: str, today: str) -> list[str]:
    """The days of ``month`` that have begun by ``today`` (all of a past month)."""
    import calendar

    year, mon = int(month[:4]), int(month[5:7])
    days = [f"{month}-{d:02d}" for d in range(1, calendar.monthrange(year, mon)[1] + 1)]
    return [d for d in days if d <= today]


def last_per_provider(blocks) -> dict[str, dict]:
    """Each provider's most recent block of ``blocks`` (rows of a blocks report)."""
    last: dict[str, dict] = {}
    for b in blocks:
        cur = last.get(b["provider"])
        if cur is None or b["start"] > cur["start"]:
            last[b["provider"]] = b
    return last


def latest_blocks(blocks: dict | None) -> list[dict]:
    """The most recent 5-hour block of each provider (active or not: readers decide)."""
    last = last_per_provider((blocks or {}).get("periods", []))
    return [{k: last[p].get(k) for k in BLOCK_FIELDS} for p in sorted(last)]


def transform(
    monthly: dict,
    daily: dict,
    blocks: dict | None,
    suggestions: list | None = None,
    *,
    month: str,
    today: str,
    mode: str,
    generated_at: str,
    now_ms: int,
    links: dict,
    timezone: str,
) -> dict:
    """The snapshot document (pure: the clock comes in as arguments)."""
    from scripts.core.blocks import active_blocks

    month_total = next((p for p in monthly["periods"] if p["period"] == month), None) or {}
    providers = [p for p in monthly.get("period_providers", []) if p["period"] == month]
    models = [r for r in monthly["rows"] if r["period"] == month]
    providers.sort(key=lambda r: (*_by_cost(r), r["provider"]))
    models.sort(key=lambda r: (*_by_cost(r), r["model"], r["provider"]))
    limit = None if mode == "extended" else TOP_N
    day_row = next((p for p in daily["periods"] if p["period"] == today), None) or {}
    doc = {
        "schema_version": SNAPSHOT_SCHEMA_VERSION,
        "generated_at": generated_at,
        "month": month,
        "timezone": timezone,
        "mode": mode,
        "totals": {
            # null only when the month has usage and none of it could be priced
            "cost_usd": month_total.get("total_cost_usd", 0.0),
            "tokens": month_total.get("total_tokens", 0),
            "blended_usd_per_mtok": month_total.get("blended_usd_per_mtok"),
            "session_count": month_total.get("sessions", 0),
            "skipped_unpriced_count": sum(r["events"] for r in models if r.get("priced_as") is None),
        },
        "top_providers": [_summary_row(p["provider"], p) for p in providers[:limit]],
        "top_models": [dict(_summary_row(r["model"], r), provider=r["provider"]) for r in models[:limit]],
        "suggestions": list(suggestions or []),
        "today": {"date": today, "cost_usd": day_row.get("total_cost_usd", 0.0), "tokens": day_row.get("total_tokens", 0)},
        "latest_blocks": latest_blocks(blocks),
    }
    doc.update({k: v for k, v in sorted(links.items()) if v})
    if mode == "extended":
        per_day = {p["period"]: p for p in daily["periods"]}
        doc["days"] = [
            {
                "date": d,
                "cost_usd": per_day[d].get("total_cost_usd") if d in per_day else 0.0,
                "tokens": per_day[d]["total_tokens"] if d in per_day else 0,
            }
            for d in month_days(month, today)
        ]
        active = active_blocks(blocks or {}, now_ms)
        doc["active_block"] = active[0] if active else None
    return doc


def read_suggestions(path: str, month: str) -> list:
    """The reports' suggestions for ``month`` (none when the file is absent or is for
    another month or an unknown version)."""
    from scripts.shared_io import DataError, read_doc

    if not os.path.exists(path):
        return []
    doc = read_doc(path)
    if not isinstance(doc, dict) or doc.get("schema_version") != SUGGESTIONS_SCHEMA_VERSION:
        print(f"{path}: not a version-{SUGGESTIONS_SCHEMA_VERSION} suggestions document; snapshot has no suggestions", file=sys.stderr)
        return []
    if doc.get("month") not in (None, month):
        return []
    items = doc.get("suggestions")
    if not isinstance(items, list) or not all(isinstance(s, dict) and "id" in s and "title" in s for s in items):
        raise DataError("suggestions must be a list of objects with id and title", where=path)
    return items


def build(artifacts: str, *, month: str, mode: str, timezone: str, now=None) -> dict:
    """Read the bundle's reports and return the snapshot for ``month`` (default: this month)."""
    import datetime as dt

    from scripts.core.blocks import is_active
    from scripts.core.periods import Periods, parse_month, resolve_zone_name
    from scripts.core.report_entries import array_entries
    from scripts.shared_io import DataError, read_doc

    now = now or dt.datetime.now(dt.timezone.utc)
    tz = resolve_zone_name(timezone)
    periods = Periods(tz)
    month = parse_month(month) if month else periods.month_now(now)
    reports = os.path.join(artifacts, "reports")

    def path_of(kind: str, required: bool = True):
        path = os.path.join(reports, f"{kind}.json")
        if not os.path.exists(path):
            if required:
                raise DataError("missing; run `make all` first", where=path)
            return None
        return path

    monthly = read_doc(path_of("monthly"))
    today = periods.today(now)
    now_ms = int(now.timestamp() * 1000)
    # of the daily and blocks reports (which grow with the history) only the entries the
    # snapshot shows are read: today and the month's days; each provider's last block,
    # and any block active at ``now`` (one of an earlier moment's, for a clock set back)
    daily = {"periods": [p for p in array_entries(path_of("daily"), "periods") if p["period"] == today or p["period"][:7] == month]}
    blocks_path = path_of("blocks", required=False)
    blocks = None
    if blocks_path is not None:
        active = []

        def noting_active(entries):
            for b in entries:
                if is_active(b, now_ms):
                    active.append(b)
                yield b

        last = last_per_provider(noting_active(array_entries(blocks_path, "periods")))
        blocks = {"periods": active + [b for b in last.values() if not any(b is a for a in active)]}

    links = {
        "run_summary_path": os.path.join("runs", "latest.json"),
        "reconcile_summary_path": os.path.join("pricing", "reconcile-latest.json"),
    }
    links = {k: (v if os.path.exists(os.path.join(artifacts, v)) else None) for k, v in links.items()}
    return transform(
        monthly,
        daily,
        blocks,
        read_suggestions(os.path.join(reports, "suggestions.json"), month),
        month=month,
        today=today,
        mode=mode,
        generated_at=now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        now_ms=now_ms,
        links=links,
        timezone=tz,
    )


_CLI = None


def _command():
    """The click command (built once, on first use)."""
    global _CLI
    if _CLI is not None:
        return _CLI
    import click

    from scripts.cli import artifacts_option, stage_command, timezone_option

    @stage_command("snapshot")
    @click.option("--month", envvar="MONTH", default="", help="YYYY-MM (default: this month in the time zone).")
    @click.option("--mode", envvar="SNAPSHOT_MODE", type=click.Choice(MODES), default="compact", show_default=True, help="compact: top 5; extended: everything, plus days and the active block.")
    @click.option("-o", "--output", default=None, help="Where to write (default $ARTIFACTS/ui-snapshot.json; - for stdout).")
    @click.option("--statusline", is_flag=True, help="Print one status line (today, the month, the active block) from the existing snapshot and exit; reads nothing else. The bundle: --artifacts, else $ARTIFACTS, else this checkout's artifacts/.")
    @timezone_option
    @artifacts_option
    def cli(month, mode, output, statusline, timezone, artifacts):
        """Write the UI snapshot from the bundle's priced reports.

        The file is replaced atomically, so a reader never sees half of it. With
        --statusline, print one line from it instead (for a shell prompt or Claude
        Code's statusLine; JSON on stdin is accepted and ignored).

        Example:

        \b
            snapshot --artifacts artifacts --mode extended
            SNAPSHOT_MODE=compact snapshot -o - | jq .totals
            snapshot --statusline --artifacts artifacts/demo
        """
        if statusline:
            from scripts.core import statusline as sl

            argv = ["--artifacts", artifacts] if _artifacts_given() else []
            raise SystemExit(sl.main(argv))
        from scripts.core.runlog import StageTimer
        from scripts.shared_io import AtomicFile, dumps_doc

        timer = StageTimer(artifacts if output in (None, "") else None, "snapshot")
        doc = build(artifacts, month=month, mode=mode, timezone=timezone)
        target = output or os.path.join(artifacts, "ui-snapshot.json")
        outcome = "invalidate" if os.path.exists(target) else "miss"
        with AtomicFile(target) as fh:
            fh.write(dumps_doc(doc))
        timer.finish(mode=mode, month=doc["month"], cache_outcome=outcome)

    _CLI = cli
    return cli


def _artifacts_given() -> bool:
    """Whether the bundle was named (option or environment), not the cwd default."""
    import click

    ctx = click.get_current_context()
    src = ctx.get_parameter_source("artifacts")
    return src is not None and src.name in ("COMMANDLINE", "ENVIRONMENT")


def __getattr__(name: str):
    # PEP 562: `from scripts.snapshot import cli` builds the click command lazily.
    if name == "cli":
        return _command()
    raise AttributeError(name)


class _Entry:
    """The console entry point (``snapshot``). Called, it sends ``--statusline`` straight
    to the stdlib-only reader and anything else to the click command; as an object it
    stands for the click command (``CliRunner().invoke(main, ...)``, ``main.name``)."""

    def __call__(self, argv=None):
        args = sys.argv[1:] if argv is None else list(argv)
        if "--statusline" in args and not any(a in ("-h", "--help") for a in args):
            from scripts.core import statusline

            sys.exit(statusline.main(args))
        return _command()(args, prog_name="snapshot")

    def __getattr__(self, name):
        return getattr(_command(), name)


main = _Entry()


if __name__ == "__main__":
    main()
