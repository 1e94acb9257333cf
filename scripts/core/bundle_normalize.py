"""Normalize in a bundle: discover, parse only what changed (both cores), write
``events/<source>/<YYYY-MM-DD>.jsonl`` and ``rollups/<source>.json``, report counts
that add up.

The parse itself is ``event_cache.parse_file``; this module plans the work per source,
fans it out to a process pool, folds the results into each source's cache
(``event_merge.fold_changes``; ``fold_fresh`` for an index built from nothing, whose
shards are runs of the manifest the workers read themselves) and writes the artifacts. Events are filed by the UTC day
of their timestamp; within a day file, in source-file path order, each file's events in
the order they first appear, so the output does not depend on discovery or worker order,
nor on how many runs built it. A run rewrites only the day files a change can reach.
The rollup is written a chunk of rows at a time, compared with the old file as it goes.
"""
from __future__ import annotations

import marshal
import os
import re
import sys

import orjson

from scripts import adapters
from scripts.core import background
from scripts.core import sources as src_mod
from scripts.core.event_files import day_files, legacy_path
from scripts.core.event_files import source_dir as events_dir
from scripts.core.event_cache import (MANIFEST_RUN, EventCache, FileResult, has_index, location, parse_shard, parse_shard_to_file, results_from_file, shard_length,
                                      source_cache_dir, unpack_entry)
from scripts.core.event_merge import FreshLog, ResultSpill, fold_changes, fold_fresh, kept_as_results
from scripts.core.rollup import document
from scripts.shared_io import AtomicFile, DataError, Diagnostics, copy_range, dumps_line, read_marshalled, remove_if_present, write_all, write_if_changed

SMALL_JOB_BYTES = 8 << 20  # below this much to parse, a process pool costs more than it saves
# a shard at least this large is parsed with the adapters' typed decoders (msgspec), whose
# import (~10-25 ms) pays off only over a few thousand records
BULK_SHARD_BYTES = 4 << 20
SPILL_LIMIT = 1 << 16  # bytes of parse results kept in memory before they go to a temp file


def write_empty_source(artifacts: str, source: str) -> None:
    """A source with no adapter here still has its (empty) place in the bundle."""
    directory = events_dir(artifacts, source)
    os.makedirs(directory, exist_ok=True)
    for path in day_files(directory).values():
        remove_if_present(path)
    remove_if_present(legacy_path(artifacts, source))  # the layout before day files
    write_if_changed(os.path.join(artifacts, "rollups", f"{source}.json"), dumps_line(document(source, [])))


def manifest_path(artifacts: str, source: str) -> str:
    return os.path.join(artifacts, "cache", "manifest", f"{source}.json")


def load_listing(artifacts: str, source: str):
    """The file listing cache-check took (so we do not walk the tree twice), else a fresh
    one: a ``sources.ManifestListing`` or ``SourceListing`` (walked by ``entries()``).

    A source with an extract step (``EXTRACTED_INPUT`` in its adapter, e.g. Cursor's
    ``raw/cursor.jsonl`` written by extract-cursor) is normalized from that file."""
    extracted = getattr(adapters.load(source), "EXTRACTED_INPUT", None)
    if extracted:
        path = os.path.join(artifacts, extracted)
        listing = src_mod.SourceListing(source=source, env_var=adapters.load(source).ENV_VAR, locations=[path], files={})
        try:
            st = os.stat(path)
            if st.st_size:
                listing.files[os.path.abspath(path)] = (st.st_size, st.st_mtime_ns, st.st_ino, "")
        except OSError:
            pass
        return listing
    try:
        return src_mod.ManifestListing(manifest_path(artifacts, source))
    except (OSError, ValueError, KeyError):  # orjson.JSONDecodeError is a ValueError
        return src_mod.list_source(source)


def _version_key(v: str):
    return tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.\-+]", v)[:4])


def _worker_init() -> None:
    # Ctrl-C is the parent's to handle.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    background.close_inherited()  # only the stage's own process may release its parent


def make_shards(tasks: list[tuple], sizes: list[int], jobs: int) -> list[list[int]]:
    """Split tasks (in path order) into contiguous runs of similar byte size: a few per
    worker, so a busy core does not hold the others up, and each run fills one pack."""
    return [list(range(a, b)) for a, b, _n in shard_ranges(sizes, sum(sizes), len(sizes), jobs)]


