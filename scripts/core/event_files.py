"""Where a bundle's normalized events live: ``events/<source>/<YYYY-MM-DD>.jsonl``.

One file per source and UTC day of the events' ``timestamp`` (never the report time
zone), so a run rewrites only the days a change reaches. A source's whole stream is its
day files in name order (``cat events/claude/*.jsonl``): by day, within a day by source
file path. Readers also accept the older single ``events/<source>.jsonl``, e.g. in a
bundle copied from a machine that runs an older version. ``stale_sources`` says which
sources' events are older than their inputs (what normalize --only-stale redoes).
"""
from __future__ import annotations

import os


def source_dir(artifacts: str, source: str) -> str:
    return os.path.join(artifacts, "events", source)


def legacy_path(artifacts: str, source: str) -> str:
    """The layout before day files: one ``events/<source>.jsonl``."""
    return os.path.join(artifacts, "events", f"{source}.jsonl")


def day_files(directory: str) -> dict[str, str]:
    """``day -> path`` of the day files in a source's events directory (temp files of an
    interrupted write are not day files)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    return {n[:-6]: os.path.join(directory, n) for n in names if n.endswith(".jsonl") and not n.startswith(".")}


def sources(artifacts: str) -> list[str]:
    """The sources a bundle has events for (a directory, or an older single file)."""
    try:
        names = os.listdir(os.path.join(artifacts, "events"))
    except OSError:
        return []
    out = set()
    for name in names:
        if name.startswith("."):
            continue
        if name.endswith(".jsonl"):
            out.add(name[:-6])
        elif os.path.isdir(os.path.join(artifacts, "events", name)):
            out.add(name)
    return sorted(out)


def source_paths(artifacts: str, source: str) -> list[str]:
    """A source's event files in stream order: its day files by day, or the older single file."""
    days = day_files(source_dir(artifacts, source))
    paths = [days[d] for d in sorted(days)]
    legacy = legacy_path(artifacts, source)
    if not paths and os.path.isfile(legacy):
        paths = [legacy]
    return paths


def all_paths(artifacts: str) -> list[str]:
    """Every event file of the bundle: sources by name, each in stream order."""
    return [p for s in sources(artifacts) for p in source_paths(artifacts, s)]


def read_source(artifacts: str, source: str) -> bytes:
    """A source's whole event stream (b"" when it has none)."""
    out = []
    for path in source_paths(artifacts, source):
        with open(path, "rb") as fh:
            out.append(fh.read())
    return b"".join(out)


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def normalized_stamp(artifacts: str, source: str) -> str:
    """Touched once a source's events, rollup and parse cache are all written."""
    return os.path.join(artifacts, "stamps", f"{source}.normalized")


def touch_normalized(artifacts: str, source: str) -> None:
    path = normalized_stamp(artifacts, source)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a"):
        pass
    os.utime(path)


def stale_sources(artifacts: str, sources: list[str]) -> list[str]:
    """Sources whose fingerprint (or the device or code stamp, or an extracted input) is
    newer than their last normalize, or whose outputs are missing: what Make's grouped
    rule could not tell apart. Only stats files (refresh asks it on every run)."""
    from scripts import adapters

    out = []
    device = max(_mtime(os.path.join(artifacts, "stamps", "device.fp")), _mtime(os.path.join(artifacts, "stamps", "code.fp")))
    for s in sources:
        done = _mtime(normalized_stamp(artifacts, s))
        extracted = getattr(adapters.load(s), "EXTRACTED_INPUT", None) if s in adapters.available() else None
        if (
            done < 0
            or done < _mtime(os.path.join(artifacts, "stamps", f"{s}.fp"))
            or (extracted and done < _mtime(os.path.join(artifacts, extracted)))
            or done < device
            or not os.path.isdir(source_dir(artifacts, s))
            or _mtime(os.path.join(artifacts, "rollups", f"{s}.json")) < 0
        ):
            out.append(s)
    return out
