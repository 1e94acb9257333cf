"""The incremental price's byte comparison with the last run's document (``_walk``).

When ``build`` is told the file it priced, it keeps a hard link to it and the next run
finds the periods that changed by comparing bytes rather than by cutting up and hashing
every period. The reports must still equal a from-scratch run, round after round; the
layout ``_walk`` returns must equal the one a full cut gives, and every period whose
bytes differ must be among the ones it reports.
"""
from __future__ import annotations

import os
import random

import pytest

from scripts.core import price_incr, view_cache
from scripts.core.aggregation import Filters
from test_views_incremental import History, _expected_reports, aggregated_rounds, assert_reports_from_scratch, build


@pytest.mark.parametrize("zone,filters,fee", [("UTC", Filters(), 0), ("America/Los_Angeles", Filters(since="2026-08-10", providers=["claude"]), 0),
                                              ("Europe/Berlin", Filters(), 100)], ids=["utc", "la-filtered", "berlin-fee"])
def test_walked_price_equals_from_scratch(tmp_path, monkeypatch, zone, filters, fee):
    walked = []
    real = price_incr._walk_kind

    def spy(*a):
        r = real(*a)
        walked.append(r is not None)
        return r

    monkeypatch.setattr(price_incr, "_walk_kind", spy)
    per_round = []
    for name, agg, out, book in aggregated_rounds(tmp_path, 13, zone, filters, fee):
        walked.clear()
        data = agg.read_bytes()
        stats = price_incr.build(data, book, str(out), str(tmp_path / "cache-price"), "warn",
                                 source=(str(agg), view_cache.file_identity(str(agg))))[0]
        per_round.append((name, stats.state, sum(walked), len(walked)))
        assert_reports_from_scratch(name, data, book, out, stats)
    rounds = dict((r[0], r[1:]) for r in per_round)
    if fee:  # every key depends on the allocation basis: never walked
        assert all(r[2] == 0 for r in per_round), per_round
    else:
        assert rounds["append at the end"][1] >= 4, per_round
        assert rounds["a change in an old month"][1] >= 4, per_round
        assert rounds["nothing changed"][0] == "params" and rounds["nothing changed"][2] == 0


def test_walk_skipped_when_the_kept_document_is_not_the_one_recorded(tmp_path):
    from scripts.core.pricing_book import load_book

    h = History(seed=3)
    h.burst(1_785_542_400_000, 24 * 20, 600)
    agg = tmp_path / "aggregates.json"
    build(h.rollup_rows(), "UTC", Filters(), str(agg), str(tmp_path / "ca"))
    out = tmp_path / "reports"
    out.mkdir()
    book = load_book(str(price_incr.__file__).rsplit("/scripts/", 1)[0] + "/pricing.json")
    cache = tmp_path / "cp"

    def run():
        data = agg.read_bytes()
        price_incr.build(data, book, str(out), str(cache), "warn", source=(str(agg), view_cache.file_identity(str(agg))))
        for kind, (js, md) in _expected_reports(data, book).items():
            assert (out / f"{kind}.json").read_bytes() == js and (out / f"{kind}.md").read_bytes() == md

    run()
    kept = cache / price_incr.PREVIOUS
    assert os.path.samefile(kept, agg)
    # the document edited in place (the kept link is the same file): not compared with
    data = agg.read_bytes()
    with open(agg, "r+b") as fh:
        fh.write(data.replace(b'"events":1,', b'"events":2,', 1))
    run()
    # the link gone
    h.burst(1_785_542_400_000 + 20 * 24 * 3_600_000, 5, 30)
    build(h.rollup_rows(), "UTC", Filters(), str(agg), str(tmp_path / "ca"))
    kept.unlink()
    run()
    h.burst(1_785_542_400_000 + 21 * 24 * 3_600_000, 5, 30)
    build(h.rollup_rows(), "UTC", Filters(), str(agg), str(tmp_path / "ca"))
    run()


def _entries(rng, periods):
    """A region: per period (in order) 1-3 entries, as ``_groups`` expects them."""
    out = []
    for p in periods:
        for m in rng.sample(["a", "b", "c", "d"], rng.randint(1, 3)):
            out.append((p, m, rng.randrange(0, 50)))
    return out