def shard_ranges(sizes, total: int, count: int, jobs: int) -> list[tuple[int, int, int]]:
    """``make_shards``'s runs as ``(first, end, bytes)``, from the sizes as they come (an
    iterable: a first run's listing walked again, never held)."""
    if not count:
        return []
    n = max(1, min(count, jobs * 2 if total >= SMALL_JOB_BYTES else 1))
    target = total / n
    ranges, first, acc, i = [], 0, 0, 0
    for i, size in enumerate(sizes, 1):
        acc += size
        if acc >= target and len(ranges) < n - 1:
            ranges.append((first, i, acc))
            first, acc = i, 0
    if first < count:
        ranges.append((first, count, acc))
    return ranges


def run_jobs(jobs_list: list[tuple], workers: int, total_bytes: int):
    """Yield each shard's ``(source, its results one at a time)``; a pool of ``workers``
    processes when it pays."""
    if workers <= 1 or len(jobs_list) < 2 or total_bytes < SMALL_JOB_BYTES:
        for job in jobs_list:
            yield job[0], parse_shard(job)
        return
    import multiprocessing  # only here: importing it costs ~5 ms of a run that needs no pool

    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    # a source's shards together (its files are folded and written while the next source's
    # are parsed), biggest first: the last one to finish is then a small one
    rank: dict[str, int] = {}
    for job in jobs_list:
        rank.setdefault(job[0], len(rank))
    order = sorted(range(len(jobs_list)), key=lambda i: (rank[jobs_list[i][0]], -shard_length(jobs_list[i][3])))
    queue = [jobs_list[i] for i in order]
    n = len(queue)
    jobs_list.clear()  # each shard's task list is dropped once it is handed to a worker
    with ctx.Pool(min(workers, n), initializer=_worker_init) as pool:
        for source, path in pool.imap_unordered(_parse_shard_of_source, _handed_out(queue)):
            yield source, results_from_file(path)


def _parse_shard_of_source(job: tuple) -> tuple[str, str]:
    return job[0], parse_shard_to_file(job)


def _handed_out(queue: list):
    queue.reverse()
    while queue:
        yield queue.pop()


