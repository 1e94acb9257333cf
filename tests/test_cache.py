"""The caches tell the truth: incremental equals from-scratch, and the metrics say what happened."""
from __future__ import annotations

import json
import marshal
import os
import shutil

import pytest

from conftest import ROOT, load_json, make, sample_env

ARTIFACT_GLOBS = ("events/*/*.jsonl", "events/*.jsonl", "rollups/*.json", "aggregates/*.json", "reports/*.json", "reports/*.md")


def _snapshot_bytes(art):
    out = {}
    for pattern in ARTIFACT_GLOBS:
        for p in sorted(art.glob(pattern)):
            out[p.relative_to(art).as_posix()] = p.read_bytes()
    return out


def assert_same_as_forced_rebuild(env, art, fresh) -> None:
    """``make all`` with FORCE=1 into ``fresh`` gives the same artifacts, byte for byte,
    as the bundle ``art``."""
    make("all", env=dict(env, ARTIFACTS=str(fresh), FORCE="1"))
    a, b = _snapshot_bytes(art), _snapshot_bytes(fresh)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], f"{name} differs between incremental and FORCE=1"


def _cut(src, dst, fraction, partial=False):
    """Copy the first ``fraction`` of src's lines to dst (optionally plus half a line)."""
    lines = src.read_bytes().splitlines(keepends=True)
    keep = lines[: int(len(lines) * fraction)]
    tail = lines[len(keep)][: len(lines[len(keep)]) // 2] if partial and len(keep) < len(lines) else b""
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(b"".join(keep) + tail)


def _grow(home_src, home_dst, fraction, partial):
    files = sorted(p for p in home_src.rglob("*.jsonl"))
    for i, src in enumerate(files):
        dst = home_dst / src.relative_to(home_src)
        if i % 3 == 0 and fraction < 1:
            continue  # some files appear only in a later round
        _cut(src, dst, fraction if i % 2 else min(1.0, fraction * 1.5), partial=partial and i % 4 == 1)


def test_incremental_rounds_equal_a_forced_rebuild(sample_logs, tmp_path):
    logs = sample_logs(events=3000, seed=21)
    live = tmp_path / "live"
    art = tmp_path / "art"
    env = sample_env(live, art)
    env["CLAUDE_CONFIG_DIR"] = str(live / "home" / ".claude")
    env["CODEX_HOME"] = str(live / "home" / ".codex")
    for fraction, partial in ((0.3, True), (0.6, True), (0.8, False), (1.0, False)):
        _grow(logs / "home", live / "home", fraction, partial)
        make("all", env=env)
    summary = load_json(art / "runs" / "latest.json")
    assert summary["caches"]["parsed_events"]["resumed"] > 0, "appended logs should resume at their offset"
    fresh = tmp_path / "fresh"
    assert_same_as_forced_rebuild(env, art, fresh)
    expected = load_json(logs / "expected.json")
    assert summary["totals"]["events"] == expected["totals"]["events"]
    # the run summary's counts too (a resumed file adds its new lines to its earlier ones)
    forced = load_json(fresh / "runs" / "latest.json")
    for source, counts in forced["sources"].items():
        for key in ("records", "events", "duplicates", "not_a_call", "rejected", "source_versions"):
            assert summary["sources"][source][key] == counts[key], f"{source}.{key} differs from FORCE=1"


def test_metrics_miss_then_hit_then_invalidate_on_pricing_change(sample_logs, tmp_path):
    logs = sample_logs(events=1000, seed=3)
    book = tmp_path / "pricing.json"
    shutil.copy(ROOT / "pricing.json", book)
    env = sample_env(logs, tmp_path / "art", PRICING=book)
    outcomes = []
    for round_ in range(3):
        if round_ == 2:
            doc = json.loads(book.read_text())
            model = sorted(doc["models"])[0]
            doc["models"][model]["output_usd_per_mtok"] = doc["models"][model]["output_usd_per_mtok"] * 2
            book.write_text(json.dumps(doc, indent=2))
        make("all", env=env)
        s = load_json(tmp_path / "art" / "runs" / "latest.json")
        outcomes.append((s["caches"]["reports"], s["caches"]["aggregates"], s["caches"]["parsed_events"]))
    (r1, a1, p1), (r2, a2, p2), (r3, a3, p3) = outcomes
    assert r1 == {"hit": 0, "miss": 1, "invalidate": 0} and a1["miss"] == 1 and p1["miss"] > 0
    assert r2 == {"hit": 1, "miss": 0, "invalidate": 0} and a2["hit"] == 1 and p2["miss"] == 0 and p2["hit"] > 0
    # a price change re-prices without re-aggregating or re-parsing
    assert r3 == {"hit": 0, "miss": 0, "invalidate": 1} and a3["hit"] == 1 and p3["miss"] == 0 and p3["invalidate"] == 0


def test_deleted_logs_keep_their_history_until_forget(sample_logs, tmp_path):
    logs = sample_logs(events=1000, seed=4)
    live = tmp_path / "live"
    shutil.copytree(logs / "home", live / "home")
    env = sample_env(live, tmp_path / "art")
    make("all", env=env)
    before = load_json(tmp_path / "art" / "reports" / "monthly.json")["totals"]["total_tokens"]
    victim = sorted((live / "home" / ".claude" / "projects").rglob("*.jsonl"))[0]
    victim.unlink()  # what Claude Code's cleanupPeriodDays does
    make("all", env=env)
    s = load_json(tmp_path / "art" / "runs" / "latest.json")
    assert s["sources"]["claude"]["events_from_deleted_files"] > 0
    assert load_json(tmp_path / "art" / "reports" / "monthly.json")["totals"]["total_tokens"] == before
    make("forget", env=env)
    s = load_json(tmp_path / "art" / "runs" / "latest.json")
    assert s["sources"]["claude"]["events_from_deleted_files"] == 0
    assert load_json(tmp_path / "art" / "reports" / "monthly.json")["totals"]["total_tokens"] < before


def test_cache_from_another_version_is_rebuilt_not_misread(sample_logs, tmp_path):
    logs = sample_logs(events=1000, seed=4)
    env = sample_env(logs, tmp_path / "art")
    make("all", env=env)
    good = _snapshot_bytes(tmp_path / "art")
    from scripts.core.parse_index import INDEX_NAME

    index = tmp_path / "art" / "cache" / "normalize" / "claude" / INDEX_NAME
    _edit_meta(index, cache_version=-1)
    os.utime(tmp_path / "art" / "stamps" / "claude.fp")  # make normalize run
    make("all", env=env)
    s = load_json(tmp_path / "art" / "runs" / "latest.json")
    assert s["sources"]["claude"]["cache"]["invalidate"] > 0
    assert _snapshot_bytes(tmp_path / "art") == good


def _edit_meta(index, **values):
    """Change an index's meta, its sum made to match (only the change is wrong)."""
    import sqlite3

    from scripts.core.parse_index import write_sum

    con = sqlite3.connect(index, isolation_level=None)
    con.executemany("UPDATE meta SET value = ? WHERE key = ?", [(v, k) for k, v in values.items()])
    con.close()
    write_sum(str(index), str(index))


@pytest.mark.parametrize("damage", ["cut short", "a flipped byte", "another python", "not a database", "no sum", "older marshal index"])
def test_an_index_this_code_cannot_read_is_rebuilt_not_misread(sample_logs, tmp_path, damage):
    from scripts.core.parse_index import INDEX_NAME, SUM_SUFFIX, write_sum

    logs = sample_logs(events=1000, seed=4)
    env = sample_env(logs, tmp_path / "art")
    make("all", env=env)
    good = _snapshot_bytes(tmp_path / "art")
    cache_dir = tmp_path / "art" / "cache" / "normalize" / "claude"
    index = cache_dir / INDEX_NAME
    data = index.read_bytes()
    if damage == "cut short":
        index.write_bytes(data[: len(data) // 2])
    elif damage == "a flipped byte":  # SQLite would read it as data: the sum tells
        i = len(data) - 100
        index.write_bytes(data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1:])
    elif damage == "another python":
        _edit_meta(index, python="3.99")
    elif damage == "not a database":  # garbage, with a sum that matches it
        index.write_bytes(b"not a database" * 1000)
        write_sum(str(index), str(index))
    elif damage == "no sum":
        os.unlink(str(index) + SUM_SUFFIX)
    else:  # what an earlier version left: index.marshal, and no index.sqlite
        index.unlink()
        (cache_dir / "index.marshal").write_bytes(b"tokentally-parse-index\n{}\n")
    os.utime(tmp_path / "art" / "stamps" / "claude.fp")  # make normalize run
    make("all", env=env)
    s = load_json(tmp_path / "art" / "runs" / "latest.json")
    assert s["sources"]["claude"]["cache"]["invalidate"] > 0 and s["sources"]["claude"]["cache"]["miss"] == 0
    assert _snapshot_bytes(tmp_path / "art") == good
    assert not (cache_dir / "index.marshal").exists()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_parallel_and_serial_parse_agree(sample_logs, tmp_path, jobs):
    from conftest import stage

    logs = sample_logs(events=3000, seed=8)
    art = tmp_path / f"art{jobs}"
    env = sample_env(logs, art)
    stage("cache_check", "--quiet", env=env)
    stage("normalize", "--bundle", "--jobs", jobs, env=env)
    digest = {p.relative_to(art).as_posix(): p.read_bytes() for p in sorted((art / "events").rglob("*.jsonl"))}
    ref = tmp_path / "ref"
    env2 = sample_env(logs, ref)
    stage("cache_check", "--quiet", env=env2)
    stage("normalize", "--bundle", "--jobs", "2" if jobs == "1" else "1", env=env2)
    assert digest and digest == {p.relative_to(ref).as_posix(): p.read_bytes() for p in sorted((ref / "events").rglob("*.jsonl"))}


def _copy_calls(src, dst, bump: int, every: int = 3):
    """Write into ``dst`` every ``every``-th assistant line of ``src`` (the same calls, as a
    resumed or copied session holds them), output_tokens changed by ``bump``."""
    out = []
    for i, line in enumerate(src.read_bytes().splitlines()):
        if b'"usage"' in line and i % every == 0:
            obj = json.loads(line)
            obj["message"]["usage"]["output_tokens"] = max(1, obj["message"]["usage"]["output_tokens"] + bump)
            out.append(json.dumps(obj).encode())
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "ab") as fh:
        fh.write(b"".join(line + b"\n" for line in out))


def test_copies_across_files_over_incremental_rounds_equal_a_forced_rebuild(sample_logs, tmp_path):
    """Calls copied into other files (resumed sessions), appended to, deleted, forgotten:
    after every round the incremental bundle equals one rebuilt with FORCE=1."""
    logs = sample_logs(events=1500, seed=31)
    live = tmp_path / "live"
    shutil.copytree(logs / "home", live / "home")
    projects = live / "home" / ".claude" / "projects"
    files = sorted(projects.rglob("*.jsonl"))
    a, b, c = files[0], files[1], files[2]
    env = sample_env(live, tmp_path / "art")

    def check(round_name):
        make("all", env=env)
        # FORCE=1 on a copy of the bundle: it re-reads every log and keeps the history of
        # deleted ones, so it must agree even after a deletion
        fresh = tmp_path / f"fresh-{round_name}"
        shutil.copytree(tmp_path / "art", fresh)
        make("all", env=dict(env, ARTIFACTS=str(fresh), FORCE="1"))
        got, want = _snapshot_bytes(tmp_path / "art"), _snapshot_bytes(fresh)
        assert sorted(got) == sorted(want), f"round {round_name}: not the same files as FORCE=1"
        for name in want:
            assert got.get(name) == want[name], f"round {round_name}: {name} differs from FORCE=1"
        s = load_json(tmp_path / "art" / "runs" / "latest.json")
        assert s["totals"]["balanced"], round_name
        return s

    check("base")
    _copy_calls(a, projects / "copies" / "resumed-bigger.jsonl", bump=+500)  # the copies win
    s = check("bigger-copies")
    assert s["sources"]["claude"]["duplicates"] > 0
    _copy_calls(b, projects / "copies" / "resumed-smaller.jsonl", bump=-1)  # the originals win
    check("smaller-copies")
    _copy_calls(a, a, bump=+900, every=5)  # the original file grows with even bigger snapshots
    check("original-grows")
    (projects / "copies" / "resumed-bigger.jsonl").unlink()  # kept as history
    check("copy-deleted")
    make("forget", env=env)
    check("forgotten")
    _copy_calls(c, projects / "copies" / "third.jsonl", bump=+1)
    _copy_calls(c, projects / "copies" / "fourth.jsonl", bump=+2)  # three holders of one call
    check("three-holders")


def test_a_first_run_over_copies_equals_a_forced_rebuild(sample_logs, tmp_path):
    """A first run builds its index from nothing (event_merge.fold_fresh), a FORCE=1 run
    re-folds a kept one (fold_changes): with calls copied across files from the start,
    both agree, and so do the runs after each."""
    logs = sample_logs(events=1500, seed=32)
    live = tmp_path / "live"
    shutil.copytree(logs / "home", live / "home")
    projects = live / "home" / ".claude" / "projects"
    files = sorted(projects.rglob("*.jsonl"))
    _copy_calls(files[0], projects / "copies" / "bigger.jsonl", bump=+500)
    _copy_calls(files[1], projects / "copies" / "smaller.jsonl", bump=-1)
    _copy_calls(files[2], projects / "copies" / "third.jsonl", bump=+1)
    _copy_calls(files[2], projects / "copies" / "fourth.jsonl", bump=+2)
    env = sample_env(live, tmp_path / "art")
    for round_name in ("first", "grown"):
        make("all", env=env)
        forced = tmp_path / f"forced-{round_name}"
        shutil.copytree(tmp_path / "art", forced)
        make("all", env=dict(env, ARTIFACTS=str(forced), FORCE="1"))
        assert _snapshot_bytes(tmp_path / "art") == _snapshot_bytes(forced), round_name
        s = load_json(tmp_path / "art" / "runs" / "latest.json")
        assert s["sources"]["claude"]["duplicates"] > 0 and s["totals"]["balanced"]
        _copy_calls(files[0], files[0], bump=+900, every=5)  # the original outgrows its copy
        _copy_calls(files[3], projects / "copies" / "bigger.jsonl", bump=+3)


def test_an_upgrade_of_the_code_reruns_every_stage_once(sample_logs, tmp_path):
    """A bundle built by older code is recomputed after an upgrade, even though no log
    changed (the code stamp), and only once."""
    logs = sample_logs(events=1000, seed=4)
    env = sample_env(logs, tmp_path / "art")
    make("all", env=env)
    marker = ROOT / "scripts" / "__init__.py"
    st = os.stat(marker)
    try:
        os.utime(marker, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # what a git pull does
        make("all", env=env)
        ran = {k for k, v in load_json(tmp_path / "art" / "runs" / "latest.json")["stages"].items() if v["ran"]}
        assert {"normalize", "aggregate", "price", "snapshot"} <= ran
        make("all", env=env)
        ran = {k for k, v in load_json(tmp_path / "art" / "runs" / "latest.json")["stages"].items() if v["ran"]}
        assert ran == {"cache_check"}
    finally:
        os.utime(marker, ns=(st.st_atime_ns, st.st_mtime_ns))


CLAUDE_FIXTURE = ROOT / "fixtures" / "claude" / "projects" / "-home-dev-projects-billing-api" / "5b0c9f7e-1d2a-4c3b-9e8f-0a1b2c3d4e5f.jsonl"


def _parse_into(cache, path):
    from scripts.core.event_cache import parse_shard

    st = os.stat(path)
    tasks, stats = cache.plan({str(path): (st.st_size, st.st_mtime_ns, st.st_ino, "")}, True, False)
    for res in parse_shard(("claude", cache.dir, cache.new_pack_name(), [t + ("",) for t in tasks], False)):
        cache.store(res)
    return st, stats


@pytest.mark.parametrize("coarse", [False, True], ids=["sub-second mtime", "whole-second mtime"])
def test_a_log_rewritten_within_its_mtime_tick_is_read_again(tmp_path, coarse):
    """The racy-clean case: a log rewritten in place, same size, same mtime, right after a
    run read it. Its content hash (kept because the mtime was that recent) tells."""
    import time

    from scripts.adapters import claude
    from scripts.core.event_cache import EventCache

    log = tmp_path / "session.jsonl"
    data = CLAUDE_FIXTURE.read_bytes()
    log.write_bytes(data)
    if coarse:  # a file system that keeps whole seconds: the window is seconds wide
        now = time.time_ns()
        os.utime(log, ns=(now, now - now % 1_000_000_000))
    cache = EventCache(str(tmp_path / "cache"), "claude", claude.ADAPTER_VERSION)
    os.makedirs(cache.dir)
    st, _ = _parse_into(cache, log)
    assert cache.files[str(log)]["racy_hash"], "read within its mtime's grain: its hash is kept"
    changed = data.replace(b'"output_tokens":412', b'"output_tokens":413', 1)
    assert changed != data and len(changed) == len(data)
    log.write_bytes(changed)
    os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns))
    _, stats = _parse_into(cache, log)
    assert stats["hit"] == 0 and stats["invalidate"] == 1, stats