def _region(entries):
    return b",".join(b'{"events":%d,"model":"%s","period":"%s","x":[1,2]}' % (v, m.encode(), p.encode()) for p, m, v in entries)


@pytest.mark.parametrize("seed", range(200))
def test_walk_matches_a_full_cut(seed):
    rng = random.Random(seed)
    periods = sorted({f"p{rng.randrange(0, 400):03d}" for _ in range(rng.randint(0, 120))})
    old_entries = _entries(rng, periods)
    new_entries = list(old_entries)
    for _ in range(rng.randint(0, 8)):
        op = rng.randrange(5)
        if op == 0 and new_entries:  # an entry's value changes
            i = rng.randrange(len(new_entries))
            p, m, _v = new_entries[i]
            new_entries[i] = (p, m, rng.randrange(50, 99))
        elif op == 1 and new_entries:  # an entry goes
            del new_entries[rng.randrange(len(new_entries))]
        elif op == 2 and new_entries:  # an entry comes, at the start or the end of its period
            i = rng.randrange(len(new_entries))
            p = new_entries[i][0]
            js = [j for j, e in enumerate(new_entries) if e[0] == p]
            at = js[0] if rng.random() < 0.5 else js[-1] + 1
            new_entries.insert(at, (p, "z", 1))
        elif op == 3:  # a new period
            p = f"p{rng.randrange(0, 400):03d}q"
            at = next((j for j, e in enumerate(new_entries) if e[0] > p), len(new_entries))
            new_entries[at:at] = [(p, "a", 5), (p, "b", 6)][: rng.randint(1, 2)]
        elif op == 4 and new_entries:  # a period goes
            p = rng.choice(new_entries)[0]
            new_entries = [e for e in new_entries if e[0] != p]
    old, new = _region(old_entries), _region(new_entries)
    old_layout = price_incr._layout(price_incr._groups(old))
    got = price_incr._walk(new, memoryview(old), old_layout)
    if got is None:  # allowed only when much changed
        assert len(set(old_entries) ^ set(new_entries)) > 8 or not old_entries
        return
    layout, changed, spots = got
    want = price_incr._layout(price_incr._groups(new))
    assert [list(x) for x in layout] == [list(x) for x in want]

    def by_period(entries):
        d = {}
        for e in entries:
            d.setdefault(e[0].encode(), []).append(e)
        return d

    before, after = by_period(old_entries), by_period(new_entries)
    differ = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert differ <= changed
    # where it cut a period out of the new region, the range holds exactly its entries
    for p, (start, end, count) in spots.items():
        assert new[start:end] == _region(after[p]) and count == len(after[p])


def test_units_of_regions_out_of_order_or_without_some_periods():
    """The cut's columns (_units) where a region is not in the periods' order or lacks
    some of them: each period's ranges still hold exactly its entries."""
    entries = {"rows": [("b", "m", 1), ("b", "n", 2), ("a", "m", 3), ("c", "m", 4)],
               "periods": [("a", "x", 0), ("c", "x", 0)],
               "pps": [("c", "y", 0), ("a", "y", 0), ("b", "y", 0)]}
    regions = {k: _region(v) for k, v in entries.items()}
    order, units, _layouts = price_incr._units((regions["pps"], regions["periods"], regions["rows"]))
    assert order == [b"a", b"b", b"c"]
    for o, period in enumerate(order):
        for slot, name in enumerate(("rows", "periods", "pps")):
            want = [e for e in entries[name] if e[0].encode() == period]
            got = units.unit(o, period)[slot]
            if not want:
                assert got is None
                continue
            assert regions[name][got[0]:got[1]] == _region(want) and got[2] == len(want)
    assert price_incr._Places([b"b", b"a", b"c"]).get(b"a") == 1 and price_incr._Places([b"a", b"c"]).get(b"b") is None
    with pytest.raises(price_incr.Unsplittable):
        price_incr._units((regions["pps"], regions["periods"], _region([("a", "m", 1), ("b", "m", 1), ("a", "n", 1)])))