def normalize_bundle(
    artifacts: str,
    sources: list[str],
    *,
    force: bool = False,
    forget: bool = False,
    jobs: int = 0,
    device: str = "",
    diag: Diagnostics,
    on_release=None,
) -> dict:
    """Bring ``events/`` and ``rollups/`` up to date for ``sources``; return the fragment.

    Once every rollup is written (what later stages read) the fragment is complete:
    ``on_release(fragment)`` is called then, before the day files and the parse cache are
    written (default: ``background.release()``)."""
    jobs = jobs or (os.cpu_count() or 1)
    if jobs > 1 and len(sources) > 1 and not force and hasattr(os, "fork") and all(has_index(artifacts, s) for s in sources):
        return _one_process_per_source(artifacts, sources, forget=forget, jobs=jobs, device=device, diag=diag)
    caches: dict[str, EventCache] = {}
    listings: dict[str, src_mod.SourceListing] = {}
    found: dict[str, int] = {}  # files listed, per source
    sides: dict[str, dict[str, str]] = {}  # per source, path -> side fingerprint (where not "")
    plans: dict[str, dict] = {}
    shard_jobs: list[tuple] = []
    changes: dict[str, list] = {s: [] for s in sources}
    # the days whose files a change can reach (None: all of them)
    days: dict[str, set | None] = {s: set() for s in sources}
    parsed_files = 0
    total_task_bytes = 0
    from_nothing: set[str] = set()  # sources with no (usable) parse cache: every file is parsed
    for source in sources:
        mod = adapters.load(source)
        listing = load_listing(artifacts, source)
        listings[source] = listing
        cache = EventCache(source_cache_dir(artifacts, source), source, mod.ADAPTER_VERSION, device)
        cache.load(force=force)
        caches[source] = cache
        if force or not cache.files:
            from_nothing.add(source)
        found[source] = 0
        sides[source] = {}  # path -> side fingerprint, where not "" (SQLite sources)
        sizes: list[int] = []  # per task, the file's size now

        def walk(source=source, listing=listing):
            for path, v in listing.entries():
                found[source] += 1
                if v[3]:
                    sides[source][path] = v[3]
                yield path, v

        os.makedirs(cache.dir, exist_ok=True)
        if cache.db.building is not None and isinstance(listing, src_mod.ManifestListing):
            # an index built from nothing: every file is new; each shard is a run of the
            # manifest, which its worker reads itself (no task per file is made or sent)
            total = 0
            for _path, v in walk():
                total += v[0]
            stats = {"hit": 0, "miss": found[source], "resumed": 0, "invalidate": 0, "deleted": 0}
            for first, end, n_bytes in shard_ranges((v[0] for _p, v in listing.entries()), total, found[source], jobs):
                run = (MANIFEST_RUN, listing.path, first, end, device)
                shard_jobs.append((source, cache.dir, cache.new_pack_name(), run, n_bytes >= BULK_SHARD_BYTES))
            if cache.invalidated_all:
                stats["invalidate"], stats["miss"] = stats["miss"], 0
            if force or cache.invalidated_all:
                days[source] = None
            if forget:
                stats["forgotten"] = 0  # nothing kept to forget
            plans[source] = stats
            parsed_files += found[source]
            total_task_bytes += total
            continue
        tasks, stats = cache.plan(walk(), mod.resumable, force, sizes)
        if cache.invalidated_all:
            stats["invalidate"] += stats.pop("miss")
            stats["miss"] = 0
        if force or cache.invalidated_all:
            days[source] = None
        if forget:
            gone = cache.forget_deleted()
            stats["forgotten"] = len(gone)
            changes[source] += [(path, entry, None) for path, entry in gone]
            _add_days(days, source, (d for _, entry in gone for d in location(entry)[0]))
        plans[source] = stats
        parsed_files += len(tasks)
        sizes = [max(0, size - t[2]) for t, size in zip(tasks, sizes)]
        total_task_bytes += sum(sizes)
        for shard in make_shards(tasks, sizes, jobs):
            plain = [tasks[i] + (device,) for i in shard]
            bulk = sum(sizes[i] for i in shard) >= BULK_SHARD_BYTES
            shard_jobs.append((source, cache.dir, cache.new_pack_name(), plain, bulk))
    tasks = plain = None  # the shards hold them, until each is handed to a worker (run_jobs)
    parsed_bytes = 0
    spills: dict[str, ResultSpill] = {}  # per source, its results' rollups and hashes until folded
    fresh_logs: dict[str, FreshLog] = {}  # the same, for a source whose index is built from nothing
    shards_left = {s: 0 for s in sources}
    for job in shard_jobs:
        shards_left[job[0]] += 1

    def parsed_in_turn():
        """Each source once all its shards are parsed and stored, then those with none: a
        source is folded and written while the pool parses the next one's files (its shards
        come first), so the parent holds one source's results and merged state at a time."""
        nonlocal parsed_bytes
        for source, results in run_jobs(shard_jobs, jobs, total_task_bytes):
            for res in results:
                res: FileResult
                for path, where, reason in res.bad:
                    diag.bad_line(path, where, reason)
                old = caches[source].store(res, sides[source].get(res.path, ""))
                _add_days(days, source, res.days_changed)
                if old is not None and res.mode != "resumed":
                    _add_days(days, source, location(old)[0])
                if caches[source].db.building is not None:
                    # an index built from nothing: its results wait in a log (fold_fresh)
                    log = fresh_logs.get(source) or fresh_logs.setdefault(source, FreshLog(caches[source].dir, limit=SPILL_LIMIT))
                    log.keep(res)
                else:
                    # FORCE folds everything in from nothing (the merged state was reset)
                    spill = spills.get(source) or spills.setdefault(source, ResultSpill(caches[source].dir, limit=SPILL_LIMIT))
                    changes[source].append((res.path, None if force else old, spill.keep(res)))
                parsed_bytes += res.end_offset
            results = res = None  # stored: not held while the source is folded and written
            shards_left[source] -= 1
            if not shards_left[source]:
                yield source
        yield from (s for s in sources if s not in out_sources)

    out_sources = {}
    finish_later: list[tuple[str, tuple]] = []
    for source in parsed_in_turn():
        cache = caches[source]
        if force:
            reparsed = {p for p, _, _ in changes[source]}
            changes[source] += kept_as_results(cache, sorted(p for p in cache.files if p not in reparsed))
        dropped_before = {p: e["dropped"] for p, e in cache.files.items("dropped IS NOT NULL")}
        if source in fresh_logs:
            fold_fresh(cache, fresh_logs[source])
            fresh_logs.pop(source).close()
        else:
            fold_changes(cache, changes[source])
        changes[source] = []  # the results' rollups are folded in: free them
        if source in spills:
            spills.pop(source).close()
        dropped_now = dict(cache.files.items("dropped IS NOT NULL"))
        for path in dropped_now.keys() | dropped_before.keys():
            e = dropped_now.get(path) or cache.files.get(path)
            if e is not None and e.get("dropped") != dropped_before.get(path):
                _add_days(days, source, location(e)[0])
        cache.collect()
        summary, day_plan = write_source_rollup(artifacts, source, cache, days[source])
        listing = listings[source]
        mod = adapters.load(source)
        summary.update(
            present=bool(found[source]) or bool(cache.files),
            env_var=listing.env_var,
            locations=[src_mod.short_path(p) for p in listing.locations],
            files_found=found[source],
            cache=plans[source],
            adapter_version=mod.ADAPTER_VERSION,
            format_versions=list(mod.FORMAT_VERSIONS),
        )
        known = max((_version_key(v) for v in mod.FORMAT_VERSIONS), default=())
        summary["newer_than_fixtures"] = sorted(v for v in summary["source_versions"] if _version_key(v) > known)
        out_sources[source] = summary
        if any(shards_left.values()):
            # other sources are still being parsed: this one's day files and cache now,
            # alongside them
            _finish_source(cache, day_plan)
            if source in from_nothing:
                # built whole (a first run, FORCE): its index and merged state are saved,
                # free them before the next source's are built (later runs fold little:
                # not worth the time it takes to free an index object by object)
                caches[source] = cache = None
        else:
            finish_later.append((source, day_plan))
    frag = {"sources": {s: out_sources[s] for s in sources}, "parsed_files": parsed_files, "parsed_bytes": parsed_bytes}
    # every rollup is written: what later stages read (scripts/core/background.py); the
    # day files and the index left are for the user and the next run
    if on_release is not None:
        on_release(frag)
    else:
        background.release()
    for source, day_plan in finish_later:
        _finish_source(caches[source], day_plan)
    return frag


