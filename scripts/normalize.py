"""normalize: each source's raw records -> normalized events (JSONL).

Two ways to run it:

\b
  normalize --source claude FILE...      parse the given files (``-`` = stdin), print events
  normalize --bundle --source claude ...  bring $ARTIFACTS/events/ and rollups/ up to date,
                                          re-reading only what changed since the last run
"""
from __future__ import annotations

import sys
from typing import Iterable, Iterator

import click

from scripts import adapters
from scripts.adapters.base import FileSink, ParseContext, iter_complete_lines
from scripts.cli import artifacts_option, stage_command, strict_option, timezone_option
from scripts.core.runlog import StageTimer
from scripts.core.sources import default_device
from scripts.shared_io import STDIO, AtomicFile, DataError, Diagnostics, display_name, dumps_line, strict_from_env


def transform(source: str, inputs: Iterable[tuple[str, bytes]], *, device: str = "", diag: Diagnostics | None = None) -> Iterator[dict]:
    """Events from raw inputs ``(name, content)`` of one source, deduplicated across them.

    Pure: no caching, no discovery. The same call seen in two inputs is one event (the
    copy with the larger usage total; ties to the first input by name, then line), and
    events come in input-name order, each input's in the order they first appear: the
    output does not depend on the order the inputs are given in (as in bundle mode).
    """
    mod = adapters.load(source)
    diag = diag or Diagnostics()
    kept: dict[str, tuple] = {}
    for name, content in inputs:
        sink = FileSink(name, on_bad=lambda p, where, reason: diag.bad_line(p, where, reason))
        ctx = ParseContext(path=name, device=device)
        if mod.resumable:
            # a finished input: its last line counts even without a newline
            complete = content if content.endswith(b"\n") or not content else content + b"\n"
            mod.parse_lines(ctx, iter_complete_lines(complete, 1), sink)
        else:
            mod.parse_content(ctx, content, sink)
        for seq, ev in enumerate(sink.events.values()):
            rank = (-ev["total_tokens"], name, ev.get("source_line") or 0, seq)
            prev = kept.get(ev["id"])
            if prev is None or rank < prev[0]:
                kept[ev["id"]] = (rank, ev)
    for _rank, ev in sorted(kept.values(), key=lambda item: (item[0][1], item[0][3])):
        yield ev


@stage_command("normalize")
@click.argument("inputs", nargs=-1, type=click.Path(allow_dash=True))
@click.option("--source", "sources", multiple=True, type=click.Choice(adapters.SOURCES), help="Source format of the inputs (with --bundle: repeatable, default all).")
@click.option("-o", "--output", default=STDIO, show_default=True, help="Where to write events (file mode).")
@click.option("--bundle", is_flag=True, help="Update $ARTIFACTS/events/<source>/<day>.jsonl and rollups/ incrementally.")
@click.option("--force", is_flag=True, envvar="FORCE", help="Bundle mode: ignore the parse cache, re-read everything (env FORCE=1).")
@click.option("--forget", is_flag=True, help="Bundle mode: drop events of files that no longer exist.")
@click.option("--only-stale", is_flag=True, help="Bundle mode: skip sources whose stamp is older than their last normalize.")
@click.option("--jobs", type=int, default=0, help="Worker processes for parsing (default: one per core).")
@click.option("--device", default="", help="Machine name stored on each event (default: $DEVICE, else the hostname).")
@click.option("--since", default="", help="File mode: skip files that cannot hold a call on or after this day (YYYY-MM-DD in the time zone).")
@click.option("--until", default="", help="File mode: skip files that cannot hold a call on or before this day (YYYY-MM-DD in the time zone).")
@timezone_option
@artifacts_option
@strict_option
def cli(inputs, sources, output, bundle, force, forget, only_stale, jobs, device, since, until, timezone, artifacts, strict):
    """Turn raw usage records into normalized events (one JSON object per line).

    Each event is one billable call: provider, model, session, project, UTC
    timestamp, usage buckets that never overlap, a stable id, and the file and line it
    came from. Bad lines are reported as FILE:LINE: REASON on stderr and skipped
    (--strict or STRICT=1 makes the first one fatal).

    In file mode, --since/--until prune: a file last modified before --since, or a
    Codex session whose dated directory starts after --until, is not read (its events
    could not be in range; events of the files read are not filtered, `aggregate`
    does that).

    Example:

    \b
        normalize --source claude ~/.claude/projects/*/*.jsonl | aggregate - | price -
        normalize --source codex --since 2026-08-01 ~/.codex/sessions/*/*/*/*.jsonl
        normalize --bundle --source claude --source codex --artifacts artifacts
    """
    diag = Diagnostics(strict=strict_from_env(strict))
    device = device or default_device()
    if bundle and (since or until):
        raise click.UsageError("--since/--until prune files in file mode; a bundle filters its reports with SINCE/UNTIL")
    if bundle:
        from scripts.core import background
        from scripts.core.bundle_normalize import normalize_bundle, write_empty_source
        from scripts.core.event_files import stale_sources, touch_normalized

        timer = StageTimer(artifacts, "normalize")
        wanted = requested = list(sources) or list(adapters.SOURCES)
        if only_stale and not force:
            wanted = stale_sources(artifacts, wanted)
        have = set(adapters.available())
        frag = normalize_bundle(artifacts, [s for s in wanted if s in have], force=force, forget=forget, jobs=jobs, device=device, diag=diag)
        # sources whose process is still writing day files and its cache (it touches its
        # stamp when done); refresh lets them finish while aggregate runs (background.py)
        finishing = frag.pop("finishing", [])
        if not background.deferred:
            failed = background.finish()
            if failed:
                raise DataError(f"{failed[0][0]} failed (exit status {failed[0][1]})")
        for source in wanted:
            if source not in have:
                write_empty_source(artifacts, source)
        # every requested source is up to date now (the others were not stale): touch all
        # their stamps, or Make's grouped rule sees an older one and reruns normalize forever
        for source in requested:
            if source not in finishing:
                touch_normalized(artifacts, source)
        timer.finish(bad_lines=diag.bad_lines, **frag)
        return
    if len(sources) != 1:
        raise click.UsageError("give exactly one --source for the input files")
    names = list(inputs) or [STDIO]
    if since or until:
        names = _prune(sources[0], names, since, until, timezone, diag)

    def read_all():
        for name in names:
            if name == STDIO:
                yield display_name(name), sys.stdin.buffer.read()
            else:
                try:
                    with open(name, "rb") as fh:
                        yield name, fh.read()
                except OSError as exc:
                    raise DataError(exc.strerror or str(exc), where=name) from None

    with AtomicFile(output) as out:
        for ev in transform(sources[0], read_all(), device=device, diag=diag):
            out.write(dumps_line(ev))


def _prune(source: str, names: list[str], since: str, until: str, timezone: str, diag: Diagnostics) -> list[str]:
    from scripts.core.periods import parse_day, resolve_zone_name
    from scripts.core.pruning import Pruner

    for value, what in ((since, "--since"), (until, "--until")):
        if value:
            parse_day(value, what)
    keep, skipped = Pruner(since or None, until or None, resolve_zone_name(timezone)).split(source, names)
    if skipped:
        reasons: dict[str, int] = {}
        for _path, reason in skipped:
            reasons[reason] = reasons.get(reason, 0) + 1
        diag.notice("normalize: not read, nothing in range: " + ", ".join(f"{n} file(s) {r}" for r, n in sorted(reasons.items())))
    return keep


main = cli

if __name__ == "__main__":
    cli()
