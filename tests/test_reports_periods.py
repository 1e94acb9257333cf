"""Calls at 23:59 and 00:01 local time land on their local day, week and month; money
and subscription shares follow them; filters and the sessions/projects/blocks tables."""
from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from conftest import stage
from scripts.core.aggregation import Filters, SlotCalendar, aggregate_rollups, iso_ms
from scripts.core.costing import price_aggregates
from scripts.core.event import USAGE_KEYS, format_ms
from scripts.core.pricing_book import Book
from scripts.core.rollup import rollup_events


def event(local: str, zone: str, *, model="claude-sonnet-4-5", provider="claude", session="s1", project="alpha",
          n=0, **usage) -> dict:
    t = dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone)).astimezone(dt.timezone.utc)
    ms = int(t.timestamp() * 1000)
    u = {k: 0 for k in USAGE_KEYS}
    u.update(input_tokens=100, output_tokens=10)
    u.update(usage)
    return {"schema_version": 1, "id": f"{provider}:{local}:{model}:{n}", "provider": provider, "model": model,
            "raw_model": model, "session_id": session, "project": project, "timestamp": format_ms(ms), "usage": u,
            "total_tokens": sum(u[k] for k in USAGE_KEYS[:6]), "device": "test"}


def agg(events, zone, **filters):
    return aggregate_rollups(rollup_events(events), zone, Filters(**filters))


def periods(doc, kind):
    return {p["period"]: p for p in doc["reports"][kind]["periods"]}


def row_sums(doc, kind):
    out = {}
    for r in doc["reports"][kind]["rows"]:
        out.setdefault(r["period"], 0)
        out[r["period"]] += r["events"]
    return out


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"])
def test_midnight_and_month_boundary(zone):
    events = [
        event("2026-08-30T23:59:00", zone, n=1),  # Sunday: ISO week 35
        event("2026-08-31T00:01:00", zone, n=2),  # Monday: ISO week 36
        event("2026-08-31T23:59:00", zone, n=3),  # last minute of August
        event("2026-09-01T00:01:00", zone, n=4),  # first minute of September
    ]
    doc = agg(events, zone)
    assert row_sums(doc, "daily") == {"2026-08-30": 1, "2026-08-31": 2, "2026-09-01": 1}
    assert row_sums(doc, "monthly") == {"2026-08": 3, "2026-09": 1}
    assert row_sums(doc, "weekly") == {"2026-W35": 1, "2026-W36": 3}
    # the month a row's tokens are spread over is the local month too
    aug = [r for r in doc["reports"]["weekly"]["rows"] if r["period"] == "2026-W36"][0]
    assert aug["month_tokens"] == {"2026-08": 220, "2026-09": 110}
    assert doc["allocation_basis"] == {"2026-08": {"claude": 330}, "2026-09": {"claude": 110}}
    # a since/until filter is in local days
    assert row_sums(agg(events, zone, since="2026-08-31", until="2026-08-31"), "daily") == {"2026-08-31": 2}
    assert row_sums(agg(events, zone, since="2026-09-01"), "monthly") == {"2026-09": 1}


def test_the_same_calls_in_utc_fall_elsewhere():
    events = [event("2026-08-31T23:59:00", "America/Los_Angeles", n=1)]  # 2026-09-01T06:59Z
    assert row_sums(agg(events, "America/Los_Angeles"), "monthly") == {"2026-08": 1}
    assert row_sums(agg(events, "UTC"), "monthly") == {"2026-09": 1}


def test_dst_end_day_has_25_hours():
    zone = "America/Los_Angeles"  # 2026-11-01 01:00-02:00 happens twice
    t1 = dt.datetime(2026, 11, 1, 8, 30, tzinfo=dt.timezone.utc)  # 01:30 PDT
    t2 = dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.timezone.utc)  # 01:30 PST
    t3 = dt.datetime(2026, 11, 2, 7, 59, tzinfo=dt.timezone.utc)  # 23:59 PST on Nov 1
    evs = []
    for i, t in enumerate((t1, t2, t3)):
        e = event("2026-11-01T00:00:00", "UTC", n=i)
        e["timestamp"] = format_ms(int(t.timestamp() * 1000))
        evs.append(e)
    assert row_sums(agg(evs, zone), "daily") == {"2026-11-01": 3}