def _finish_source(cache: EventCache, day_plan: tuple) -> None:
    """A source's day files, then its parse cache (whose save ends its pending days)."""
    write_source_days(cache, day_plan)
    cache.save()
    cache.close()
    clear_pending(cache.dir)


def _add_days(days: dict, source: str, more) -> None:
    if days[source] is not None:
        days[source].update(more)


def _one_process_per_source(artifacts: str, sources: list[str], *, forget: bool, jobs: int, device: str, diag: Diagnostics) -> dict:
    """Sources that have a cache (a run after the first) are independent: each loads its
    index, parses what changed and writes its artifacts in a process of its own, ``jobs``
    at a time, so an incremental run uses both cores (the first run, whose parse dominates,
    shares one pool of workers over the files of every source instead).

    A source's process sends its counts once its rollup is written and then goes on with
    its day files, its parse cache and its ``.normalized`` stamp; it is tracked in
    ``background`` (listed under ``finishing``), for normalize or refresh to wait for."""
    out = {"sources": {}, "parsed_files": 0, "parsed_bytes": 0, "finishing": []}
    pending = list(sources)
    while pending:
        batch, pending = pending[:jobs], pending[jobs:]
        children = []
        for source in batch:
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: one source, its diagnostics straight to stderr
                os.close(read_end)
                os._exit(_source_process(artifacts, source, write_end, forget=forget, device=device, diag=diag))
            os.close(write_end)
            background.track(pid, f"normalize of {source}")  # waited for, whatever happens
            children.append((source, pid, read_end))
        background.do_idle_work()
        for source, pid, read_end in children:
            result = read_marshalled(read_end)  # None: it ended before it had sent
            if result is None:
                failed = dict(background.finish())
                raise DataError(f"normalize of {source} ended early (exit status {failed.get(f'normalize of {source}', 0)})")
            if "error" in result:
                background.finish()
                raise DataError(result["error"], where=result["where"])
            if "crash" in result:
                background.finish()
                raise RuntimeError(f"normalize of {source}: {result['crash']}")
            diag.bad_lines += result["bad_lines"]
            diag.notices += result["notices"]
            frag = result["frag"]
            out["sources"].update(frag["sources"])
            out["parsed_files"] += frag["parsed_files"]
            out["parsed_bytes"] += frag["parsed_bytes"]
            out["finishing"].append(source)
    out["sources"] = {s: out["sources"][s] for s in sources}
    return out


