"""dashboard: one self-contained HTML page of a month, drawn from the priced reports.

No network, no CDN, no external file: the page carries its CSS, its inline SVG charts
and a few lines of script, and a Content-Security-Policy that forbids loading anything.
The same reports give the same bytes (no clock in the page). Every chart element carries
its figures as data attributes (``data-cost`` in USD as the report writes it, token
counts as integers), so a test, or a curious user, can check the drawing against the
reports.

Charts: daily cost stacked by provider; cost by model; cache-read share of prompt tokens
per day; month to date against last month (cumulative cost by day of month).
"""
from __future__ import annotations

import calendar
import html
import os

import click

from scripts.cli import artifacts_option, stage_command, timezone_option
from scripts.shared_io import AtomicFile, DataError, read_doc

# Fixed colours for the known providers (so a provider keeps its colour across months).
PROVIDER_COLORS = {
    "claude": "#d97757",
    "codex": "#10a37f",
    "cursor": "#3b82f6",
    "droid": "#a855f7",
    "opencode": "#f59e0b",
    "gemini": "#4285f4",
    "cliproxy": "#64748b",
}
EXTRA_COLORS = ("#e11d48", "#0891b2", "#65a30d", "#7c3aed", "#ca8a04", "#db2777")
W, H = 960, 280  # chart viewBox
PAD_L, PAD_R, PAD_T, PAD_B = 64, 16, 16, 34


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def micro(usd) -> int:
    return int(round((usd or 0) * 1_000_000))


def usd(value, digits: int = 2) -> str:
    if value is None:
        return "unpriced"
    return f"${value:,.{digits}f}"


def usd_attr(value) -> str:
    """A cost as a data attribute: the report's number, six decimals, 0 when unpriced."""
    return f"{(value or 0):.6f}"


def tokens_short(n: int) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def color_of(provider: str, order: list[str]) -> str:
    if provider in PROVIDER_COLORS:
        return PROVIDER_COLORS[provider]
    extras = [p for p in order if p not in PROVIDER_COLORS]
    return EXTRA_COLORS[extras.index(provider) % len(EXTRA_COLORS)] if provider in extras else EXTRA_COLORS[0]


def nice_ceiling(value: float) -> tuple[float, float]:
    """A round axis maximum >= value and its step: the smallest step of 1, 2, 2.5 or 5
    times a power of ten that covers ``value`` in at most 5 ticks."""
    if value <= 0:
        return 1.0, 0.25
    import math

    exp = 10 ** math.floor(math.log10(value / 5))
    for m in (1, 2, 2.5, 5, 10, 20):
        step = m * exp
        n = math.ceil(value / step - 1e-9)
        if n <= 5:
            return step * n, step
    return value, value / 4


def previous_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y - 1}-12" if m == 1 else f"{y}-{m - 1:02d}"


def days_of(month: str) -> list[str]:
    y, m = int(month[:4]), int(month[5:7])
    return [f"{month}-{d:02d}" for d in range(1, calendar.monthrange(y, m)[1] + 1)]


def axis(top: float, step: float, fmt, x0=PAD_L, x1=W - PAD_R, y0=PAD_T, y1=H - PAD_B) -> str:
    """Horizontal grid lines with labels on the left."""
    out = []
    n = int(round(top / step))
    for i in range(n + 1):
        v = step * i
        y = y1 - (y1 - y0) * v / top
        out.append(f'<line class="grid" x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(fmt(v))}</text>')
    return "".join(out)


def day_labels(days: list[str], x_of, y: float) -> str:
    out = []
    for i, d in enumerate(days):
        if i == 0 or (i + 1) % 5 == 0:
            out.append(f'<text class="tick" x="{x_of(i):.1f}" y="{y:.1f}" text-anchor="middle">{int(d[8:])}</text>')
    return "".join(out)


