"""Incremental aggregate and price: the bytes always equal a from-scratch run.

Unit level: synthetic rollup rows go through rounds of changes (appends, a change in an
old month, a session across a month boundary, a call near a block boundary, removed
rows, several time zones and filters), and after every round the incremental output is
compared with ``aggregate_rollups`` / ``price_aggregates`` + ``render`` from scratch.
Make level: ``make all`` over rounds of appended logs equals ``FORCE=1``; a pricing
change re-prices without re-aggregating; a corrupted or foreign state is rebuilt.
"""
from __future__ import annotations

import json
import os
import random
import shutil

import pytest

from conftest import ROOT, load_json, make, sample_env
from scripts.core import view_cache
from scripts.core.aggregate_incr import build_from_files
from scripts.core.aggregation import Filters, aggregate_rollups
from scripts.shared_io import dumps_line

HOUR = 3_600_000
SLOT = 900_000
T0 = 1_785_542_400_000  # 2026-08-01T00:00:00Z


def _row(slot, provider, model, project, session, ctx=0, events=1, rng=None):
    rng = rng or random
    first = slot + rng.randrange(0, SLOT // 2)
    last = first + rng.randrange(0, SLOT // 2 - 1)
    usage = [rng.randrange(0, 5000) for _ in range(8)]
    usage[7] = min(usage[7], usage[2])
    return [slot, provider, model, project, session, "dev", ctx, events, first, last, *usage]


class History:
    """Rollup rows like normalize writes them: per source, sorted, one row per key."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.rows: dict[tuple, list] = {}
        self.n = 0

    def call(self, ts, provider="claude", model=None, project=None, session=None, ctx=0):
        rng = self.rng
        model = model or rng.choice(["claude-sonnet-4-5", "claude-opus-4-1", "gpt-5-codex"])
        project = project if project is not None else rng.choice(["alpha", "beta", None, "gamma"])
        session = session or f"s{rng.randrange(0, 40)}"
        slot = ts - ts % SLOT
        key = (slot, provider, model, project, session, "dev", ctx)
        new = _row(slot, provider, model, project, session, ctx, rng=rng)
        new[8] = new[9] = ts
        old = self.rows.get(key)
        if old is None:
            self.rows[key] = new
        else:
            old[7] += 1
            old[8] = min(old[8], ts)
            old[9] = max(old[9], ts)
            for i in range(10, 18):
                old[i] += new[i]

    def burst(self, start, hours, n, **kw):
        for _ in range(n):
            self.call(start + self.rng.randrange(0, hours * HOUR), provider=self.rng.choice(["claude", "codex"]), **kw)

    def drop(self, k):
        for key in self.rng.sample(sorted(self.rows, key=repr), k):
            del self.rows[key]

    def rollup_rows(self):
        out = []
        for provider in ("claude", "codex"):
            mine = [list(v) for k, v in self.rows.items() if k[1] == provider]
            mine.sort(key=lambda r: (r[0], r[1], r[2], r[3] or "", r[4], r[5], r[6]))
            out += mine
        return out


def _rounds(h: History):
    """(name, change) pairs applied one after another."""
    day = 24 * HOUR
    yield "first history", lambda: h.burst(T0, 24 * 50, 3000)
    yield "append at the end", lambda: h.burst(T0 + 50 * day, 20, 60)
    yield "a change in an old month", lambda: h.call(T0 + 3 * day + 5 * HOUR, project="alpha")
    yield "a session across the month boundary", lambda: [
        h.call(T0 + 31 * day - HOUR // 2, provider="codex", session="boundary"),
        h.call(T0 + 31 * day + HOUR // 2, provider="codex", session="boundary")]
    yield "a call near a block boundary", lambda: h.call(max(r[9] for r in h.rows.values() if r[1] == "claude") + 5 * HOUR - 60_000, provider="claude")
    yield "long-context calls and a new model", lambda: [h.call(T0 + 51 * day, ctx=200000, model="claude-sonnet-4-5"),
                                                       h.call(T0 + 51 * day + HOUR, model="brand-new-model")]
    yield "one session in two tools", lambda: [h.call(T0 + 52 * day, provider="claude", session="both"),
                                             h.call(T0 + 52 * day + HOUR, provider="codex", session="both")]
    yield "rows removed (forget)", lambda: h.drop(5)
    yield "the two-tool session gone again", lambda: [h.rows.pop(k) for k in [k for k in h.rows if k[4] == "both" and k[1] == "codex"]]
    yield "nothing changed", lambda: None
    yield "a big change (everything recomputed)", lambda: h.burst(T0, 24 * 50, 800)
    yield "append again", lambda: h.burst(T0 + 53 * day, 30, 40)


def build(rows, zone, filters, out, cache, force=False):
    """The incremental aggregate of ``rows`` written as rollup files (one per provider,
    as normalize writes them) next to ``cache``."""
    from scripts.core.rollup import document
    from scripts.shared_io import write_bytes

    rollups = os.path.join(os.path.dirname(cache), "rollups")
    os.makedirs(rollups, exist_ok=True)
    paths = []
    for provider in ("claude", "codex"):
        path = os.path.join(rollups, provider + ".json")
        write_bytes(path, dumps_line(document(provider, [r for r in rows if r[1] == provider])))
        paths.append(path)
    stats, n_rows = build_from_files(paths, zone, filters, out, cache, force)
    assert n_rows == len(rows)
    return stats


CASES = [
    ("UTC", Filters()),
    ("Europe/Berlin", Filters()),
    ("America/Los_Angeles", Filters(since="2026-08-10", providers=["claude"])),
    ("Asia/Kolkata", Filters(projects=["alpha", "(none)"])),
]


@pytest.mark.parametrize("zone,filters", CASES, ids=[c[0] for c in CASES])
def test_incremental_aggregate_equals_from_scratch(tmp_path, zone, filters):
    h = History(seed=len(zone))
    out = tmp_path / "aggregates.json"
    cache = tmp_path / "cache"
    states = []
    for name, change in _rounds(h):
        change()
        rows = h.rollup_rows()
        stats = build(rows, zone, filters, str(out), str(cache))
        states.append((name, stats.state, stats.reused, stats.recomputed, stats.source))
        expected = dumps_line(aggregate_rollups([list(r) for r in rows], zone, filters))
        assert out.read_bytes() == expected, f"round {name!r}: incremental differs from scratch ({stats.as_dict()})"
    used = [s for s in states if s[1] == "used"]
    assert len(used) >= 8, states
    assert all(s[2] > s[3] for s in used if s[0] not in ("rows removed (forget)",)), states
    assert ("a big change (everything recomputed)", "large") == states[-2][:2]
    # with a state, the rollups are read lazily (only the days needed are parsed)
    assert all(s[4] == "lazy" for s in states if s[1] in ("used", "large")), states


def test_bad_states_recompute_everything(tmp_path):
    h = History(seed=7)
    h.burst(T0, 24 * 40, 1500)
    out, cache = tmp_path / "aggregates.json", tmp_path / "cache"
    rows = h.rollup_rows()
    expected = dumps_line(aggregate_rollups([list(r) for r in rows], "UTC", Filters()))
    assert build(rows, "UTC", Filters(), str(out), str(cache)).state == "missing"
    state = cache / "state.bin"
    good = state.read_bytes()
    for damage, reason in ((good[:-100], "corrupt"), (good[:50], "corrupt"), (b"junk", "corrupt"),
                           (good.replace(b'"version":1', b'"version":9'), "version")):
        state.write_bytes(damage)
        stats = build(rows, "UTC", Filters(), str(out), str(cache))
        assert stats.state == reason and stats.reused == 0
        assert out.read_bytes() == expected
    # another code version: the header's identity differs
    stats = build(rows, "UTC", Filters(), str(out), str(cache))
    assert stats.state == "used"
    view_cache.save(str(state), {"code": "older"}, {})
    assert build(rows, "UTC", Filters(), str(out), str(cache)).state == "version"
    # other parameters
    assert build(rows, "UTC", Filters(since="2026-08-05"), str(out), str(cache)).state == "params"
    assert build(rows, "UTC", Filters(), str(out), str(cache)).state == "params"
    # an output that is not the one the state describes (edited, or left by a killed run)
    out.write_bytes(out.read_bytes().replace(b'"kind":"aggregates"', b'"kind":"aggregateZ"'))
    assert build(rows, "UTC", Filters(), str(out), str(cache)).state == "output"
    assert out.read_bytes() == expected
    assert build(rows, "UTC", Filters(), str(out), str(cache), force=True).state == "bypassed"
    assert out.read_bytes() == expected


def test_days_file_not_the_recorded_one_recomputes_everything(tmp_path):
    """The days' accumulators live in days.bin beside the state, which records its
    identity: a days.bin replaced (here by a copy), or renamed in by a run killed before
    its state was saved, makes the state unusable, never misread."""
    h = History(seed=11)
    h.burst(T0, 24 * 30, 800)
    out, cache = tmp_path / "aggregates.json", tmp_path / "cache"
    assert build(h.rollup_rows(), "UTC", Filters(), str(out), str(cache)).state == "missing"
    days, state = cache / "days.bin", cache / "state.bin"
    assert view_cache.verify(days.read_bytes()) is None  # a state's head: tests/faults checks it so
    shutil.copy(days, tmp_path / "copy")
    os.replace(tmp_path / "copy", days)
    assert build(h.rollup_rows(), "UTC", Filters(), str(out), str(cache)).state == "output"
    old_state = state.read_bytes()
    h.burst(T0 + 30 * 24 * HOUR, 10, 40)
    rows = h.rollup_rows()
    assert build(rows, "UTC", Filters(), str(out), str(cache)).state == "used"
    state.write_bytes(old_state)  # as if the run was killed between days.bin and state.bin
    stats = build(rows, "UTC", Filters(), str(out), str(cache))
    assert stats.state == "output" and stats.reused == 0
    assert out.read_bytes() == dumps_line(aggregate_rollups([list(r) for r in rows], "UTC", Filters()))
    assert build(rows, "UTC", Filters(), str(out), str(cache)).state == "used"


# ---------------------------------------------------------------- price
def _book(tmp_path, name="book.json", fee=0, double=None):
    doc = json.loads((ROOT / "pricing.json").read_text())
    doc["providers"]["claude"]["subscription_usd_month"] = fee
    if double:
        doc["models"][double]["output_usd_per_mtok"] *= 2
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2))
    return path


def _expected_reports(agg_bytes, book):
    from scripts.core.costing import price_aggregates
    from scripts.core.render import render

    reports = price_aggregates(json.loads(agg_bytes), book)
    return {k: (dumps_line(r), render(r, "markdown").encode()) for k, r in reports.items()}


def aggregated_rounds(tmp_path, seed, zone, filters, fee):
    """Per round of ``_rounds``: its name, the aggregates built incrementally, the reports
    directory and the book to price with (a rate doubled from the "nothing changed"
    round on: a price change re-prices every period and re-aggregates nothing)."""
    from scripts.core.pricing_book import load_book

    h = History(seed=seed)
    agg = tmp_path / "aggregates.json"
    out = tmp_path / "reports"
    out.mkdir()
    book_path = _book(tmp_path, fee=fee)
    for name, change in _rounds(h):
        change()
        build(h.rollup_rows(), zone, filters, str(agg), str(tmp_path / "cache-agg"))
        if name == "nothing changed":
            book_path = _book(tmp_path, "book2.json", fee=fee, double="claude-sonnet-4-5")
        yield name, agg, out, load_book(str(book_path))


def assert_reports_from_scratch(name, data, book, out, stats):
    for kind, (js, md) in _expected_reports(data, book).items():
        assert (out / f"{kind}.json").read_bytes() == js, f"round {name!r}: {kind}.json differs ({stats.as_dict()})"
        assert (out / f"{kind}.md").read_bytes() == md, f"round {name!r}: {kind}.md differs ({stats.as_dict()})"


@pytest.mark.parametrize("zone,filters,fee", [("UTC", Filters(), 0), ("Europe/Berlin", Filters(), 100),
                                              ("America/Los_Angeles", Filters(since="2026-08-10", providers=["claude"]), 20)],
                         ids=["utc", "berlin-fee", "la-filtered-fee"])
def test_incremental_price_equals_from_scratch(tmp_path, zone, filters, fee):
    from scripts.core.price_incr import build as price_build

    states = []
    for name, agg, out, book in aggregated_rounds(tmp_path, 11, zone, filters, fee):
        stats, _unpriced, _written = price_build(agg.read_bytes(), book, str(out), str(tmp_path / "cache-price"), "warn")
        states.append((name, stats.state, stats.reused, stats.recomputed))
        assert_reports_from_scratch(name, agg.read_bytes(), book, out, stats)
    by_name = {s[0]: s for s in states}
    assert by_name["nothing changed"][1] == "params" and by_name["nothing changed"][2] == 0
    if not fee:
        assert by_name["append at the end"][1] == "used"
        assert by_name["append at the end"][2] > by_name["append at the end"][3], states
        assert by_name["a change in an old month"][2] > 5 * by_name["a change in an old month"][3], states


def test_price_state_damage_and_foreign_documents(tmp_path):
    from scripts.core.price_incr import Unsplittable, build as price_build
    from scripts.core.pricing_book import load_book

    h = History(seed=5)
    h.burst(T0, 24 * 30, 800)
    agg = tmp_path / "aggregates.json"
    build(h.rollup_rows(), "UTC", Filters(), str(agg), str(tmp_path / "ca"))
    out = tmp_path / "reports"
    out.mkdir()
    book = load_book(str(ROOT / "pricing.json"))
    expected = _expected_reports(agg.read_bytes(), book)

    def run(**kw):
        stats = price_build(agg.read_bytes(), book, str(out), str(tmp_path / "cp"), "warn", **kw)[0]
        for kind, (js, md) in expected.items():
            assert (out / f"{kind}.json").read_bytes() == js and (out / f"{kind}.md").read_bytes() == md
        return stats

    assert run().state == "missing"
    assert run().state == "used"
    state = tmp_path / "cp" / "state.bin"
    state.write_bytes(state.read_bytes()[:-10])
    assert run().state == "corrupt"
    (out / "sessions.md").write_bytes(b"edited by hand\n")
    s = run()
    assert s.state == "output" and s.reused > 0  # the other reports are still reused
    assert run(force=True).state == "bypassed"
    # what the byte-level cut does not take is priced whole by the caller
    doc = json.loads(agg.read_bytes())
    doc["reports"]["daily"]["rows"][0]["model"] = 'a "quoted" model'
    with pytest.raises(Unsplittable):
        price_build(dumps_line(doc), book, str(out), str(tmp_path / "cp"), "warn")


# ---------------------------------------------------------------- make all
VIEW_GLOBS = ("aggregates/*.json", "reports/*.json", "reports/*.md")


def _views(art):
    return {p.relative_to(art).as_posix(): p.read_bytes() for g in VIEW_GLOBS for p in sorted(art.glob(g))}


def _ran(art):
    s = load_json(art / "runs" / "latest.json")
    return {k for k, v in s["stages"].items() if v["ran"]}, s


def test_make_all_incremental_views_equal_force(sample_logs, tmp_path):
    logs = sample_logs(events=3000, seed=33)
    live = tmp_path / "live"
    art = tmp_path / "art"
    book = tmp_path / "pricing.json"
    shutil.copy(ROOT / "pricing.json", book)
    env = sample_env(live, art, PRICING=book, TIMEZONE="UTC")
    env["CLAUDE_CONFIG_DIR"] = str(live / "home" / ".claude")
    env["CODEX_HOME"] = str(live / "home" / ".codex")

    def check_against_force(env_now):
        fresh = tmp_path / f"fresh{len(list(tmp_path.glob('fresh*')))}"
        make("all", env=dict(env_now, ARTIFACTS=str(fresh), FORCE="1"))
        assert _views(art) == _views(fresh)

    from scripts.bench import append_one_percent

    shutil.copytree(logs / "home", live / "home")
    make("all", env=env)
    # small batches of new calls: at the end, in an old month, across the month boundary
    for r, (start, days) in enumerate((("2026-09-30", 1), ("2026-08-03", 1), ("2026-08-31", 2))):
        append_one_percent(str(live / "home"), str(sample_logs(events=40, seed=100 + r, start=start, days=days)), r)
        make("all", env=env)
        ran, s = _ran(art)
        assert {"aggregate", "price"} <= ran
    agg, rep = s["stages"]["aggregate"]["cache"], s["stages"]["price"]["cache"]
    assert agg["state"] == "used" and agg["rows_reused"] > agg["rows_recomputed"] > 0, agg
    assert rep["state"] == "used" and rep["rows_reused"] > rep["rows_recomputed"] > 0, rep
    check_against_force(env)

    # a price change re-prices (whole: the state is for another book) and re-aggregates nothing
    doc = json.loads(book.read_text())
    doc["models"]["claude-sonnet-4-5"]["output_usd_per_mtok"] *= 2
    book.write_text(json.dumps(doc, indent=2))
    make("all", env=env)
    ran, s = _ran(art)
    assert "aggregate" not in ran and "price" in ran
    assert s["stages"]["price"]["cache"]["state"] == "params" and s["stages"]["price"]["cache"]["rows_reused"] == 0
    check_against_force(env)

    # another time zone: everything recomputed, the same as from scratch
    env_tz = dict(env, TIMEZONE="Asia/Tokyo")
    make("all", env=env_tz)
    ran, s = _ran(art)
    assert s["stages"]["aggregate"]["cache"]["state"] == "params"
    check_against_force(env_tz)

    # a corrupted state file: recomputed, never misread
    state = art / "cache" / "aggregate" / "state.bin"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))
    (art / "cache" / "price" / "state.bin").write_bytes(b"not a state")
    os.utime(art / "stamps" / "params.fp")  # make aggregate and price run
    make("all", env=env_tz)
    _ran_now, s = _ran(art)
    assert s["stages"]["aggregate"]["cache"]["state"] == "corrupt"
    assert s["stages"]["price"]["cache"]["state"] == "corrupt"
    check_against_force(env_tz)

    # FORCE=1 bypasses the states
    make("all", env=dict(env_tz, FORCE="1"))
    _ran_now, s = _ran(art)
    assert s["stages"]["aggregate"]["cache"]["state"] == "bypassed" and s["stages"]["price"]["cache"]["state"] == "bypassed"


def test_incremental_aggregate_after_a_run_with_no_calls(tmp_path):
    # a first run with nothing in it (a source locked or empty) leaves a state whose
    # sessions index is empty; the next run, with calls, builds on it
    h = History(seed=5)
    out = tmp_path / "aggregates.json"
    cache = tmp_path / "cache"
    assert build([], "UTC", Filters(), str(out), str(cache)).state == "missing"
    h.burst(T0, 5, 12)
    rows = h.rollup_rows()
    stats = build(rows, "UTC", Filters(), str(out), str(cache))
    assert out.read_bytes() == dumps_line(aggregate_rollups([list(r) for r in rows], "UTC", Filters())), stats.as_dict()