def test_a_log_last_written_a_fraction_of_a_second_before_the_run_is_not_hashed(tmp_path):
    """Sub-second mtimes come from the kernel's clock tick: 200 ms is far past it."""
    from scripts.adapters import claude
    from scripts.core.event_cache import EventCache

    log = tmp_path / "session.jsonl"
    log.write_bytes(CLAUDE_FIXTURE.read_bytes())
    import time

    old = time.time_ns() - 200_000_123
    os.utime(log, ns=(old, old))
    cache = EventCache(str(tmp_path / "cache"), "claude", claude.ADAPTER_VERSION)
    os.makedirs(cache.dir)
    _parse_into(cache, log)
    assert cache.files[str(log)].get("racy_hash") is None


@pytest.mark.parametrize("source", ["claude", "codex"])
def test_a_bulk_parse_writes_what_a_small_one_writes(sample_logs, tmp_path, source):
    """A first run parses large shards in bulk mode (the adapters' typed msgspec decoders),
    an incremental run small ones without: the same files give the same pack bytes and the
    same parse results either way (the real generator's logs, every file of the source)."""
    import dataclasses

    from scripts import adapters
    from scripts.core.event_cache import parse_shard

    home = sample_logs(events=2000, seed=11) / "home"
    root = home / (".claude" if source == "claude" else ".codex")
    files = sorted(adapters.load(source).discover([str(root)]))
    assert files
    tasks = [(p, "new", 0, 1, {}, None, None, "") for p in files]
    outcome = {}
    for bulk in (False, True):
        pack_dir = tmp_path / f"bulk-{bulk}"
        pack_dir.mkdir()
        results = parse_shard((source, str(pack_dir), "pack", tasks, bulk))
        # racy_hash is there only while a file's mtime is within the clock's grain of now:
        # the two parses may fall on either side of that moment
        outcome[bulk] = ((pack_dir / "pack").read_bytes(), [dict(dataclasses.asdict(r), racy_hash=None) for r in results])
    assert outcome[True] == outcome[False]
    assert sum(r["n"] for r in outcome[True][1]) > 100


