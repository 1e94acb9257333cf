"""The lazy reading of the rollup files by the incremental aggregate: whatever it cannot
vouch for (a string that looks like a row boundary, a cut or edited file, unsorted rows,
another layout) falls back to reading everything, never to a wrong answer."""
from __future__ import annotations

import pytest

from scripts.core.aggregate_incr import Fallback, LazyRollups, _day_ranges, build_from_files
from scripts.core.aggregation import DAY_MS, Filters, aggregate_rollups
from scripts.core.rollup import document
from scripts.shared_io import DataError, dumps_doc, dumps_line
from test_views_incremental import HOUR, T0, History

DAY = 24 * HOUR


def _write(tmp_path, rows, dump=dumps_line):
    rollups = tmp_path / "rollups"
    rollups.mkdir(exist_ok=True)
    paths = []
    for provider in ("claude", "codex"):
        path = rollups / f"{provider}.json"
        path.write_bytes(dump(document(provider, [r for r in rows if r[1] == provider])))
        paths.append(str(path))
    return paths


def _run(tmp_path, rows, paths=None, zone="Europe/Berlin"):
    """Build from the files and compare with a from-scratch aggregate of ``rows``."""
    paths = paths or _write(tmp_path, rows)
    out, cache = tmp_path / "aggregates.json", tmp_path / "cache"
    stats, n_rows = build_from_files(paths, zone, Filters(), str(out), str(cache))
    assert out.read_bytes() == dumps_line(aggregate_rollups([list(r) for r in rows], zone, Filters()))
    assert n_rows == len(rows)
    return stats


