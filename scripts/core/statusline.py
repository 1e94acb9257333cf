"""One status line from ui-snapshot.json: today's cost, the month's, the active 5-hour block.

Runs on every shell prompt and on every Claude Code status-line refresh, so it reads one
small file and imports only the standard library (no click, no orjson): the whole
process stays far below 100 ms. It never reads logs or reports. Which block is active,
and its burn rate, is decided now, from the snapshot's ``latest_blocks``
(scripts.core.blocks). Claude Code passes session JSON on stdin: it is drained and
ignored, and a terminal on stdin is never waited on.
"""
from __future__ import annotations

import json
import os
import sys
import time

SUPPORTED_VERSION = 1
STALE_AFTER_S = 3600  # older snapshots say how old they are
MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
USAGE = "usage: snapshot --statusline [--artifacts DIR]"


def checkout_artifacts() -> str:
    """``artifacts/`` of the checkout this file belongs to (hooks run from anywhere)."""
    here = os.path.dirname(os.path.realpath(__file__))
    return os.path.join(os.path.dirname(os.path.dirname(here)), "artifacts")


def find_bundle(option: str | None, environ=os.environ) -> str:
    """--artifacts DIR, else $ARTIFACTS, else the checkout's artifacts/."""
    return option or environ.get("ARTIFACTS") or checkout_artifacts()


def parse_args(argv: list[str]) -> str | None:
    """The --artifacts value; other snapshot options are accepted and ignored."""
    artifacts = None
    it = iter(argv)
    takes_value = {"--month", "--mode", "-o", "--output", "--timezone"}
    for arg in it:
        if arg == "--artifacts":
            artifacts = next(it, None)
            if artifacts is None:
                raise SystemExit(f"{USAGE}\nerror: --artifacts needs a directory")
        elif arg.startswith("--artifacts="):
            artifacts = arg.split("=", 1)[1]
        elif arg in takes_value:
            next(it, None)
        elif arg in ("--statusline", "--debug") or arg.split("=", 1)[0] in takes_value:
            continue
        else:
            sys.stderr.write(f"{USAGE}\nerror: unexpected argument {arg!r}\n")
            raise SystemExit(2)
    return artifacts


def money(value) -> str:
    if value is None:
        return "$?"
    if abs(value) >= 1000:
        return f"${value:,.0f}"
    return f"${value:,.2f}"


def duration(minutes: float) -> str:
    m = int(minutes)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m"


def local_date(now_s: float, zone_name: str) -> str:
    """Today's date in the snapshot's zone (UTC without loading zoneinfo)."""
    import datetime as dt

    if zone_name in ("UTC", ""):
        tz = dt.timezone.utc
    else:
        try:
            from zoneinfo import ZoneInfo

            tz = ZoneInfo(zone_name)
        except Exception:  # noqa: BLE001 - an unknown zone falls back to UTC
            tz = dt.timezone.utc
    return dt.datetime.fromtimestamp(now_s, tz).strftime("%Y-%m-%d")


def parse_time_s(iso: str) -> float | None:
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return None


def active_block(snapshot: dict, now_ms: int) -> dict | None:
    """The most expensive block active now, with its burn rate (or None)."""
    rows = snapshot.get("latest_blocks") or []
    if not rows:
        return None
    from scripts.core.blocks import active_blocks

    try:
        active = active_blocks({"periods": rows}, now_ms)
    except (KeyError, TypeError, ValueError):
        return None
    return active[0] if active else None


def render(snapshot: dict, now_s: float) -> str:
    """The line for a snapshot at time ``now_s`` (pure)."""
    zone_name = snapshot.get("timezone") or "UTC"
    today = local_date(now_s, zone_name)
    parts = []
    t = snapshot.get("today") or {}
    if t.get("date") == today:
        parts.append(f"today {money(t.get('cost_usd'))}")
    else:
        parts.append("today n/a")  # no snapshot since midnight: unknown, not $0
    month = str(snapshot.get("month") or "")
    label = MONTH_ABBR[int(month[5:7]) - 1] if month[:7] == today[:7] and len(month) == 7 else month
    totals = snapshot.get("totals") or {}
    unpriced = "*" if totals.get("skipped_unpriced_count") else ""
    parts.append(f"{label} {money(totals.get('cost_usd'))}{unpriced}")
    block = active_block(snapshot, int(now_s * 1000))
    if block is not None:
        rate = block.get("burn_rate_usd_per_hour")
        rate_text = f"{money(rate)}/h" if rate is not None else f"{block['burn_rate_tokens_per_hour'] / 1e6:.1f}M tok/h"
        parts.append(f"block {block.get('provider') or ''} {money(block.get('cost_usd'))} @ {rate_text}, {duration(block['remaining_minutes'])} left".replace("  ", " "))
    generated = parse_time_s(snapshot.get("generated_at") or "")
    if generated is not None and now_s - generated > STALE_AFTER_S:
        parts.append(f"(data {duration((now_s - generated) / 60)} old)")
    return " · ".join(parts)


def drain_stdin(budget_s: float = 0.05) -> None:
    """Read and drop what is on stdin (Claude Code's session JSON) for at most
    ``budget_s``, so the writer never gets EPIPE; never wait on a terminal."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return
    try:
        if os.isatty(fd):
            return
        import select

        deadline = time.monotonic() + budget_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([fd], [], [], left)
            if not ready or not os.read(fd, 65536):
                return
    except OSError:
        return


def main(argv: list[str]) -> int:
    """Print the status line; exit 0 even without data (a prompt must not break)."""
    bundle = find_bundle(parse_args(argv))
    path = os.path.join(bundle, "ui-snapshot.json")
    try:
        with open(path, "rb") as fh:
            snapshot = json.loads(fh.read())
        if not isinstance(snapshot, dict):
            raise ValueError("not an object")
    except FileNotFoundError:
        line = "tokentally: no snapshot yet (run make all)"
        sys.stderr.write(f"{path}: missing\n")
        snapshot = None
    except (OSError, ValueError) as exc:
        line = "tokentally: snapshot unreadable"
        sys.stderr.write(f"{path}: {exc}\n")
        snapshot = None
    if snapshot is not None:
        version = snapshot.get("schema_version")
        if version != SUPPORTED_VERSION:
            line = f"tokentally: snapshot v{version} not supported (update tokentally)"
        else:
            line = render(snapshot, time.time())
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    drain_stdin()
    return 0
