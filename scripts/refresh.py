"""refresh: the pipeline in one process: (cache-check, extract-cursor,) normalize,
aggregate, price, suggest, snapshot, then the run summary.

`make all` runs this once with --check: cache-check first (its stamps say what changed),
then each stage only when one of its inputs is newer than its output (Make's own rule,
applied to the bundle's fixed layout), each exactly the stage command a user would type
(the same click command, called in-process). One Python start instead of seven is most
of what a warm or incremental run costs. The Makefile keeps a rule per stage, for running
one alone (`make normalized`, `make reports`, ...).

\b
  cache-check (--check; always) the logs, settings, code -> stamps/*.fp
  extract-cursor (--check)      stamps/cursor.fp, code.fp -> raw/cursor.jsonl
  normalize  stamps/<source>.fp, device.fp, code.fp, raw/cursor.jsonl -> events/, rollups/
             (--normalize; per source, see normalize --only-stale)
  aggregate  rollups/*.json, params.fp, code.fp  -> aggregates/aggregates.json
  price      aggregates.json, stamps/pricing.fp -> reports/<kind>.json, .md
  suggest    reports/monthly.json, stamps/view.fp -> reports/suggestions.json
  snapshot   reports/*.json, stamps/view.fp     -> ui-snapshot.json
  then run-summary, always
"""
from __future__ import annotations

import os
import sys

if __name__ == "__main__" and "--check" in sys.argv:
    # before the imports below: the logs are listed on the other core meanwhile
    from scripts.core import listing_prefetch

    listing_prefetch.start()

import glob

import click

from scripts.cli import artifacts_option, filter_options, stage_command, timezone_option
from scripts.core import background


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def stale(outputs: list[str], inputs: list[str]) -> bool:
    """Make's rule: an output is missing or older than an input."""
    oldest = min((_mtime(p) for p in outputs), default=-1)
    if oldest < 0:
        return True
    return any(_mtime(p) > oldest for p in inputs)


def plan(artifacts: str) -> list[tuple[str, list[str], list[str]]]:
    """(stage, outputs, inputs) in order; inputs of a later stage include earlier outputs."""
    a = artifacts
    rollups = sorted(glob.glob(os.path.join(a, "rollups", "*.json")))
    aggregates = os.path.join(a, "aggregates", "aggregates.json")
    reports = [os.path.join(a, "reports", f"{k}.json") for k in ("daily", "weekly", "monthly", "sessions", "projects", "blocks")]
    suggestions = os.path.join(a, "reports", "suggestions.json")
    snapshot = os.path.join(a, "ui-snapshot.json")
    view = os.path.join(a, "stamps", "view.fp")
    return [
        ("aggregate", [aggregates], rollups + [os.path.join(a, "stamps", "params.fp"), os.path.join(a, "stamps", "code.fp")]),
        ("price", reports, [aggregates, os.path.join(a, "stamps", "pricing.fp")]),
        ("suggest", [suggestions], [os.path.join(a, "reports", "monthly.json"), view]),
        ("snapshot", [snapshot], reports + [suggestions, view]),
    ]


def _invoke(command: click.Command, args: list[str]) -> None:
    try:
        command.main(args=args, prog_name=command.name, standalone_mode=False)
    except click.exceptions.Exit as exc:
        if exc.exit_code:
            raise SystemExit(exc.exit_code) from None