def money_tick(v: float) -> str:
    v = float(round(v, 6))
    if v.is_integer():
        return f"${v:,.0f}"
    return f"${v:,.2f}" if float(round(v * 100, 6)).is_integer() else f"${v:,.3f}"


# ---------------------------------------------------------------- charts


def chart_daily(days: list[str], by_day_provider: dict, providers: list[str], colors: dict) -> str:
    totals = {d: sum(micro(r.get("total_cost_usd")) for r in by_day_provider.get(d, {}).values()) for d in days}
    top, step = nice_ceiling(max(totals.values(), default=0) / 1e6)
    plot_w = W - PAD_L - PAD_R
    slot = plot_w / max(len(days), 1)
    bar_w = slot * 0.72

    def x_of(i):
        return PAD_L + slot * i + slot / 2

    y1 = H - PAD_B
    scale = (H - PAD_B - PAD_T) / top
    parts = [axis(top, step, money_tick)]
    for i, d in enumerate(days):
        rows = by_day_provider.get(d, {})
        y = y1
        segs = []
        for p in providers:
            r = rows.get(p)
            if r is None:
                continue
            cost = r.get("total_cost_usd")
            h = (cost or 0) * scale
            y -= h
            tip = f"{d} · {p}: {usd(cost)} · {r['total_tokens']:,} tokens"
            segs.append(
                f'<rect class="seg" data-date="{d}" data-provider="{esc(p)}" data-cost="{usd_attr(cost)}" '
                f'data-tokens="{r["total_tokens"]}" x="{x_of(i) - bar_w / 2:.1f}" y="{y:.2f}" width="{bar_w:.1f}" '
                f'height="{h:.2f}" fill="{colors[p]}"><title>{esc(tip)}</title></rect>'
            )
        parts.append(f'<g class="day" data-date="{d}" data-cost="{totals[d] / 1e6:.6f}">{"".join(segs)}</g>')
    parts.append(day_labels(days, x_of, H - PAD_B + 16))
    total = sum(totals.values())
    return svg("daily-cost-chart", "Daily cost stacked by provider", "".join(parts), f'data-total-cost="{total / 1e6:.6f}"')


def chart_models(models: list[dict], colors: dict) -> str:
    if not models:
        return '<p class="empty">No model was used this month.</p>'
    row_h, label_w = 26, 300
    height = PAD_T + row_h * len(models) + 24
    top, step = nice_ceiling(max(micro(r.get("total_cost_usd")) for r in models) / 1e6)
    x0, x1 = label_w, W - 120
    scale = (x1 - x0) / top
    parts = []
    for i in range(int(round(top / step)) + 1):
        x = x0 + step * i * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{PAD_T - 4}" y2="{height - 20}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{height - 6}" text-anchor="middle">{esc(money_tick(step * i))}</text>')
    for i, r in enumerate(models):
        y = PAD_T + row_h * i
        cost = r.get("total_cost_usd")
        w = (cost or 0) * scale
        label = f"{r['model']} ({r['provider']})"
        value = usd(cost) if cost is not None else "unpriced"
        tip = f"{r['provider']}/{r['model']}: {value} · {r['total_tokens']:,} tokens · {r['events']:,} calls"
        parts.append(f'<text class="label" x="{x0 - 8}" y="{y + 16}" text-anchor="end">{esc(label)}</text>')
        parts.append(
            f'<rect class="model-bar{" unpriced" if cost is None else ""}" data-provider="{esc(r["provider"])}" '
            f'data-model="{esc(r["model"])}" data-cost="{usd_attr(cost)}" data-tokens="{r["total_tokens"]}" '
            f'x="{x0}" y="{y + 4}" width="{w:.2f}" height="{row_h - 8}" fill="{colors[r["provider"]]}"><title>{esc(tip)}</title></rect>'
        )
        parts.append(f'<text class="value" x="{x0 + w + 6:.1f}" y="{y + 16}">{esc(value)}</text>')
    total = sum(micro(r.get("total_cost_usd")) for r in models)
    return svg("model-cost-chart", "Cost by model", "".join(parts), f'data-total-cost="{total / 1e6:.6f}"', height=height)


