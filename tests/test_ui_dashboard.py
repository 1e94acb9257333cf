"""The dashboard page: self-contained, deterministic, escaped, and, in a real headless
Chromium, free of console errors with chart elements that add up to the reports."""
from __future__ import annotations

import json
import os
import re

import pytest

from conftest import ROOT, load_json, make, sample_env, stage
from ui_bundle import build_bundle
from ui_cdp import find_chromium, load_page

from scripts import dashboard

MONTH = "2026-09"  # the sample logs cover 2026-08 and the start of 2026-09: a month and its predecessor
ARTIFACT_DIR = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def bundle(sample_logs, tmp_path_factory):
    root = tmp_path_factory.mktemp("ui-dash")
    artifacts = build_bundle(sample_logs(2000), root, month=MONTH, mode="compact")
    make("dashboard", env=sample_env(sample_logs(2000), artifacts, MONTH=MONTH))
    return artifacts


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium; `make browser` installs it when missing. Under `make check`
    (TOKENTALLY_REQUIRE_BROWSER=1) or CI a missing browser fails the test, never skips it."""
    path = find_chromium()
    detail = ""
    if path is None:
        proc = make("browser", check=False, timeout=1200)
        detail = (proc.stderr or b"").decode(errors="replace")[-1500:]
        path = find_chromium()
    if path is None:
        message = f"headless Chromium is missing and `make browser` could not install it: {detail}"
        if os.environ.get("TOKENTALLY_REQUIRE_BROWSER") or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def micro(value) -> int:
    return int(round(float(value or 0) * 1_000_000))


def test_make_dashboard_writes_a_self_contained_deterministic_page(bundle, tmp_path):
    page = (bundle / "dashboard.html").read_text()
    assert page.startswith("<!doctype html>")
    # nothing to fetch: no URL at all, no external src/href, a CSP that forbids loading
    assert not re.search(r"https?://", page)
    assert not re.search(r"\s(src|href)=", page)
    assert "default-src 'none'" in page
    # same reports, same month -> same bytes
    out = tmp_path / "again.html"
    stage("dashboard", "--artifacts", bundle, "--month", MONTH, "--timezone", "UTC", "-o", out)
    assert out.read_text() == page


def test_names_are_escaped_and_unpriced_is_not_zero():
    daily = {"periods": [], "period_providers": [], "timezone": "UTC"}
    row = {"period": "2026-08", "provider": "cliproxy", "model": '<script>alert("x")</script>', "total_cost_usd": None,
           "total_tokens": 1000, "events": 3, "priced_as": None, "blended_usd_per_mtok": None}
    monthly = {"rows": [row], "periods": [dict(row, sessions=1, cache_savings_usd=0.0)], "period_providers": [dict(row)]}
    page = dashboard.transform(daily, monthly, month="2026-08")
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert 'id="unpriced-note"' in page and "never shown as $0" in page
    assert "unpriced" in page


def test_empty_month_says_so():
    page = dashboard.transform({"periods": [], "period_providers": []}, {"rows": [], "periods": [], "period_providers": []}, month="2026-02")
    assert "No usage recorded in 2026-02" in page and 'id="daily-cost-chart"' in page


# Everything the test checks, gathered in the page by the browser after it rendered.
PROBE = """JSON.stringify((() => {
  const all = (sel) => Array.from(document.querySelectorAll(sel));
  const box = (el) => { const r = el.getBoundingClientRect(); return {w: r.width, h: r.height}; };
  return {
    ready: document.documentElement.dataset.ready || null,
    segs: all("#daily-cost-chart rect.seg").map(el => ({date: el.dataset.date, provider: el.dataset.provider, cost: el.dataset.cost, ...box(el)})),
    models: all("#model-cost-chart rect.model-bar").map(el => ({provider: el.dataset.provider, model: el.dataset.model, cost: el.dataset.cost, tokens: +el.dataset.tokens, ...box(el)})),
    cache: all("#cache-share-chart circle.cache-point").map(el => ({date: el.dataset.date, read: +el.dataset.cacheRead, prompt: +el.dataset.promptTokens})),
    mtd: all("#mtd-chart polyline.mtd-line").map(el => ({month: el.dataset.month, total: el.dataset.total, points: el.points.length})),
    kpiCost: document.getElementById("kpi-cost").dataset.value,
    charts: all("svg.chart").map(el => ({id: el.id, ...box(el)})),
    text: document.body.innerText,
  };
})())"""


def test_dashboard_in_headless_chromium(bundle, chromium, capsys):
    run = load_page(chromium, (bundle / "dashboard.html").as_uri(), PROBE)
    ARTIFACT_DIR.mkdir(exist_ok=True)
    (ARTIFACT_DIR / "dashboard.png").write_bytes(run.screenshot)
    got = json.loads(run.value)

    assert run.console_errors == []
    assert run.requests == [(bundle / "dashboard.html").as_uri()], "the page loads nothing else"
    assert got["ready"] == "1", "the page's script ran"
    assert run.screenshot[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(c["w"] > 800 and c["h"] > 100 for c in got["charts"]), got["charts"]

    daily = load_json(bundle / "reports" / "daily.json")
    monthly = load_json(bundle / "reports" / "monthly.json")
    month_row = next(p for p in monthly["periods"] if p["period"] == MONTH)
    prev_row = next(p for p in monthly["periods"] if p["period"] == "2026-08")

    # daily cost stacked by provider: one segment per (day, provider) row of the daily report
    expected = {(r["period"], r["provider"]): micro(r["total_cost_usd"]) for r in daily["period_providers"] if r["period"].startswith(MONTH)}
    drawn = {(s["date"], s["provider"]): micro(s["cost"]) for s in got["segs"]}
    assert drawn == expected
    assert sum(drawn.values()) == sum(micro(p["total_cost_usd"]) for p in daily["periods"] if p["period"].startswith(MONTH))
    assert all(s["h"] > 0 and s["w"] > 0 for s in got["segs"] if micro(s["cost"]) > 0), "every cost is visible"
    # ... and within a few micro-dollars of the monthly total (each report rounds its own rows)
    assert abs(sum(drawn.values()) - micro(month_row["total_cost_usd"])) <= len(daily["rows"])

    # cost by model: exactly the monthly rows, summing to the month's total
    models = {(m["provider"], m["model"]): micro(m["cost"]) for m in got["models"]}
    assert models == {(r["provider"], r["model"]): micro(r["total_cost_usd"]) for r in monthly["rows"] if r["period"] == MONTH}
    assert sum(models.values()) == micro(month_row["total_cost_usd"])
    widths = sorted((micro(m["cost"]), m["w"]) for m in got["models"])
    assert [w for _, w in widths] == sorted(w for _, w in widths), "bar lengths follow cost"
    assert micro(got["kpiCost"]) == micro(month_row["total_cost_usd"])

    # cache-read share: the points carry the month's cache reads and prompt tokens
    assert sum(c["read"] for c in got["cache"]) == month_row["cache_read_tokens"]
    assert sum(c["prompt"] for c in got["cache"]) == month_row["input_tokens"] + month_row["cache_write_tokens"] + month_row["cache_read_tokens"]

    # month to date against last month: each line ends at its month's total
    lines = {m["month"]: m for m in got["mtd"]}
    assert abs(micro(lines[MONTH]["total"]) - micro(month_row["total_cost_usd"])) <= len(daily["rows"])
    assert abs(micro(lines["2026-08"]["total"]) - micro(prev_row["total_cost_usd"])) <= len(daily["rows"])
    assert lines["2026-08"]["points"] == 31 and lines[MONTH]["points"] == 30

    with capsys.disabled():
        print(f"\ndashboard {MONTH} in Chromium: {len(got['segs'])} daily segments = ${sum(drawn.values()) / 1e6:,.2f}, "
              f"{len(got['models'])} model bars = ${sum(models.values()) / 1e6:,.2f} (monthly report ${month_row['total_cost_usd']:,.2f}), "
              f"{len(got['cache'])} cache points, MTD lines {sorted(lines)}; screenshot {ARTIFACT_DIR / 'dashboard.png'}")


def test_the_browser_harness_does_catch_errors(chromium, tmp_path):
    """Control: a page with a script error, a console.error and an external image is
    reported as such (so an empty error list above means something)."""
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><html><body><img src="http://127.0.0.1:9/x.png">'
                    '<script>console.error("boom"); undefinedFunction();</script></body></html>')
    run = load_page(chromium, page.as_uri(), "1")
    text = "\n".join(run.console_errors)
    assert "boom" in text and "undefinedFunction" in text
    assert "http://127.0.0.1:9/x.png" in run.requests


def test_month_to_date_stops_today_and_skips_an_empty_previous_month():
    days = [{"period": f"2026-09-{d:02d}", "total_cost_usd": 1.0, "total_tokens": 10, "input_tokens": 10, "cache_write_tokens": 0,
             "cache_read_tokens": 0} for d in range(1, 6)]
    daily = {"periods": days, "period_providers": [dict(p, provider="claude") for p in days]}
    monthly = {"rows": [], "periods": [{"period": "2026-09", "total_cost_usd": 5.0, "total_tokens": 50, "sessions": 1, "events": 5}],
               "period_providers": []}
    page = dashboard.transform(daily, monthly, month="2026-09", today="2026-09-10")
    assert page.count('class="mtd-point this"') == 10, "the current month is drawn through today"
    assert 'class="mtd-line prev"' not in page and "no usage recorded in 2026-08" in page
    assert 'data-mtd="5.000000"' in page