def test_day_ranges_are_the_utc_days():
    h = History(seed=3)
    h.burst(T0, 24 * 20, 800)
    rows = [r for r in h.rollup_rows() if r[1] == "claude"]
    inner = dumps_line(rows).rstrip(b"\n")[2:-2]
    ranges = _day_ranges(inner)
    days = sorted({r[0] // DAY_MS for r in rows})
    assert [d for d, _a, _b in ranges] == days
    import orjson

    for d, a, b in ranges:
        assert orjson.loads(b"[[" + inner[a:b] + b"]]") == [r for r in rows if r[0] // DAY_MS == d]


@pytest.mark.parametrize("n_fake", [1, 40])
@pytest.mark.parametrize("seed", range(6))
def test_projects_that_look_like_row_boundaries(tmp_path, seed, n_fake):
    """Project names holding ``],[`` and digits (a false row start inside a string):
    over rounds of changes the output stays that of a from-scratch run."""
    h = History(seed=seed)
    h.burst(T0, 24 * 30, 1500)
    stats = _run(tmp_path, h.rollup_rows())
    assert stats.state == "missing"
    fakes = [f"p],[{T0 + seed * DAY + 7},", f"x],[{T0 + 40 * DAY}", f'],[{T0 - DAY},"claude",', "q]],[[1,[2],[3", "back\\slash"]
    for k, fake in enumerate(fakes):
        for i in range(n_fake):
            h.call(T0 + ((i + seed) * 17 % 30) * DAY + (seed + k) * HOUR, project=fake)
        _run(tmp_path, h.rollup_rows())
        h.call(T0 + 29 * DAY + k * HOUR)  # a change at the end, with the fakes unchanged
        stats = _run(tmp_path, h.rollup_rows())
        assert stats.state in ("used", "large")


def test_lazy_reading_is_used_and_parses_few_days(tmp_path, monkeypatch):
    h = History(seed=5)
    for i in range(1500):  # sessions of a day or two, as real ones
        ts = T0 + h.rng.randrange(0, 30 * DAY)
        h.call(ts, provider=h.rng.choice(["claude", "codex"]), session=f"s{(ts - T0) // (DAY + HOUR)}-{i % 7}")
    _run(tmp_path, h.rollup_rows())
    parsed = []
    real = LazyRollups._file_day

    def spy(self, i, d):
        if (i, d) not in self._parsed:
            parsed.append(d)
        return real(self, i, d)

    monkeypatch.setattr(LazyRollups, "_file_day", spy)
    h.call(T0 + 29 * DAY + 20 * HOUR, session="new-one")
    stats = _run(tmp_path, h.rollup_rows())
    assert stats.state == "used" and stats.source == "lazy"
    assert parsed and len(set(parsed)) < 10, sorted(set(parsed))


def _one_round(tmp_path):
    h = History(seed=9)
    h.burst(T0, 24 * 20, 900)
    _run(tmp_path, h.rollup_rows())
    h.call(T0 + 19 * DAY + 3 * HOUR)
    return h


def test_cut_rollup_is_an_error_not_a_wrong_answer(tmp_path):
    h = _one_round(tmp_path)
    paths = _write(tmp_path, h.rollup_rows())
    before = (tmp_path / "aggregates.json").read_bytes()
    with open(paths[0], "rb") as fh:
        data = fh.read()
    for cut in (len(data) // 2, len(data) - 30):
        with open(paths[0], "wb") as fh:
            fh.write(data[:cut])
        with pytest.raises(DataError):
            build_from_files(paths, "Europe/Berlin", Filters(), str(tmp_path / "aggregates.json"), str(tmp_path / "cache"))
        assert (tmp_path / "aggregates.json").read_bytes() == before


def test_a_day_that_does_not_parse_is_an_error(tmp_path):
    h = _one_round(tmp_path)
    paths = _write(tmp_path, h.rollup_rows())
    data = open(paths[1], "rb").read()
    i = data.index(b"],[", len(data) // 2)
    with open(paths[1], "wb") as fh:
        fh.write(data[:i] + b"],,[" + data[i + 3:])
    with pytest.raises(DataError):
        build_from_files(paths, "Europe/Berlin", Filters(), str(tmp_path / "aggregates.json"), str(tmp_path / "cache"))


def test_unsorted_and_indented_rollups_fall_back(tmp_path):
    h = _one_round(tmp_path)
    rows = h.rollup_rows()
    claude = [r for r in rows if r[1] == "claude"]
    codex = [r for r in rows if r[1] == "codex"]
    # one row moved far from its place: the lazy day ranges cannot hold
    moved = claude[5:len(claude) // 2] + claude[:5] + claude[len(claude) // 2:]
    paths = _write(tmp_path, rows)
    with open(paths[0], "wb") as fh:
        fh.write(dumps_line(document("claude", moved)))
    stats = _run(tmp_path, moved + codex, paths)
    assert stats.source == "eager" and stats.state == "used"
    h.call(T0 + 2 * DAY)
    rows = h.rollup_rows()
    stats = _run(tmp_path, rows, _write(tmp_path, rows, dump=dumps_doc))  # indented: another layout
    assert stats.source == "eager" and stats.state == "used"
    h.call(T0 + 3 * DAY)
    stats = _run(tmp_path, h.rollup_rows())
    assert stats.source == "lazy"


def test_a_slot_that_is_not_a_number_falls_back():
    with pytest.raises(Fallback):
        _day_ranges(b'x,"claude"')



def test_a_day_holding_a_row_of_another_day_falls_back(tmp_path):
    rows = History(seed=2)
    rows.burst(T0, 48, 50)
    claude = [r for r in rows.rollup_rows() if r[1] == "claude"]
    claude[1], claude[-1] = claude[-1], claude[1]  # not sorted: a row of day 2 among day 1's
    path = tmp_path / "claude.json"
    path.write_bytes(dumps_line(document("claude", claude)))
    lazy = LazyRollups([str(path)])
    with pytest.raises(Fallback):
        lazy.all()


@pytest.mark.parametrize("read_bytes", [7, 64, 1000])
def test_files_scanned_a_piece_at_a_time(tmp_path, monkeypatch, read_bytes):
    """Rollup files read a few bytes at a time (days carried over reads, rows and
    strings cut anywhere): the day ranges and digests are those of one read; with fake
    row boundaries in strings added, over rounds the output stays that of a from-scratch
    run."""
    from scripts.core import aggregate_incr

    h = History(seed=11)
    h.burst(T0, 24 * 12, 700)
    paths = _write(tmp_path, h.rollup_rows())
    whole = LazyRollups(paths)
    monkeypatch.setattr(aggregate_incr, "READ_BYTES", read_bytes)
    pieces = LazyRollups(paths)
    try:
        assert pieces.digests == whole.digests and list(pieces.digests) == list(whole.digests)
        assert pieces.ranges == whole.ranges
        assert pieces.all() == whole.all()
    finally:
        whole.close()
        pieces.close()
    stats = _run(tmp_path, h.rollup_rows(), paths)
    for k in range(4):
        h.call(T0 + (4 + 2 * k) * DAY + 2 * HOUR, session=f"late-{k}")
        if k >= 2:
            h.call(T0 + (1 + k) * DAY + 5 * HOUR, project=f"p],[{T0 + 3 * DAY},")
        stats = _run(tmp_path, h.rollup_rows())
        assert stats.state in ("used", "large")
        if k < 2:
            assert stats.source == "lazy"