def chart_cache(days: list[str], by_day: dict) -> str:
    plot_w = W - PAD_L - PAD_R
    slot = plot_w / max(len(days), 1)

    def x_of(i):
        return PAD_L + slot * i + slot / 2

    y0, y1 = PAD_T, H - PAD_B
    parts = [axis(1.0, 0.25, lambda v: f"{v * 100:.0f}%")]
    points = []
    total_read = total_prompt = 0
    for i, d in enumerate(days):
        r = by_day.get(d)
        if r is None:
            continue
        read = r["cache_read_tokens"]
        prompt = r["input_tokens"] + r["cache_write_tokens"] + r["cache_read_tokens"]
        if prompt == 0:
            continue
        total_read += read
        total_prompt += prompt
        share = read / prompt
        x, y = x_of(i), y1 - (y1 - y0) * share
        points.append((x, y))
        tip = f"{d}: {share * 100:.1f}% of {prompt:,} prompt tokens read from cache"
        parts.append(
            f'<circle class="cache-point" data-date="{d}" data-cache-read="{read}" data-prompt-tokens="{prompt}" '
            f'data-share="{share:.6f}" cx="{x:.1f}" cy="{y:.2f}" r="3.5"><title>{esc(tip)}</title></circle>'
        )
    if points:
        line = " ".join(f"{x:.1f},{y:.2f}" for x, y in points)
        parts.insert(1, f'<polyline class="cache-line" points="{line}"/>')
    parts.append(day_labels(days, x_of, H - PAD_B + 16))
    return svg("cache-share-chart", "Cache-read share of prompt tokens per day", "".join(parts), f'data-cache-read="{total_read}" data-prompt-tokens="{total_prompt}"')


def cumulative(days: list[str], by_day: dict, through: int | None = None) -> list[int]:
    out, run = [], 0
    for i, d in enumerate(days):
        if through is not None and i >= through:
            break
        run += micro((by_day.get(d) or {}).get("total_cost_usd"))
        out.append(run)
    return out


def chart_mtd(month: str, prev: str, this_cum: list[int], prev_cum: list[int]) -> str:
    n = max(len(days_of(month)), len(days_of(prev)))
    top, step = nice_ceiling(max(this_cum + prev_cum + [0]) / 1e6)
    y0, y1 = PAD_T, H - PAD_B
    plot_w = W - PAD_L - PAD_R

    def x_of(i):
        return PAD_L + plot_w * i / max(n - 1, 1)

    def y_of(m):
        return y1 - (y1 - y0) * (m / 1e6) / top

    parts = [axis(top, step, money_tick)]
    for name, cls, series in ((prev, "prev", prev_cum), (month, "this", this_cum)):
        if not series:
            continue
        pts = " ".join(f"{x_of(i):.1f},{y_of(m):.2f}" for i, m in enumerate(series))
        parts.append(f'<polyline class="mtd-line {cls}" data-month="{name}" data-total="{series[-1] / 1e6:.6f}" points="{pts}"/>')
        for i, m in enumerate(series):
            tip = f"{name} day {i + 1}: {usd(m / 1e6)} so far"
            parts.append(
                f'<circle class="mtd-point {cls}" data-month="{name}" data-day="{i + 1}" data-cumulative="{m / 1e6:.6f}" '
                f'cx="{x_of(i):.1f}" cy="{y_of(m):.2f}" r="2.5"><title>{esc(tip)}</title></circle>'
            )
    for i in range(n):
        if i == 0 or (i + 1) % 5 == 0:
            parts.append(f'<text class="tick" x="{x_of(i):.1f}" y="{H - PAD_B + 16}" text-anchor="middle">{i + 1}</text>')
    return svg("mtd-chart", f"Cumulative cost by day of month: {month} against {prev}", "".join(parts))