def test_compacting_the_packs_keeps_every_segment_and_bulk_line(tmp_path):
    """collect() rewrites what is live into one pack once dead bytes outweigh it: each
    file's day segments and bulk line hold the same bytes after, from the new pack."""
    from scripts.core.event_cache import EventCache, location, pack_entry, read_range, resume_point, tally

    cache = EventCache(str(tmp_path / "cache"), "claude", "test")
    os.makedirs(cache.dir)
    want = {}
    for k in range(2):
        name = cache.new_pack_name()
        with open(cache.pack_path(name), "wb") as fh:
            for i in range(30):
                path = f"/logs/{k}-{i:02d}.jsonl"
                segs = {}
                for day in (f"2026-08-{1 + i % 5:02d}", f"2026-08-{2 + i % 7:02d}"):
                    data = f"{path} {day}\n".encode() * (1 + i)
                    segs[day] = [name, fh.tell(), len(data), 1 + i]
                    fh.write(data + b"dead" * 10_000)
                bulk_data = f"bulk of {path}\n".encode()
                bulk = [name, fh.tell(), len(bulk_data)]
                fh.write(bulk_data)
                packed = pack_entry(segs, bulk, 1 + i, marshal.dumps(({"records": i}, {})), marshal.dumps((i, 2, "", {})))
                cache.files[path] = {"fno": len(cache.files), "packed": packed}
                want[path] = ({d: read_range(cache.pack_path(r[0]), r[1], r[2]) for d, r in segs.items()}, bulk_data)
        cache.packs[name] = os.path.getsize(cache.pack_path(name))
    assert cache.collect()
    assert len(cache.packs) == 1
    for path, (days, bulk_data) in want.items():
        segs, bulk = location(cache.files[path])
        assert {d: read_range(cache.pack_path(r[0]), r[1], r[2]) for d, r in segs.items()} == days
        i = int(path[-8:-6])
        assert [r[3] for r in segs.values()] == [1 + i] * len(segs)
        assert tally(cache.files[path]) == ({"records": i}, {}) and resume_point(cache.files[path]) == (i, 2, "", {})
        assert read_range(cache.pack_path(bulk[0]), bulk[1], bulk[2]) == bulk_data
