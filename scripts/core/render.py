"""Render a priced report as a terminal table, Markdown, CSV or JSON.

Tables have aligned columns and a totals row; numbers are right-aligned, money in
dollars with cents, tokens with thousands separators. A report can be shown by row
(period x provider x model, the default), by period, by provider or by model; sessions
and blocks get the columns that make sense for them (project; block end, active).
"""
from __future__ import annotations

import csv
import io

from scripts.shared_io import dumps_doc

FORMATS = ("table", "markdown", "json", "csv")
VIEWS = ("row", "period", "provider", "model")
VIEW_PART = {"row": "rows", "period": "periods", "provider": "by_provider", "model": "by_model"}

TITLES = {
    "daily": "Daily usage",
    "weekly": "Weekly usage",
    "monthly": "Monthly usage",
    "sessions": "Usage by session",
    "projects": "Usage by project",
    "blocks": "5-hour blocks",
}
PERIOD_TITLES = {
    "daily": "Day",
    "weekly": "Week",
    "monthly": "Month",
    "sessions": "Session",
    "projects": "Project",
    "blocks": "Block start",
}
NUMBERS = [
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


def columns(kind: str, view: str = "row") -> list[tuple[str, str]]:
    """``(field, title)`` of the columns a report shows in a view."""
    if view == "provider":
        head = [("provider", "Provider")]
    elif view == "model":
        head = [("provider", "Provider"), ("model", "Model")]
    else:
        head = [("period", PERIOD_TITLES.get(kind, "Period"))]
        if kind == "blocks" and view == "period":
            head += [("end", "End")]
        if kind == "sessions":
            head += [("project", "Project")]
        if view == "row":
            head += [("provider", "Provider"), ("model", "Model")]
        elif kind == "blocks":
            head += [("provider", "Provider")]
    return head + NUMBERS


def entries(report: dict, view: str = "row") -> list[dict]:
    rows = report.get(VIEW_PART[view]) or []
    if view == "period" and report.get("kind") == "blocks":
        # a block is (start, provider): its entries already are per provider
        return rows
    return rows


def _number_cells(r: dict) -> list[str]:
    """The NUMBERS columns of one entry (one call per row: this is the hot loop of the
    Markdown that `make` writes for every report)."""
    c = r.get("cost_usd")
    s = r.get("subscription_usd")
    t = r.get("total_cost_usd")
    b = r.get("blended_usd_per_mtok")
    return [
        f"{r['input_tokens']:,}",
        f"{r['output_tokens']:,}",
        f"{r['cache_write_tokens']:,}",
        f"{r['cache_read_tokens']:,}",
        f"{r['total_tokens']:,}",
        f"{r['events']:,}",
        f"{r['sessions']:,}",
        "unpriced" if c is None else f"{c:,.2f}",
        "-" if s is None else f"{s:,.2f}",
        "unpriced" if t is None else f"{t:,.2f}",
        "-" if b is None else f"{b:,.2f}",
    ]


def _cells(report: dict, view: str):
    cols = columns(report.get("kind", ""), view)
    head_keys = [k for k, _t in cols[: len(cols) - len(NUMBERS)]]
    headers = [t for _k, t in cols]
    body = [["-" if r.get(k) is None else str(r.get(k)) for k in head_keys] + _number_cells(r) for r in entries(report, view)]
    totals = report.get("totals") or {}
    foot = ["Total"] + [""] * (len(head_keys) - 1) + (_number_cells(totals) if totals else [""] * len(NUMBERS))
    numeric = [False] * len(head_keys) + [True] * len(NUMBERS)
    return headers, body, foot, numeric


def _markdown_head(report: dict, headers, numeric) -> list[str]:
    title = TITLES.get(report.get("kind", ""), "Usage")
    return [f"## {title} ({report.get('timezone', 'UTC')})", "",
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]


def _markdown_foot(report: dict, foot) -> list[str]:
    out = ["| " + " | ".join(f"**{c}**" if c else "" for c in foot) + " |"]
    if report.get("unpriced"):
        out += ["", "Unpriced (no rate in the pricing book; not counted as $0):", ""]
        out += [f"- {u['provider']} / {u['model']}: {u['tokens']:,} tokens in {u['events']:,} calls" for u in report["unpriced"]]
    return out


# The Markdown of the row view in three parts, so that the incremental price can keep
# each period's lines: render(report, "markdown") is head + rows + foot, joined by newlines.
def markdown_head(report: dict) -> list[str]:
    cols = columns(report.get("kind", ""), "row")
    return _markdown_head(report, [t for _k, t in cols], [False] * (len(cols) - len(NUMBERS)) + [True] * len(NUMBERS))


def markdown_rows(kind: str, rows: list[dict]) -> list[str]:
    cols = columns(kind, "row")
    head_keys = [k for k, _t in cols[: len(cols) - len(NUMBERS)]]
    return ["| " + " | ".join(["-" if r.get(k) is None else str(r.get(k)) for k in head_keys] + _number_cells(r)) + " |" for r in rows]


def markdown_foot(report: dict) -> list[str]:
    cols = columns(report.get("kind", ""), "row")
    n_head = len(cols) - len(NUMBERS)
    totals = report.get("totals") or {}
    foot = ["Total"] + [""] * (n_head - 1) + (_number_cells(totals) if totals else [""] * len(NUMBERS))
    return _markdown_foot(report, foot)


def render(report: dict, fmt: str, view: str = "row") -> str:
    if fmt == "json":
        return dumps_doc(report).decode()
    if fmt == "csv":
        return render_csv(report, view)
    if fmt == "markdown" and view == "row":
        return "\n".join(markdown_head(report) + markdown_rows(report.get("kind", ""), entries(report, view)) + markdown_foot(report)) + "\n"
    headers, body, foot, numeric = _cells(report, view)
    if fmt == "markdown":
        return "\n".join(_markdown_head(report, headers, numeric) + ["| " + " | ".join(r) + " |" for r in body] + _markdown_foot(report, foot)) + "\n"
    widths = [len(h) for h in headers]
    for r in body + [foot]:
        for i, c in enumerate(r):
            if len(c) > widths[i]:
                widths[i] = len(c)

    def line(cells):
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(headers), rule] + [line(r) for r in body] + [rule, line(foot)]
    if report.get("unpriced"):
        out.append("")
        out += [f"unpriced: {u['provider']} / {u['model']}: {u['tokens']:,} tokens (not counted as $0)" for u in report["unpriced"]]
    return "\n".join(out) + "\n"


def render_csv(report: dict, view: str = "row") -> str:
    keys = [k for k, _t in columns(report.get("kind", ""), view)] + CSV_EXTRA
    if view not in ("row", "model"):
        keys.remove("priced_as")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(keys)
    for row in entries(report, view):
        w.writerow(["" if row.get(k) is None else row.get(k) for k in keys])
    totals = dict(report.get("totals") or {})
    for k in ("period", "provider", "model", "project", "end"):
        totals[k] = ""
    totals[keys[0]] = "total"
    w.writerow(["" if totals.get(k) is None else totals.get(k) for k in keys])
    return buf.getvalue()
