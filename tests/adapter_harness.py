"""Helpers for the adapter tests: build the fixtures in a temporary copy, parse a source
the way bundle mode does (per file, then ``event_cache.resolve_copies`` across files) and project events onto the fields the expected files list."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import orjson

from dataclasses import dataclass, field

from scripts import adapters
from scripts.adapters.base import FileSink, ParseContext, iter_complete_lines, split_complete
from scripts.core.event import USAGE_KEYS
from scripts.core.event_cache import resolve_copies

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

# where each source's variable points, relative to fixtures/<source>/ (the Makefile's demo values)
ENV_PATHS = {
    "claude": "",
    "codex": "",
    "cursor": "build/state.vscdb",
    "droid": "sessions",
    "opencode": "build",
    "gemini": "",
    "cliproxy": "",
}
SOURCES = tuple(ENV_PATHS)
DEVICE = "testbox"


def build_fixture_copy(dest: Path) -> Path:
    """A copy of fixtures/ (without build outputs) with its databases built."""
    root = dest / "fixtures"
    shutil.copytree(FIXTURES, root, ignore=shutil.ignore_patterns("build", "__pycache__"))
    subprocess.run([sys.executable, str(root / "build_fixtures.py"), "--root", str(root), "--quiet"], check=True)
    return root


def env_path(root: Path, source: str) -> Path:
    rel = ENV_PATHS[source]
    return root / source / rel if rel else root / source


def source_files(root: Path, source: str, work: Path) -> list[str]:
    """The files bundle mode parses for ``source`` (Cursor: the extract-cursor output)."""
    mod = adapters.load(source)
    if source == "cursor":
        from scripts.extract_cursor import transform

        records, _tel, failures = transform([str(env_path(root, source))])
        assert not failures, failures
        raw = work / "raw" / "cursor.jsonl"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in records))
        return [str(raw)]
    return list(mod.discover(mod.roots_from_env(str(env_path(root, source)))))


@dataclass
class FileParse:
    events: list
    counts: dict
    versions: dict
    bad: list = field(default_factory=list)

    @property
    def ids(self) -> list:
        return [ev["id"] for ev in self.events]


def parse_one(source: str, path: str, device: str = DEVICE) -> FileParse:
    """One file read as bundle mode reads a new file: a line adapter gets the complete
    lines (a cut-short last one waits for a later run), a whole-file adapter the file."""
    mod = adapters.load(source)
    bad: list = []
    sink = FileSink(path, on_bad=lambda p, where, reason: bad.append((p, where, reason)))
    ctx = ParseContext(path=path, device=device, mtime_ms=os.stat(path).st_mtime_ns // 1_000_000)
    if mod.resumable:
        with open(path, "rb") as fh:
            complete, _partial = split_complete(fh.read())
        mod.parse_lines(ctx, iter_complete_lines(complete, 1), sink)
    elif hasattr(mod, "parse_file"):
        mod.parse_file(ctx, sink)
    else:
        with open(path, "rb") as fh:
            mod.parse_content(ctx, fh.read(), sink)
    return FileParse(list(sink.events.values()), sink.counts(), dict(sink.versions), bad)


def parse_source(root: Path, source: str, work: Path, order: str = "sorted", seed: int = 0):
    """``(events, results)``: events after cross-file deduplication in bundle order, and
    the per-file FileResults, parsing the files in the given discovery order."""
    files = source_files(root, source, work)
    if order == "sorted":
        files = sorted(files)
    elif order == "reversed":
        files = sorted(files, reverse=True)
    else:
        random.Random(seed).shuffle(files)
    results = {path: parse_one(source, path) for path in files}
    holders: dict[str, list] = {}
    for p, r in results.items():
        for e in r.events:
            holders.setdefault(e["id"], []).append((p, e["total_tokens"], e.get("source_line") or 0))
    losers = resolve_copies(holders)
    events = []
    for path in sorted(results):
        dropped = losers.get(path, set())
        # through JSON, as the bundle stores them
        events += [orjson.loads(orjson.dumps(ev)) for ev in results[path].events if ev["id"] not in dropped]
    return events, results


def rel_source(ev: dict, root: Path, source: str) -> str:
    base = str(root / source) + os.sep
    path = ev["source_file"]
    rel = path[len(base):] if path.startswith(base) else path
    if ev.get("source_line") is not None:
        return f"{rel}:{ev['source_line']}"
    return f"{rel}#{ev['source_key']}"


def project(ev: dict, root: Path, source: str) -> dict:
    out = {
        "id": ev["id"],
        "model": ev["model"],
        "raw_model": ev["raw_model"],
        "session_id": ev["session_id"],
        "project": ev["project"],
        "timestamp": ev["timestamp"],
        "source": rel_source(ev, root, source),
        "source_version": ev["source_version"],
        "usage": {k: v for k, v in ev["usage"].items() if v},
    }
    if ev.get("model_provider"):
        out["model_provider"] = ev["model_provider"]
    if ev.get("model_inferred"):
        out["model_inferred"] = True
    return out


def expected_events(source: str) -> list[dict]:
    with open(FIXTURES / source / "expected" / "events.jsonl", encoding="utf-8") as fh:
        return sorted((json.loads(line) for line in fh if line.strip()), key=lambda e: e["id"])


def expected_counts(source: str) -> dict:
    with open(FIXTURES / source / "expected" / "counts.json", encoding="utf-8") as fh:
        return json.load(fh)


def file_key(path: str, root: Path, source: str) -> str:
    if source == "cursor":
        return "raw/cursor.jsonl"
    base = str(root / source) + os.sep
    return path[len(base):] if path.startswith(base) else path


def check_event_contract(ev: dict, source: str) -> None:
    mod = adapters.load(source)
    assert ev["schema_version"] == 1
    assert ev["provider"] == ev["adapter"] == source
    assert ev["adapter_version"] == mod.ADAPTER_VERSION
    assert ev["id"].startswith(source + ":")
    assert ev["device"] == DEVICE
    assert set(ev["usage"]) == set(USAGE_KEYS)
    u = ev["usage"]
    assert all(type(v) is int and v >= 0 for v in u.values())
    assert ev["total_tokens"] == sum(u[k] for k in USAGE_KEYS[:6])
    assert u["reasoning_tokens"] <= u["output_tokens"] and u["cache_write_1h_tokens"] <= u["cache_write_tokens"]
    assert len(ev["timestamp"]) == 24 and ev["timestamp"].endswith("Z")