def test_slot_calendar_matches_zoneinfo_everywhere():
    for zone in ("America/Los_Angeles", "Australia/Lord_Howe", "Asia/Kathmandu", "America/St_Johns", "Europe/London"):
        cal = SlotCalendar(zone)
        tz = ZoneInfo(zone)
        start = int(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
        for slot in range(start, start + 366 * 86_400_000, 900_000 * 7):
            local = dt.datetime.fromtimestamp(slot / 1000, tz)
            y, w, _ = local.isocalendar()
            assert cal.of_slot(slot) == (local.strftime("%Y-%m-%d"), f"{y}-W{w:02d}", local.strftime("%Y-%m")), (zone, slot)


def test_iso_ms_is_event_format_ms():
    for ms in (0, 1, 999, 86_399_999, 1_785_556_800_123, 1_800_000_000_000):
        assert iso_ms(ms) == format_ms(ms)


BOOK = {
    "schema_version": 1,
    "models": {
        "claude-sonnet-4-5": {"input_usd_per_mtok": 3, "output_usd_per_mtok": 15, "cache_write_5m_usd_per_mtok": 3.75,
                              "cache_write_1h_usd_per_mtok": 6, "cache_read_usd_per_mtok": 0.3,
                              "tiers": [{"above_prompt_tokens": 200000, "input_usd_per_mtok": 6, "output_usd_per_mtok": 22.5,
                                         "cache_read_usd_per_mtok": 0.6}]},
    },
    "providers": {"claude": {"subscription_usd_month": 100}},
}


def priced(events, zone="UTC", **filters):
    return price_aggregates(agg(events, zone, **filters), Book(BOOK))


def test_subscription_is_spread_over_the_month_a_day_gets_its_share():
    events = [event("2026-08-03T10:00:00", "UTC", n=1, input_tokens=1000, output_tokens=0),
              event("2026-08-04T10:00:00", "UTC", n=2, input_tokens=3000, output_tokens=0)]
    daily = priced(events)["daily"]
    subs = {p["period"]: p["subscription_usd"] for p in daily["periods"]}
    assert subs == {"2026-08-03": 25.0, "2026-08-04": 75.0}
    assert daily["totals"]["subscription_usd"] == 100.0
    assert daily["totals"]["cost_usd"] == pytest.approx((4000 * 3) / 1e6)
    assert daily["totals"]["total_cost_usd"] == pytest.approx(100 + 0.012)
    # a filter keeps a day's share, never the whole fee
    one_day = priced(events, since="2026-08-04")["daily"]
    assert one_day["totals"]["subscription_usd"] == 75.0
    assert priced(events)["monthly"]["totals"]["subscription_usd"] == 100.0


def test_unpriced_models_are_never_zero_dollars():
    events = [event("2026-08-03T10:00:00", "UTC", n=1), event("2026-08-03T11:00:00", "UTC", n=2, model="mystery-1")]
    daily = priced(events)["daily"]
    rows = {r["model"]: r for r in daily["rows"]}
    assert rows["mystery-1"]["cost_usd"] is None and rows["mystery-1"]["priced_as"] is None
    assert rows["mystery-1"]["unpriced_tokens"] == 110 and rows["mystery-1"]["priced"] is False
    assert daily["unpriced"] == [{"events": 1, "model": "mystery-1", "provider": "claude", "tokens": 110}]
    # the period is partly priced: its cost is the priced part, its blended rate over priced tokens
    period = daily["periods"][0]
    assert period["priced"] is False and period["unpriced_tokens"] == 110
    assert period["cost_usd"] == pytest.approx(rows["claude-sonnet-4-5"]["cost_usd"])


def test_long_context_calls_use_the_tier_and_cache_savings_are_counted():
    small = event("2026-08-03T10:00:00", "UTC", n=1, input_tokens=10, output_tokens=100, cache_read_tokens=1000)
    big = event("2026-08-03T10:01:00", "UTC", n=2, input_tokens=10, output_tokens=100, cache_read_tokens=250_000)
    row = priced([small, big])["daily"]["rows"][0]
    expected = (10 * 3 + 100 * 15 + 1000 * 0.3) + (10 * 6 + 100 * 22.5 + 250_000 * 0.6)
    assert row["cost_usd"] == pytest.approx(expected / 1e6)
    assert row["cache_savings_usd"] == pytest.approx((1000 * (3 - 0.3) + 250_000 * (6 - 0.6)) / 1e6)
    assert row["blended_usd_per_mtok"] == pytest.approx((expected + 100e6) / row["total_tokens"], rel=1e-6)


def test_sessions_projects_and_blocks_tables():
    events = [
        event("2026-08-03T10:00:00", "UTC", session="a", project="alpha", n=1),
        event("2026-08-03T23:50:00", "UTC", session="a", project="alpha", n=2, model="claude-opus-4-5"),
        event("2026-08-04T00:10:00", "UTC", session="a", project="alpha", n=3),  # same session, next day
        event("2026-08-03T12:00:00", "UTC", session="b", project=None, n=4),
        event("2026-08-03T16:30:00", "UTC", session="c", project="beta", n=5, provider="codex", model="gpt-5-codex"),
    ]
    doc = agg(events, "UTC")
    sessions = doc["reports"]["sessions"]
    assert {p["period"]: (p["sessions"], p["project"]) for p in sessions["periods"]} == {
        "a": (1, "alpha"), "b": (1, None), "c": (1, "beta")}
    assert {(r["period"], r["model"]): r["events"] for r in sessions["rows"]} == {
        ("a", "claude-sonnet-4-5"): 2, ("a", "claude-opus-4-5"): 1, ("b", "claude-sonnet-4-5"): 1, ("c", "gpt-5-codex"): 1}
    projects = {p["period"]: p["sessions"] for p in doc["reports"]["projects"]["periods"]}
    assert projects == {"alpha": 1, "(none)": 1, "beta": 1}
    assert row_sums(agg(events, "UTC", projects=["(none)"]), "daily") == {"2026-08-03": 1}
    # blocks: claude 10:00-15:00 (10:00, 12:00), then 23:00-04:00 after a gap; codex on its own
    blocks = doc["reports"]["blocks"]
    assert [(p["provider"], p["start"], p["end"], p["sessions"]) for p in blocks["periods"]] == [
        ("claude", "2026-08-03T10:00:00.000Z", "2026-08-03T15:00:00.000Z", 2),
        ("codex", "2026-08-03T16:00:00.000Z", "2026-08-03T21:00:00.000Z", 1),
        ("claude", "2026-08-03T23:00:00.000Z", "2026-08-04T04:00:00.000Z", 1),
    ]
    assert blocks["periods"] == blocks["period_providers"]
    # the whole-range tables are the same in every report
    for kind in ("weekly", "monthly", "sessions", "projects", "blocks"):
        assert doc["reports"][kind]["totals"] == doc["reports"]["daily"]["totals"]
        assert doc["reports"][kind]["by_model"] == doc["reports"]["daily"]["by_model"]
    assert doc["reports"]["daily"]["totals"]["sessions"] == 3


def test_aggregate_pipe_accepts_events_and_is_deterministic(tmp_path):
    events = [event("2026-08-31T23:59:00", "America/Los_Angeles", n=i) for i in range(3)]
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events + events)  # repeated ids count once
    one = stage("aggregate", "-", "--timezone", "America/Los_Angeles", input=data).stdout
    two = stage("aggregate", "-", "--timezone", "America/Los_Angeles", input=data).stdout
    assert one == two
    doc = json.loads(one)
    assert doc["reports"]["daily"]["totals"]["events"] == 3
    assert doc["reports"]["daily"]["periods"][0]["period"] == "2026-08-31"


def test_a_block_across_a_local_month_boundary_spreads_its_tokens_over_both_months():
    zone = "America/Los_Angeles"
    events = [event("2026-08-31T23:30:00", zone, n=1), event("2026-09-01T00:30:00", zone, n=2, input_tokens=300),
              event("2026-08-15T10:00:00", zone, n=3)]
    blocks = agg(events, zone)["reports"]["blocks"]
    months = {r["period"]: r["month_tokens"] for r in blocks["rows"]}
    assert sorted(months.values(), key=len) == [{"2026-08": 110}, {"2026-08": 110, "2026-09": 310}]
