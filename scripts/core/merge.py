"""Merge bundles from several machines: their normalized events, deduplicated by id.

Each input is a bundle directory (what ``make all`` wrote on one computer, copied here)
holding ``events/<source>/<day>.jsonl`` (or an older bundle's ``events/<source>.jsonl``).
The same call can reach two bundles (a synced
``~/.claude``, a bundle merged twice): it is one event. As in normalize, the copy with
the larger ``total_tokens`` wins, ties to the earlier input; its line is written as it
is, so it keeps the ``device`` it was recorded on.

Two passes, so memory holds ids, not events: the first finds each id's winner, the
second copies winning lines to ``<out>/events/<source>/<day>.jsonl`` (the UTC day of
their timestamp; within a day in input order) and folds them into
``<out>/rollups/<source>.json``. Every input line is accounted for: an event kept, a
duplicate, or a bad line (reported ``file:line: reason``).
"""
from __future__ import annotations

import os

import orjson

from scripts.core import event_files as ef
from scripts.core.event import USAGE_KEYS, as_count, normalize_timestamp, timestamp_ms
from scripts.core.rollup import Rollup, document
from scripts.shared_io import AtomicFile, DataError, Diagnostics, dumps_line, remove_if_present


_REQUIRED = ("id", "provider", "model", "session_id")


def event_files(bundle: str) -> list[tuple[str, str]]:
    """``(source, path)`` of a bundle's event files, by source, each in stream order."""
    if not os.path.isdir(os.path.join(bundle, "events")):
        raise DataError("not a bundle: it has no events/ directory (copy the whole artifacts directory)", where=bundle)
    return [(source, path) for source in ef.sources(bundle) for path in ef.source_paths(bundle, source)]


class _DaySpool:
    """Lines routed to one file per day, written through temp files beside their final
    names (appended in order from a bounded buffer: no open file per day) and renamed into
    place by ``commit``; ``discard`` removes the temp files."""

    LIMIT = 8 << 20

    def __init__(self, directory: str):
        self.dir = directory
        self.buf: dict[str, list[bytes]] = {}
        self.size = 0
        self.tmps: dict[str, str] = {}

    def add(self, day: str, line: bytes) -> None:
        lines = self.buf.get(day)
        if lines is None:
            lines = self.buf[day] = []
        lines.append(line)
        self.size += len(line)
        if self.size > self.LIMIT:
            self.flush()

    def flush(self) -> None:
        os.makedirs(self.dir, exist_ok=True)
        for day, lines in self.buf.items():
            tmp = self.tmps.get(day)
            if tmp is None:
                tmp = self.tmps[day] = os.path.join(self.dir, f".{day}.jsonl.{os.getpid()}-{os.urandom(4).hex()}.tmp")
            with open(tmp, "ab") as fh:
                fh.write(b"".join(lines))
        self.buf, self.size = {}, 0

    def commit(self) -> None:
        self.flush()
        os.makedirs(self.dir, exist_ok=True)
        for day, path in ef.day_files(self.dir).items():
            if day not in self.tmps:
                os.unlink(path)  # a day an earlier merge wrote that no input has now
        for day, tmp in sorted(self.tmps.items()):
            os.replace(tmp, os.path.join(self.dir, f"{day}.jsonl"))
        self.tmps = {}

    def discard(self) -> None:
        for tmp in self.tmps.values():
            remove_if_present(tmp)


def _events(path: str, diag: Diagnostics | None):
    """``(line_number, raw_line, event)`` of the well-formed event lines of a file; bad
    lines go to ``diag`` (None: skipped silently, for the first pass)."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            reason = None
            try:
                ev = orjson.loads(raw)
            except orjson.JSONDecodeError:
                ev, reason = None, "not valid JSON"
            if reason is None:
                if not isinstance(ev, dict) or any(not isinstance(ev.get(k), str) for k in _REQUIRED) or not isinstance(ev.get("usage"), dict):
                    reason = "not a normalized event (needs " + ", ".join(_REQUIRED) + ", usage)"
                else:
                    try:
                        ev["timestamp"] = normalize_timestamp(ev.get("timestamp"))
                        timestamp_ms(ev["timestamp"])
                        ev["usage"] = {k: as_count(ev["usage"].get(k)) for k in USAGE_KEYS}
                    except (TypeError, ValueError) as exc:
                        reason = f"bad event ({exc})"
            if reason is not None:
                if diag is not None:
                    diag.bad_line(path, lineno, reason)
                continue
            yield lineno, raw if raw.endswith(b"\n") else raw + b"\n", ev


def _total(ev: dict) -> int:
    t = ev.get("total_tokens")
    return t if isinstance(t, int) else sum(int(ev["usage"].get(k, 0) or 0) for k in USAGE_KEYS[:6])


def merge_bundles(inputs: list[str], out: str, diag: Diagnostics) -> dict:
    """Write the merged ``events/`` and ``rollups/`` under ``out``; return the counts."""
    if not inputs:
        raise DataError("no input bundles (give INPUTS=\"dir1 dir2 ...\")")
    out_abs = os.path.abspath(out)
    files = []  # (input index, source, path)
    for i, bundle in enumerate(inputs):
        if os.path.abspath(bundle) == out_abs:
            raise DataError("the output bundle cannot also be an input", where=bundle)
        for source, path in event_files(bundle):
            files.append((i, source, path))
    # pass 1: the winner of every id: (total_tokens, -input index) is largest
    best: dict[str, tuple[int, int, int, int]] = {}  # id -> (total, -input, file index, line)
    lines = 0
    for f, (i, _source, path) in enumerate(files):
        for lineno, _raw, ev in _events(path, None):
            lines += 1
            cand = (_total(ev), -i, f, lineno)
            prev = best.get(ev["id"])
            if prev is None or cand[:2] > prev[:2]:
                best[ev["id"]] = cand
    winners: dict[int, set[int]] = {}
    for _total_, _neg_i, f, lineno in best.values():
        winners.setdefault(f, set()).add(lineno)
    # pass 2: copy winning lines per source, in input order, and roll them up
    per_source: dict[str, list[int]] = {}
    for f, (_i, source, _path) in enumerate(files):
        per_source.setdefault(source, []).append(f)
    counts = {"inputs": len(inputs), "lines": lines, "events": 0, "duplicates": 0, "bad_lines": 0, "sources": {}}
    bad_before = diag.bad_lines
    for source in sorted(per_source):
        roll = Rollup()
        kept = 0
        spool = _DaySpool(ef.source_dir(out, source))
        try:
            for f in per_source[source]:
                keep = winners.get(f, set())
                for lineno, raw, ev in _events(files[f][2], diag):
                    if lineno in keep:
                        spool.add(ev["timestamp"][:10], raw)
                        roll.add_event(ev)
                        kept += 1
                    else:
                        counts["duplicates"] += 1
            spool.commit()
        except BaseException:
            spool.discard()
            raise
        legacy = ef.legacy_path(out, source)
        if os.path.exists(legacy):
            os.unlink(legacy)
        with AtomicFile(os.path.join(out, "rollups", f"{source}.json")) as fh:
            fh.write(dumps_line(document(source, roll.rows())))
        counts["events"] += kept
        counts["sources"][source] = kept
    counts["bad_lines"] = diag.bad_lines - bad_before
    counts["balanced"] = counts["events"] + counts["duplicates"] == counts["lines"]
    return counts
