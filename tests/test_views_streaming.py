"""The incremental aggregate and price written entry by entry (bounded memory): the bytes
still equal a from-scratch run.

The price prices a chunk of periods at a time and keeps a large batch's bytes in a temp
file (``CHUNK_ENTRIES``, ``SPILL_BYTES``); the sizes here are tiny, so that every round
of ``_rounds`` goes through many chunks and spills.
"""
from __future__ import annotations

import os

import pytest

from scripts.core import price_incr, view_cache
from scripts.core.aggregation import Filters
from test_views_incremental import HOUR, T0, History, _book, aggregated_rounds, assert_reports_from_scratch, build


@pytest.fixture
def tiny_chunks(monkeypatch):
    spills = []
    real = view_cache.unnamed_temp

    def counted(directory):
        spills.append(directory)
        return real(directory)

    monkeypatch.setattr(price_incr, "CHUNK_ENTRIES", 5)
    monkeypatch.setattr(price_incr, "SPILL_BYTES", 64)
    monkeypatch.setattr(view_cache, "unnamed_temp", counted)
    return spills


@pytest.mark.parametrize("zone,filters,fee", [("UTC", Filters(), 0), ("Europe/Berlin", Filters(), 100)], ids=["utc", "berlin-fee"])
def test_chunked_spilled_price_equals_from_scratch(tmp_path, tiny_chunks, zone, filters, fee):
    for name, agg, out, book in aggregated_rounds(tmp_path, 17, zone, filters, fee):
        data = agg.read_bytes()
        stats = price_incr.build([data], book, str(out), str(tmp_path / "cache-price"), "warn",
                                 source=(str(agg), view_cache.file_identity(str(agg))))[0]
        assert_reports_from_scratch(name, data, book, out, stats)
        assert not [p for p in out.iterdir() if p.name.startswith(".")], "temp files left behind"
    assert tiny_chunks, "no batch was spilled"


@pytest.mark.parametrize("zone,filters,fee", [("UTC", Filters(), 0), ("Europe/Berlin", Filters(), 100)], ids=["utc", "berlin-fee"])
def test_price_read_from_the_file_by_pieces_equals_from_scratch(tmp_path, monkeypatch, zone, filters, fee):
    """The document read a small block at a time (``FileDocument``: what the command does)."""
    monkeypatch.setattr(price_incr.FileDocument, "BLOCK", 97)
    monkeypatch.setattr(price_incr._Region, "BLOCK", 101)
    monkeypatch.setattr(price_incr, "SPLIT_BYTES", 50)
    monkeypatch.setattr(price_incr, "CHUNK_ENTRIES", 7)
    for name, agg, out, book in aggregated_rounds(tmp_path, 19, zone, filters, fee):
        with open(agg, "rb") as fh:
            stats = price_incr.build(price_incr.FileDocument(fh.fileno()), book, str(out), str(tmp_path / "cache-price"), "warn",
                                     source=(str(agg), view_cache.file_identity(str(agg))))[0]
        assert_reports_from_scratch(name, agg.read_bytes(), book, out, stats)


def test_unpriced_model_stays_listed_when_several_of_its_periods_change(tmp_path):
    """A model the book does not know stays in ``unpriced`` as long as any period holds it,
    however many of its periods one run re-prices or drops."""
    from scripts.core.pricing_book import load_book

    h = History(seed=1)
    h.burst(T0, 24 * 10, 300)
    for d in range(5):
        h.call(T0 + d * 24 * HOUR + HOUR, model="brand-new-model", provider="claude")
    agg, out = tmp_path / "aggregates.json", tmp_path / "reports"
    out.mkdir()
    book = load_book(str(_book(tmp_path)))

    def run(name):
        build(h.rollup_rows(), "UTC", Filters(), str(agg), str(tmp_path / "ca"))
        data = agg.read_bytes()
        stats = price_incr.build(data, book, str(out), str(tmp_path / "cp"), "warn")[0]
        assert_reports_from_scratch(name, data, book, out, stats)
        return stats

    assert run("first").state == "missing"
    for d in (0, 1):  # two of its days re-priced in one run
        h.call(T0 + d * 24 * HOUR + HOUR + 60_000, model="brand-new-model", provider="claude")
    assert run("two changed").state == "used"
    for k in [k for k in h.rows if k[2] == "brand-new-model" and k[0] < T0 + 2 * 24 * HOUR]:
        del h.rows[k]
    assert run("two gone").state == "used"