def svg(chart_id: str, label: str, body: str, attrs: str = "", height: int = H) -> str:
    return (
        f'<svg id="{chart_id}" class="chart" role="img" aria-label="{esc(label)}" viewBox="0 0 {W} {height}" '
        f'preserveAspectRatio="xMidYMid meet" {attrs}>{body}</svg>'
    )


# ---------------------------------------------------------------- page


def transform(daily: dict, monthly: dict, *, month: str, today: str | None = None) -> str:
    """The page for ``month`` from the daily and monthly reports (pure). ``today`` (a
    local date) cuts the month-to-date comparison at today's day of month when ``month``
    is the current one; otherwise the whole month is compared."""
    prev = previous_month(month)
    days = days_of(month)
    by_day = {p["period"]: p for p in daily["periods"]}
    by_day_provider: dict[str, dict] = {}
    for r in daily.get("period_providers", []):
        by_day_provider.setdefault(r["period"], {})[r["provider"]] = r
    month_row = next((p for p in monthly["periods"] if p["period"] == month), None)
    prev_row = next((p for p in monthly["periods"] if p["period"] == prev), None)
    month_providers = sorted(
        (r for r in monthly.get("period_providers", []) if r["period"] == month),
        key=lambda r: (-micro(r.get("total_cost_usd")), -r["total_tokens"], r["provider"]),
    )
    providers = [r["provider"] for r in month_providers]
    every_provider = sorted({r["provider"] for r in monthly.get("period_providers", [])} | set(providers))
    colors = {p: color_of(p, every_provider) for p in every_provider}
    models = sorted(
        (r for r in monthly["rows"] if r["period"] == month),
        key=lambda r: (-micro(r.get("total_cost_usd")), -r["total_tokens"], r["model"], r["provider"]),
    )
    unpriced = [r for r in models if r.get("priced_as") is None]

    # month to date: the month so far against the same days of last month
    cut = None
    if today and today[:7] == month:
        cut = int(today[8:10])
    this_cum = cumulative(days, by_day, cut)
    prev_days = days_of(prev)
    # a previous month without any usage draws no line (a flat zero would look like data)
    prev_cum = cumulative(prev_days, by_day) if any(d in by_day for d in prev_days) else []
    mtd = this_cum[-1] if this_cum else 0
    same_day = prev_cum[min(len(this_cum), len(prev_cum)) - 1] if prev_cum and this_cum else 0
    delta = f"{(mtd - same_day) / same_day * 100:+.0f}%" if same_day else "n/a"

    m = month_row or {}
    kpis = [
        ("Cost", usd(m.get("total_cost_usd", 0.0)), "kpi-cost", usd_attr(m.get("total_cost_usd"))),
        ("Tokens", tokens_short(m.get("total_tokens", 0)), "kpi-tokens", str(m.get("total_tokens", 0))),
        ("Blended $/MTok", usd(m.get("blended_usd_per_mtok"), 3) if m.get("blended_usd_per_mtok") is not None else "n/a", "kpi-blended", str(m.get("blended_usd_per_mtok"))),
        ("Sessions", f"{m.get('sessions', 0):,}", "kpi-sessions", str(m.get("sessions", 0))),
        ("Calls", f"{m.get('events', 0):,}", "kpi-calls", str(m.get("events", 0))),
        ("Cache savings", usd(m.get("cache_savings_usd", 0.0)), "kpi-savings", usd_attr(m.get("cache_savings_usd"))),
    ]
    kpi_html = "".join(f'<div class="kpi" id="{k}" data-value="{esc(v)}"><div class="kpi-label">{esc(label)}</div><div class="kpi-value">{esc(text)}</div></div>' for label, text, k, v in kpis)
    legend = "".join(
        f'<li data-provider="{esc(p)}"><span class="swatch" style="background:{colors[p]}"></span>{esc(p)} '
        f'<span class="muted">{esc(usd(r.get("total_cost_usd")))}</span></li>'
        for p, r in ((r["provider"], r) for r in month_providers)
    )
    notes = []
    if unpriced:
        names = ", ".join(f"{r['provider']}/{r['model']} ({r['total_tokens']:,} tokens)" for r in unpriced)
        notes.append(f'<p class="note" id="unpriced-note">Not priced (the pricing book has no rate): {esc(names)}. Their tokens are counted; their cost is left out, never shown as $0.</p>')
    if month_row is None:
        notes.append(f'<p class="note" id="empty-note">No usage recorded in {esc(month)}.</p>')
    pricing = daily.get("pricing") or {}
    table_rows = "".join(
        f'<tr><td>{esc(r["provider"])}</td><td>{esc(r["model"])}</td><td class="num">{r["total_tokens"]:,}</td>'
        f'<td class="num">{r["events"]:,}</td><td class="num">{esc(usd(r.get("total_cost_usd")))}</td>'
        f'<td class="num">{esc(usd(r.get("blended_usd_per_mtok"), 3) if r.get("blended_usd_per_mtok") is not None else "n/a")}</td></tr>'
        for r in models
    )
    if prev_cum:
        mtd_text = (
            f"{usd(mtd / 1e6)} through day {len(this_cum)}; {prev} through the same day: {usd(same_day / 1e6)} ({delta}); "
            f"{prev} in full: {usd((prev_row or {}).get('total_cost_usd', 0.0))}."
        )
    else:
        mtd_text = f"{usd(mtd / 1e6)} through day {len(this_cum)}; no usage recorded in {prev}."
    body = f"""<header>
<h1>tokentally <span class="muted">· {esc(month)}</span></h1>
<p class="muted">Time zone {esc(daily.get("timezone", "UTC"))} · pricing book {esc(pricing.get("hash", "?"))[:12]} ({esc(pricing.get("updated_at", "?"))}) · from the bundle's reports, nothing uploaded</p>
</header>
<section class="kpis">{kpi_html}</section>
{"".join(notes)}
<section id="daily"><h2>Daily cost by provider</h2><ul class="legend">{legend}</ul>{chart_daily(days, by_day_provider, providers, colors)}</section>
<section id="models"><h2>Cost by model</h2>{chart_models(models, colors)}</section>
<section id="cache"><h2>Cache-read share of prompt tokens</h2><p class="muted">Cache reads ÷ (input + cache writes + cache reads), per day.</p>{chart_cache(days, by_day)}</section>
<section id="mtd"><h2>Month to date against last month</h2><p id="mtd-summary" data-mtd="{mtd / 1e6:.6f}" data-prev-same-day="{same_day / 1e6:.6f}">{esc(mtd_text)}</p>
<ul class="legend"><li><span class="swatch this"></span>{esc(month)}</li><li><span class="swatch prev"></span>{esc(prev)}</li></ul>{chart_mtd(month, prev, this_cum, prev_cum)}</section>
<section id="table"><h2>Models</h2><table><thead><tr><th>Provider</th><th>Model</th><th class="num">Tokens</th><th class="num">Calls</th><th class="num">Cost</th><th class="num">$/MTok</th></tr></thead><tbody>{table_rows}</tbody></table></section>
<footer class="muted">tokentally dashboard · generated from reports/daily.json and reports/monthly.json · self-contained, loads nothing from the network</footer>"""
    return PAGE.format(month=esc(month), body=body, css=CSS, js=JS)


