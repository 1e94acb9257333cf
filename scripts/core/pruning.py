"""Date filters prune work: a file whose metadata proves it holds nothing in range is not
parsed (``normalize --since/--until`` in file mode; see docs/reports.md).

Two proofs, both conservative (a file is skipped only when no call in it can be in range):

- modification time before the start of ``--since`` (local midnight in the time zone):
  a log is written after the calls it records, so a file last written before the range
  holds no call in it.
- Codex only: the dated directory ``sessions/YYYY/MM/DD`` is the day the session
  started, in the clock of the machine that wrote it (whatever its zone), and every call
  comes after that. If even the earliest moment that date can mean anywhere (its
  midnight at UTC+14) is after the end of ``--until``, nothing in the file is in range.

A file copied without its times (``cp`` without ``-p``) only looks newer, which keeps it;
a file whose time was set back by hand is the one way to fool the first rule.
"""
from __future__ import annotations

import datetime as dt
import os
import re

from scripts.core.periods import Periods, parse_day

EARLIEST_OFFSET_MS = 14 * 3600 * 1000  # UTC+14 (Line Islands): the earliest any date starts
_CODEX_DATED = re.compile(r"(?:^|[/\\])sessions[/\\](\d{4})[/\\](\d{2})[/\\](\d{2})[/\\][^/\\]+$")


class Pruner:
    def __init__(self, since: str | None, until: str | None, zone_name: str):
        periods = Periods(zone_name)
        self.since_ms = periods.day_start_ms(since) if since else None
        self.until_end_ms = None
        if until:
            next_day = parse_day(until, "--until") + dt.timedelta(days=1)
            self.until_end_ms = periods.day_start_ms(next_day.isoformat())

    @property
    def active(self) -> bool:
        return self.since_ms is not None or self.until_end_ms is not None

    def reason_to_skip(self, source: str, path: str) -> str | None:
        """Why ``path`` cannot hold a call in range, or None when it may."""
        if self.since_ms is not None:
            try:
                mtime_ms = os.stat(path).st_mtime_ns // 1_000_000
            except OSError:
                return None  # let the parser report it
            if mtime_ms < self.since_ms:
                return "last written before --since"
        if self.until_end_ms is not None and source == "codex":
            m = _CODEX_DATED.search(path)
            if m:
                try:
                    day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
                except ValueError:
                    return None
                earliest = (day - dt.date(1970, 1, 1)).days * 86_400_000 - EARLIEST_OFFSET_MS
                if earliest >= self.until_end_ms:
                    return "its session started after --until (dated directory)"
        return None

    def split(self, source: str, paths: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
        """``(paths to parse, [(skipped path, reason)])``; ``-`` (stdin) is always parsed."""
        keep: list[str] = []
        skipped: list[tuple[str, str]] = []
        for path in paths:
            reason = None if path == "-" else self.reason_to_skip(source, path)
            if reason is None:
                keep.append(path)
            else:
                skipped.append((path, reason))
        return keep, skipped