@pytest.mark.parametrize("zone,filters", [("UTC", Filters()), ("America/Los_Angeles", Filters(since="2026-08-10", providers=["claude"])),
                                          ("Pacific/Kiritimati", Filters())],
                         ids=["utc", "la-filtered", "utc+14"])
def test_streamed_aggregate_equals_from_scratch(tmp_path, monkeypatch, zone, filters):
    """A full run (the first, or one where much changed) reads every rollup row once for
    the days and sessions and once more for the blocks, keeping none; the sessions are
    made a few at a time and wait in temp files (tiny here: every run spills), the
    rollup files are scanned a few bytes at a time. Round after round the document
    equals a from-scratch one, and no temp file is left."""
    from scripts.core import aggregate_incr
    from scripts.core.aggregation import aggregate_rollups
    from scripts.shared_io import dumps_line
    from test_views_incremental import _rounds

    monkeypatch.setattr(aggregate_incr, "SESSION_CHUNK", 3)
    monkeypatch.setattr(aggregate_incr, "BLOCK_CHUNK", 2)
    monkeypatch.setattr(aggregate_incr.UnitRuns, "SPILL_LIMIT", 64)
    monkeypatch.setattr(aggregate_incr.UnitRuns, "READ", 16)
    monkeypatch.setattr(aggregate_incr, "READ_BYTES", 300)
    monkeypatch.setattr(view_cache.Spill, "LIMIT", 64)
    spills = []
    real = view_cache.unnamed_temp

    def counted(directory):
        spills.append(directory)
        return real(directory)

    monkeypatch.setattr(view_cache, "unnamed_temp", counted)
    h = History(seed=23)
    # a session in two tools from the start: the first run's sessions take the multi-tool form
    h.call(T0 + 20 * 24 * HOUR, provider="claude", session="both")
    h.call(T0 + 20 * 24 * HOUR + HOUR, provider="codex", session="both")
    out, cache = tmp_path / "aggregates.json", tmp_path / "cache"
    states = []
    for name, change in _rounds(h):
        change()
        rows = h.rollup_rows()
        stats = build(rows, zone, filters, str(out), str(cache))
        states.append((name, stats.state, stats.source))
        assert out.read_bytes() == dumps_line(aggregate_rollups([list(r) for r in rows], zone, filters)), f"round {name!r}"
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp files left behind"
    assert states[0] == ("first history", "missing", "lazy")
    assert spills, "no session was spilled"
    assert ("a big change (everything recomputed)", "large", "lazy") in states


def test_state_saved_in_parts_loads_back_and_verifies(tmp_path):
    """``save_parts``: large buffers written after the marshalled rest, one digest."""
    from array import array

    path = str(tmp_path / "state.bin")
    identity = {"code": "c", "x": 1}
    blobs = [b"k" * 50, bytearray(b"d" * 7), array("q", [1, 2, 3])]
    view_cache.save_parts(path, identity, {"index": {"a": (0, 1)}, "n": 2}, blobs)
    (body, got), why = view_cache.load_parts(path, identity)
    assert why is None and body == {"index": {"a": (0, 1)}, "n": 2}
    assert got == [b"k" * 50, b"d" * 7, array("q", [1, 2, 3]).tobytes()]
    data = open(path, "rb").read()
    assert view_cache.verify(data) is None
    assert view_cache.load_parts(path, {"code": "c", "x": 2}) == (None, "params")
    assert view_cache.load_parts(path, {"code": "d", "x": 1}) == (None, "version")
    for cut in (data[:-1], data[:40], data + b"x"):
        with open(path, "wb") as fh:
            fh.write(cut)
        assert view_cache.load_parts(path, identity) == (None, "corrupt")
    assert view_cache.load_parts(str(tmp_path / "none"), identity) == (None, "missing")
    # a blob in pieces, one read from a spill as it is written; a lazy one left in the file
    spill = view_cache.Spill(str(tmp_path), limit=4)
    for b in (b"ab", b"cdef", b"gh"):
        spill.append(b)
    view_cache.save_parts(path, identity, {"n": 1}, [[b"xy", spill.piece(1, 8)], b"z" * 9], lazy=[0])
    spill.close()
    (body, got), why = view_cache.load_parts(path, identity, lazy=True)
    assert why is None and isinstance(got[0], view_cache.FileBlob) and got[1] == b"z" * 9
    os.replace(path, path + ".old")  # still readable: it holds its own descriptor
    assert got[0][0:9] == b"xybcdefgh" and got[0][3:5] == b"cd" and len(got[0]) == 9
    got[0].close()
    assert view_cache.load_parts(path + ".old", identity)[0][1] == [b"xybcdefgh", b"z" * 9]