CSS = """
:root { color-scheme: light; --fg:#1f2328; --muted:#656d76; --grid:#e5e7eb; --bg:#fff; --card:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 1040px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.muted { color: var(--muted); }
.kpis { display: grid; grid-template-columns: repeat(6, 1fr); gap: 10px; margin-top: 16px; }
.kpi { background: var(--card); border-radius: 8px; padding: 10px 12px; }
.kpi-label { color: var(--muted); font-size: 12px; } .kpi-value { font-size: 20px; font-weight: 600; }
.note { background: #fff8c5; border-radius: 6px; padding: 8px 12px; }
.chart { width: 100%; height: auto; display: block; }
.chart .grid { stroke: var(--grid); stroke-width: 1; }
.chart text { font-size: 11px; fill: var(--muted); } .chart .label, .chart .value { font-size: 12px; fill: var(--fg); }
.chart .seg, .chart .model-bar { transition: opacity .15s; }
.chart .dim { opacity: .2; }
.cache-line { fill: none; stroke: #2563eb; stroke-width: 2; } .cache-point { fill: #2563eb; }
.mtd-line { fill: none; stroke-width: 2.5; } .mtd-line.this { stroke: #d97757; } .mtd-line.prev { stroke: #9ca3af; stroke-dasharray: 5 4; }
.mtd-point.this { fill: #d97757; } .mtd-point.prev { fill: #9ca3af; }
.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 14px; padding: 0; margin: 0 0 6px; }
.legend li { cursor: default; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 6px; vertical-align: -1px; }
.swatch.this { background: #d97757; } .swatch.prev { background: #9ca3af; }
table { border-collapse: collapse; width: 100%; } th, td { padding: 4px 8px; border-bottom: 1px solid var(--grid); text-align: left; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
footer { margin-top: 32px; font-size: 12px; }
"""