@stage_command("refresh")
@click.option("--pricing", envvar="PRICING", default="pricing.json", show_default=True)
@click.option("--month", envvar="MONTH", default="")
@click.option("--snapshot-mode", envvar="SNAPSHOT_MODE", default="compact", show_default=True)
@click.option("--force", is_flag=True, envvar="FORCE", help="Run every stage whatever the mtimes say.")
@click.option("--check", "with_check", is_flag=True, help="Run cache-check first, then extract-cursor when its stamp changed.")
@click.option("--normalize", "with_normalize", is_flag=True, help="Also run normalize first, for the sources whose stamps changed.")
@timezone_option
@filter_options
@artifacts_option
def cli(pricing, month, snapshot_mode, force, with_check, with_normalize, timezone, since, until, providers, models, projects, artifacts):
    """Bring aggregates, reports, suggestions and the snapshot up to date, then write the
    run summary.

    Example:

    \b
        refresh --check --normalize --artifacts artifacts --pricing pricing.json --timezone UTC
    """
    filters = []
    for flag, values in (("--since", [since] if since else []), ("--until", [until] if until else []),
                         ("--provider", providers), ("--model", models), ("--project", projects)):
        for v in values:
            filters += [flag, v]
    tz = ["--timezone", timezone]
    commands = {
        "aggregate": lambda: _cmd("aggregate", ["--rollups", os.path.join(artifacts, "rollups"), "--artifacts", artifacts, *tz, *filters,
                                                 "-o", os.path.join(artifacts, "aggregates", "aggregates.json")], separate=True),
        "price": lambda: _cmd("price", ["run", "--pricing", pricing, "--out-dir", os.path.join(artifacts, "reports"), "--artifacts", artifacts,
                                         os.path.join(artifacts, "aggregates", "aggregates.json")]),
        "suggest": lambda: _cmd("suggest", ["--artifacts", artifacts, "--month", month]),
        "snapshot": lambda: _cmd("snapshot", ["--artifacts", artifacts, "--month", month, "--mode", snapshot_mode, *tz]),
    }
    if with_check:
        # FORCE, DEVICE and STRICT reach both through the environment, as under Make
        _cmd("cache_check", ["--artifacts", artifacts, "--pricing", pricing, "--month", month, "--snapshot-mode", snapshot_mode, *tz, *filters])
        raw_cursor = os.path.join(artifacts, "raw", "cursor.jsonl")
        stamps = os.path.join(artifacts, "stamps")
        if force or stale([raw_cursor], [os.path.join(stamps, "cursor.fp"), os.path.join(stamps, "code.fp")]):
            _cmd("extract_cursor", ["--artifacts", artifacts, "-o", raw_cursor])
    whole = force
    # the later stages run here: a stage's children still finishing are ours to wait for
    was_deferred, background.deferred = background.deferred, True
    try:
        if with_normalize and (force or _normalize_needed(artifacts)):
            whole = parses_whole_history(artifacts, force)
            background.when_idle(_import_later_stages)  # while normalize's processes work
            _cmd("normalize", ["--bundle", "--only-stale", "--artifacts", artifacts], separate=whole)
        for stage, outputs, inputs in plan(artifacts):
            if force or stale(outputs, inputs):
                commands[stage]()
    finally:
        # a stage copy that released us early is still writing (background.py): the run,
        # and this process (whose exit frees the bundle's lock), end only after it
        failed = background.finish()
        background.deferred = was_deferred
        background.drop_idle_work()
    if failed:
        raise SystemExit(failed[0][1])  # the copy has said why, in one line
    _cmd("run_summary", ["--artifacts", artifacts])


def _cmd(module: str, args: list[str], separate: bool = False) -> None:
    """Run a stage's command in this process, or (``separate``) in a forked copy of it."""
    import importlib

    command = importlib.import_module(f"scripts.{module}").cli
    if not separate or not hasattr(os, "fork"):
        _invoke(command, args)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        background.prepare_child(write_end)
        os._exit(_exit_code_of(command, args))
    os.close(write_end)
    background.do_idle_work()  # while the copy works (a first run's normalize: ~1.5 s)
    if background.wait_for_release(read_end):
        background.track(pid, module)  # what later stages read is written; it goes on
        return
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise SystemExit(code if code > 0 else 1)  # the stage has said why, in one line


def _import_later_stages() -> None:
    """Import what aggregate, price, suggest, snapshot and the run summary need (~12 ms),
    at a moment this process would otherwise spend waiting."""
    import importlib

    for name in ("aggregate", "core.aggregate_incr", "price", "core.price_incr", "suggest", "snapshot", "run_summary"):
        try:
            importlib.import_module(f"scripts.{name}")
        except ImportError:
            pass  # the stage says so itself, when it runs


def _normalize_needed(artifacts: str) -> bool:
    """Whether some source is stale (normalize --only-stale then does just those)."""
    from scripts import adapters
    from scripts.core.event_files import stale_sources

    return bool(stale_sources(artifacts, list(adapters.SOURCES)))


def parses_whole_history(artifacts: str, force: bool) -> bool:
    """Whether normalize will read every log of some source (a first run, FORCE): then it
    runs in a forked copy of this process, so the memory it used goes back to the system
    instead of stacking under price's peak (a first run of 400k calls: 169 -> 144 MB).
    Not on later runs, where each changed source has a process of its own anyway.

    Aggregate always runs in a forked copy: its state (per day, per session) is not under
    price's then either. On a later run at 400k calls that took the largest process from
    ~45 to ~41-42 MB, at 200k from 35-36 to 32-34 MB, at no cost in time (the bench's
    incremental medians 0.189 / 0.204 s forked, 0.194 / 0.214 s not, alternated)."""
    from scripts.core.event import PROVIDERS
    from scripts.core.event_cache import has_index

    return force or not all(has_index(artifacts, s) for s in PROVIDERS)


def _exit_code_of(command: click.Command, args: list[str]) -> int:
    """Run a stage in the forked child; report an error the way click would, return the code."""
    code = 0
    try:
        _invoke(command, args)
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        code = 1
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - one line, as stage_command would
        click.echo(f"Error: internal error: {type(exc).__name__}: {exc}", err=True)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


main = cli


def run_and_exit() -> None:
    """Run the command, then leave without tearing the heap down: everything is written
    and closed by then, and freeing a run's objects one by one (the parse cache's index,
    the reports) took ~15 ms of an incremental run's ~0.3 s."""
    try:
        cli.main(prog_name="refresh")
        code = 0
    except SystemExit as exc:
        code = exc.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    run_and_exit()