def _source_process(artifacts: str, source: str, write_end: int, *, forget: bool, device: str, diag: Diagnostics) -> int:
    """The body of one source's process; returns its exit status. Its result goes to the
    parent once (counts, or the error that stopped it before it had any); an error after
    that is printed here, in one line, and the exit status tells the parent."""
    from scripts.core.event_files import touch_normalized

    child_diag = Diagnostics(strict=diag.strict, limit=diag.limit)
    sent = False

    def send(result: dict) -> None:
        nonlocal sent
        write_all(write_end, marshal.dumps(result))
        os.close(write_end)
        sent = True

    try:
        normalize_bundle(artifacts, [source], forget=forget, jobs=1, device=device, diag=child_diag,
                         on_release=lambda frag: send({"frag": frag, "bad_lines": child_diag.bad_lines, "notices": child_diag.notices}))
        touch_normalized(artifacts, source)
        return 0
    except KeyboardInterrupt:
        return 130  # Ctrl-C reached the whole group: the parent says "Aborted!"
    except DataError as exc:
        if not sent:
            send({"error": exc.reason, "where": exc.where})
            return 0
        sys.stderr.write(f"Error: {exc}\n")
    except BaseException as exc:  # noqa: BLE001 - one line, reported by the parent or here
        if not sent:
            send({"crash": f"{type(exc).__name__}: {exc}"})
            return 0
        sys.stderr.write(f"Error: internal error: normalize of {source}: {type(exc).__name__}: {exc}\n")
    sys.stderr.flush()
    return 1


PENDING = "days-pending.json"


def _pending_days(cache_dir: str) -> set[str]:
    """Days an interrupted run had started to rewrite (its index may not say why)."""
    try:
        with open(os.path.join(cache_dir, PENDING), "rb") as fh:
            doc = orjson.loads(fh.read())
        return set(doc["days"]) if isinstance(doc, dict) and isinstance(doc.get("days"), list) else set()
    except (OSError, orjson.JSONDecodeError):
        return set()


def clear_pending(cache_dir: str) -> None:
    """Called once the index that explains the rewritten days is saved."""
    remove_if_present(os.path.join(cache_dir, PENDING))


def write_source_rollup(artifacts: str, source: str, cache: EventCache, days: set[str] | None = None) -> tuple[dict, tuple]:
    """The source's counts, and rollups/<source>.json; plans the day files of
    events/<source>/ to write: those ``days`` names (None: every day) and any missing one,
    recorded in days-pending.json first so a run cut short finishes them next time, and
    the days that no longer hold events. Returns (counts, the plan for ``write_source_days``).

    A day file holds the day's events in path order, copies of calls kept in another
    file dropped. The index says which files hold a day (``parse_index.FileTable.holders``)."""
    files = cache.files
    totals = {"records": 0, "duplicates": 0, "not_a_call": 0, "rejected": 0}
    rejected_by_reason: dict[str, int] = {}
    notes: dict[str, int] = {}
    versions: dict[str, int] = {}
    events = 0
    deleted_events = 0
    deleted_files = 0
    for packed, dropped, deleted in files.column("packed, dropped, deleted"):
        _segs, _bulk, held, (c, file_versions) = unpack_entry({"packed": packed})
        totals["records"] += c["records"]
        totals["duplicates"] += c["duplicates"]
        totals["not_a_call"] += c["not_a_call"]
        for reason, n in c["rejected"].items():
            totals["rejected"] += n
            rejected_by_reason[reason] = rejected_by_reason.get(reason, 0) + n
        for k, n in c.get("notes", {}).items():
            notes[k] = notes.get(k, 0) + n
        for v, n in file_versions.items():
            versions[v] = versions.get(v, 0) + n
        n_dropped = len(marshal.loads(dropped)) if dropped is not None else 0
        n_file = held - n_dropped
        totals["duplicates"] += n_dropped
        events += n_file
        if deleted and held:
            deleted_events += n_file
            deleted_files += 1

    directory = events_dir(artifacts, source)
    os.makedirs(directory, exist_ok=True)
    remove_if_present(legacy_path(artifacts, source))  # the layout before day files
    on_disk = day_files(directory)
    pending = _pending_days(cache.dir)
    expected = files.days()
    todo = set(expected) if days is None else (days | pending | (expected - on_disk.keys())) & expected
    if todo:
        # what to finish if this run is cut short before the index is saved
        with AtomicFile(os.path.join(cache.dir, PENDING)) as fh:
            fh.write(orjson.dumps({"days": sorted(todo | pending)}))
    # rewritten only when it changed: Make then skips aggregation (see the Makefile)
    _write_rollup(os.path.join(artifacts, "rollups", f"{source}.json"), source, cache)
    rejected = totals["rejected"]
    plan = (directory, todo, [on_disk[day] for day in sorted(on_disk.keys() - expected)])
    return {
        "records": totals["records"],
        "events": events,
        "duplicates": totals["duplicates"],
        "not_a_call": totals["not_a_call"],
        "rejected": rejected,
        "rejected_by_reason": dict(sorted(rejected_by_reason.items())),
        "balanced": events + totals["duplicates"] + totals["not_a_call"] + rejected == totals["records"],
        "files": len(files),
        "deleted_files": deleted_files,
        "events_from_deleted_files": deleted_events,
        "source_versions": dict(sorted(versions.items())),
        "notes": dict(sorted(notes.items())),
        "days_written": len(todo),
    }, plan


