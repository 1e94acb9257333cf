"""The listing streamed into the spool (sources.summarize_source, what the listing child of
refresh --check runs): the same stamp facts and manifest bytes as a listing held whole
(SourceListing.summary), with memory that does not grow with the number of files."""
from __future__ import annotations

import os
import random
import tracemalloc

import pytest

from scripts.core import sources
from scripts.core.sorted_runs import RunFile, SortedRuns

ODD_NAMES = ['a "quoted" name', "back\\slash", "tab\tand\nnewline\x01", "é ü 日本 \u2028 \x7f", "Z upper", "~tilde", "plain"]


def small_runs(monkeypatch, run=16, block=4, fan_in=3):
    """Runs small enough for a few hundred files to spill many and fold them."""
    monkeypatch.setattr(SortedRuns, "RUN", run)
    monkeypatch.setattr(RunFile, "BLOCK", block)
    monkeypatch.setattr(SortedRuns, "FAN_IN", fan_in)


def claude_tree(root, n_files: int, projects: int = 7) -> dict:
    """``n_files`` logs under ``root/projects/<project>/``, some with odd names; the
    environment that points the claude source at them."""
    for i in range(n_files):
        project = root / "projects" / f"{ODD_NAMES[i % len(ODD_NAMES)]} {i % projects}"
        project.mkdir(parents=True, exist_ok=True)
        (project / f"{ODD_NAMES[(i * 3) % len(ODD_NAMES)]}-{i}.jsonl").write_bytes(b"x" * (i % 5))
    return {"CLAUDE_CONFIG_DIR": str(root)}


def both(source: str, environ: dict, spool_dir) -> tuple:
    """(held, streamed): each listing's summary and its manifest's bytes."""
    out = []
    for summarize in (lambda spool: sources.list_source(source, environ).summary(spool), lambda spool: sources.summarize_source(source, spool, environ)):
        with sources.ManifestSpool.create(str(spool_dir)) as spool:
            os.write(spool.fd, b"something before")  # the manifest goes at the end
            summary = summarize(spool)
            out.append((summary.as_tuple(), os.pread(spool.fd, summary.manifest_at[1], summary.manifest_at[0])))
    return tuple(out)


def test_sorted_runs_give_back_what_sorted_gives(monkeypatch, tmp_path):
    small_runs(monkeypatch)
    rng = random.Random(7)
    items = [(rng.choice("abcdefgh") * rng.randint(1, 3), i) for i in range(500)]  # many equal keys
    with SortedRuns(str(tmp_path)) as runs:
        runs.extend(items[:250])
        for item in items[250:]:
            runs.add(item)
        assert runs.spilled_runs >= 1
        assert list(runs.sorted()) == sorted(items, key=lambda t: t[0])  # stable, as sorted is


def test_sorted_runs_hold_everything_where_no_temp_file_can_be_made(monkeypatch, tmp_path):
    small_runs(monkeypatch)
    items = [(str(-i), i) for i in range(100)]
    with SortedRuns(str(tmp_path / "missing")) as runs:
        runs.extend(items)
        assert runs.spilled_runs == 0
        assert list(runs.sorted()) == sorted(items)


@pytest.mark.parametrize("n_files", [0, 1, 300])
def test_streamed_listing_is_the_held_one(monkeypatch, tmp_path, n_files):
    small_runs(monkeypatch)  # 300 files: ~19 runs spilled, folded every 3
    environ = claude_tree(tmp_path / "claude", n_files)
    (tmp_path / "claude" / "projects").mkdir(parents=True, exist_ok=True)
    held, streamed = both("claude", environ, tmp_path)
    assert streamed == held
    assert streamed[0][3] == n_files


def test_names_not_utf8_are_skipped_and_reported_alike(monkeypatch, tmp_path):
    small_runs(monkeypatch)
    environ = claude_tree(tmp_path / "claude", 40)
    project = os.fsencode(tmp_path / "claude" / "projects" / "p")
    os.makedirs(project)
    for name in (b"bad\xff.jsonl", b"also \xe9 bad.jsonl"):
        open(os.path.join(project, name), "wb").close()
    held, streamed = both("claude", environ, tmp_path)
    assert streamed == held
    assert len(streamed[0][-1]) == 2  # skipped, as shown


def test_a_path_discovered_twice_is_listed_once(monkeypatch, tmp_path):
    small_runs(monkeypatch, run=2, block=1, fan_in=2)
    for name in ("b", "a", "c"):
        (tmp_path / name).write_bytes(b"12")
    db = str(tmp_path / "b")
    # cursor's roots are the files themselves: a root given twice is discovered twice
    environ = {"CURSOR_STATE_DB": ",".join([db, str(tmp_path / "a"), db, str(tmp_path / "c"), db])}
    if sources.roots("cursor", environ).count(db) < 2:
        pytest.skip("cursor's roots do not keep a root given twice")
    held, streamed = both("cursor", environ, tmp_path)
    assert streamed == held
    assert streamed[0][3] == 3


def _peak_bytes(environ, spool_dir) -> int:
    with sources.ManifestSpool.create(str(spool_dir)) as spool:
        sources.summarize_source("claude", spool, environ)  # warm: imports, caches
        tracemalloc.start()
        try:
            sources.summarize_source("claude", spool, environ)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def test_streamed_listing_holds_no_more_for_ten_times_the_files(tmp_path):
    """2,000 files, then 20,000: the streamed listing's peak grows by less than 0.4 MB (it
    was ~0.9 and ~1.0 MB: a run held, a block of each run merged, a write's worth of the
    manifest); the listing held whole takes ~0.35 KB a file (7 MB here)."""
    small = claude_tree(tmp_path / "small", 2_000, projects=40)
    large = claude_tree(tmp_path / "large", 20_000, projects=40)
    peak_small, peak_large = _peak_bytes(small, tmp_path), _peak_bytes(large, tmp_path)
    tracemalloc.start()
    try:
        sources.list_source("claude", large)
        held = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak_large < peak_small + 400_000, (peak_small, peak_large)
    assert peak_large < held / 5, (peak_large, held)