JS = """
(function () {
  // Hovering a provider in the legend dims the other providers' bars.
  var items = document.querySelectorAll("#daily .legend li[data-provider]");
  var marks = document.querySelectorAll(".seg, .model-bar");
  items.forEach(function (li) {
    li.addEventListener("mouseenter", function () {
      marks.forEach(function (m) { m.classList.toggle("dim", m.dataset.provider !== li.dataset.provider); });
    });
    li.addEventListener("mouseleave", function () {
      marks.forEach(function (m) { m.classList.remove("dim"); });
    });
  });
  document.documentElement.dataset.ready = "1";
})();
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tokentally · {month}</title>
<style>{css}</style>
</head>
<body>
{body}
<script>{js}</script>
</body>
</html>
"""


@stage_command("dashboard")
@click.option("--month", envvar="MONTH", default="", help="YYYY-MM (default: this month in the time zone).")
@click.option("-o", "--output", default=None, help="Where to write (default $ARTIFACTS/dashboard.html; - for stdout).")
@timezone_option
@artifacts_option
def cli(month, output, timezone, artifacts):
    """Write a self-contained HTML dashboard of a month from the bundle's reports.

    Daily cost stacked by provider, cost by model, cache-read share per day, and the
    month to date against last month, as inline SVG. Open it in any browser; it
    loads nothing from the network.

    Example:

    \b
        dashboard --artifacts artifacts --month 2026-08
        make dashboard && xdg-open artifacts/dashboard.html
    """
    from scripts.core.periods import Periods, parse_month, resolve_zone_name

    reports = os.path.join(artifacts, "reports")
    docs = {}
    for kind in ("daily", "monthly"):
        path = os.path.join(reports, f"{kind}.json")
        if not os.path.exists(path):
            raise DataError("missing; run `make all` first", where=path)
        docs[kind] = read_doc(path)
        if docs[kind].get("schema_version") != 1 or docs[kind].get("kind") != kind:
            raise DataError(f"not a version-1 {kind} report", where=path)
    tz = resolve_zone_name(timezone or docs["daily"].get("timezone", ""))
    periods = Periods(tz)
    month = parse_month(month) if month else periods.month_now()
    page = transform(docs["daily"], docs["monthly"], month=month, today=periods.today())
    target = output or os.path.join(artifacts, "dashboard.html")
    with AtomicFile(target) as fh:
        fh.write(page.encode("utf-8"))


main = cli

if __name__ == "__main__":
    cli()