def _rollup_pieces(source: str, cache: EventCache):
    """rollups/<source>.json in pieces: the bytes of ``dumps_line(document(source, rows))``
    with the rows put in a chunk at a time (``MergedState.sorted_chunks``), so they are
    never all held as lists."""
    head, tail = dumps_line(document(source, [])).split(b'"rows":[]')
    yield head + b'"rows":['
    sep = b""
    for rows in cache.merged.sorted_chunks():
        yield sep + dumps_line(rows)[1:-2]  # no brackets, no newline
        sep = b","
    yield b"]" + tail


class _Unchanged(Exception):
    """The file written holds what was there: the old one stays (and its mtime)."""


def _write_rollup(path: str, source: str, cache: EventCache) -> None:
    """Write the rollup a piece at a time, comparing as it goes with what the file held;
    rewritten only when it changed (Make then skips aggregation, see the Makefile). Built
    whole and compared whole, it was held twice (~3 MB each for a source at 400k calls)."""
    try:
        old = open(path, "rb")
    except OSError:
        old = None
    same = old is not None
    try:
        with AtomicFile(path) as out:
            for piece in _rollup_pieces(source, cache):
                out.write(piece)
                same = same and old.read(len(piece)) == piece
            if same and not old.read(1):
                raise _Unchanged  # the temp file goes, the old file stays
    except _Unchanged:
        pass
    finally:
        if old is not None:
            old.close()


def write_source_days(cache: EventCache, plan: tuple) -> None:
    """The day files ``write_source_rollup`` planned, and the removal of days that no
    longer hold events."""
    directory, todo, gone = plan
    fds: dict[str, int] = {}
    drops: dict[str, set] = {}
    try:
        for day in sorted(todo):
            _write_day(os.path.join(directory, f"{day}.jsonl"), day, cache.files.holders(day), cache, fds, drops)
    finally:
        for fd in fds.values():
            os.close(fd)
    for path in gone:
        remove_if_present(path)


def _write_day(out_path: str, day: str, holders: list[tuple], cache: EventCache, fds: dict, drops: dict) -> None:
    """One day file from its holders' segments (``holders``: path, packed entry and
    dropped ids of each, in path order): runs of adjacent segments copied in one call, a
    file with dropped copies filtered line by line. No events: no file."""
    pieces: list = []  # [pack, offset, length] runs, or bytes
    for path, packed, dropped in holders:
        pack, offset, length, _n = location({"packed": packed})[0][day]
        if pack not in fds:
            fds[pack] = os.open(cache.pack_path(pack), os.O_RDONLY)
        if dropped is not None:
            drop = drops.get(path)
            if drop is None:
                drop = drops[path] = set(marshal.loads(dropped))
            data = os.pread(fds[pack], length, offset)
            kept = b"".join(line + b"\n" for line in data.splitlines() if orjson.loads(line)["id"] not in drop)
            if kept:
                pieces.append(kept)
        elif pieces and isinstance(pieces[-1], list) and pieces[-1][0] == pack and pieces[-1][1] + pieces[-1][2] == offset:
            pieces[-1][2] += length
        else:
            pieces.append([pack, offset, length])
    if not pieces:
        remove_if_present(out_path)
        return
    with AtomicFile(out_path) as out:
        out.flush()
        out_fd = out.fileno()
        for piece in pieces:
            if isinstance(piece, bytes):
                write_all(out_fd, piece)
            else:
                copy_range(fds[piece[0]], out_fd, piece[1], piece[2])
