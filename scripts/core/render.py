"""Render a priced report as a terminal table, Markdown, CSV or JSON.

Tables have aligned columns and a totals row; numbers are right-aligned, money in
dollars with cents, tokens with thousands separators.
"""
from __future__ import annotations

import csv
import io

from scripts.shared_io import dumps_doc

FORMATS = ("table", "markdown", "json", "csv")

COLUMNS = [
    ("period", "Period"),
    ("provider", "Provider"),
    ("model", "Model"),
    ("input_tokens", "Input"),
    ("output_tokens", "Output"),
    ("cache_write_tokens", "Cache write"),
    ("cache_read_tokens", "Cache read"),
    ("total_tokens", "Total tokens"),
    ("events", "Calls"),
    ("sessions", "Sessions"),
    ("cost_usd", "Cost $"),
    ("subscription_usd", "Subscr. $"),
    ("total_cost_usd", "Total $"),
    ("blended_usd_per_mtok", "$/MTok"),
]
CSV_EXTRA = ["tool_input_tokens", "tool_output_tokens", "reasoning_tokens", "cache_write_1h_tokens", "cache_savings_usd", "unpriced_tokens", "priced_as"]
TITLES = {
    "daily": "Daily usage",
    "weekly": "Weekly usage",
    "monthly": "Monthly usage",
    "sessions": "Usage by session",
    "projects": "Usage by project",
    "blocks": "5-hour blocks",
}


def _fmt(key: str, value) -> str:
    if value is None:
        return "unpriced" if key in ("cost_usd", "total_cost_usd") else "-"
    if key.endswith("_usd"):
        return f"{value:,.2f}"
    if key == "blended_usd_per_mtok":
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _cells(report: dict) -> tuple[list[str], list[list[str]], list[str]]:
    headers = [title for _key, title in COLUMNS]
    body = [[_fmt(k, row.get(k)) for k, _t in COLUMNS] for row in report["rows"]]
    totals = dict(report["totals"], period="Total", provider="", model="")
    foot = [_fmt(k, totals.get(k)) for k, _t in COLUMNS]
    return headers, body, foot


def render(report: dict, fmt: str) -> str:
    if fmt == "json":
        return dumps_doc(report).decode()
    if fmt == "csv":
        return render_csv(report)
    headers, body, foot = _cells(report)
    numeric = [i >= 3 for i in range(len(headers))]
    if fmt == "markdown":
        title = TITLES.get(report.get("kind", ""), "Usage")
        lines = [f"## {title} ({report.get('timezone', 'UTC')})", ""]
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
        for row in body + [[f"**{c}**" if c else "" for c in foot]]:
            lines.append("| " + " | ".join(row) + " |")
        if report.get("unpriced"):
            lines += ["", "Unpriced (no rate in the pricing book; not counted as $0):", ""]
            lines += [f"- {u['provider']} / {u['model']}: {u['tokens']:,} tokens in {u['events']:,} calls" for u in report["unpriced"]]
        return "\n".join(lines) + "\n"
    widths = [max(len(r[i]) for r in [headers, foot] + body) for i in range(len(headers))]

    def line(cells):
        return "  ".join(c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(headers), rule] + [line(r) for r in body] + [rule, line(foot)]
    if report.get("unpriced"):
        out.append("")
        out += [f"unpriced: {u['provider']} / {u['model']}: {u['tokens']:,} tokens" for u in report["unpriced"]]
    return "\n".join(out) + "\n"


def render_csv(report: dict) -> str:
    keys = [k for k, _t in COLUMNS] + CSV_EXTRA
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(keys)
    for row in report["rows"]:
        w.writerow(["" if row.get(k) is None else row.get(k) for k in keys])
    totals = dict(report["totals"], period="total", provider="", model="")
    w.writerow(["" if totals.get(k) is None else totals.get(k) for k in keys])
    return buf.getvalue()
