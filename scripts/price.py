"""price: token aggregates (or events) -> money, from the pricing book.

``price [OPTIONS] INPUT`` prices; the governance commands are subcommands
(``price lint``, ``price audit``, ...). See ``price --help``.
"""
from __future__ import annotations

import os
import sys

import click

from scripts.cli import CONTEXT_SETTINGS, artifacts_option, stage_command, strict_option, timezone_option
from scripts.core.runlog import StageTimer
from scripts.shared_io import STDIO, AtomicFile, DataError, Diagnostics, dumps_doc, dumps_line, open_input, strict_from_env

ON_UNPRICED = ("warn", "skip", "error")
ADDITIVE = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens", "tool_input_tokens", "tool_output_tokens")


class DefaultGroup(click.Group):
    """A group whose first argument, when it is not a subcommand, goes to ``run``:
    ``price -`` is ``price run -``, while ``price lint`` is the lint subcommand."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["run"] + list(args)
        return super().parse_args(ctx, args)


def transform(doc, book, on_unpriced: str = "warn", diag: Diagnostics | None = None) -> dict:
    """Priced reports from an aggregates document (pure)."""
    from scripts.core.costing import price_aggregates

    if not isinstance(doc, dict) or doc.get("kind") != "aggregates" or doc.get("schema_version") != 1:
        raise DataError("input is not a version-1 aggregates document (the output of `aggregate`)")
    reports = price_aggregates(doc, book)
    unpriced = next(iter(reports.values()), {}).get("unpriced", []) if reports else []
    if unpriced:
        _unpriced_notice(unpriced, on_unpriced, diag)
        if on_unpriced == "skip":
            for rep in reports.values():
                rep["rows"] = [r for r in rep["rows"] if r.get("priced_as") is not None]
    return reports


def _unpriced_notice(unpriced: list, on_unpriced: str, diag: Diagnostics | None) -> None:
    if not unpriced:
        return
    names = ", ".join(f"{u['provider']}/{u['model']} ({u['tokens']:,} tokens)" for u in unpriced)
    if on_unpriced == "error":
        raise DataError(f"unpriced models: {names} (add them to the pricing book or run `price coverage`)")
    if on_unpriced == "warn" and diag is not None:
        diag.notice(f"price: unpriced, reported as such and not as $0: {names}")


@click.group("price", cls=DefaultGroup, context_settings=CONTEXT_SETTINGS)
def cli():
    """Price token aggregates or events with the pricing book, and keep the book honest.

    Example:

    \b
        normalize --source claude session.jsonl | aggregate - | price --pricing pricing.json -
        price --report daily --format table artifacts/aggregates/aggregates.json
    """


@stage_command("run")
@click.argument("input_path", metavar="INPUT", default=STDIO, required=False)
@click.option("--pricing", envvar="PRICING", default="pricing.json", show_default=True, help="The pricing book (env PRICING).")
@click.option("--on-unpriced", type=click.Choice(ON_UNPRICED), default="warn", show_default=True, help="What to do about models the book has no rate for (never priced as $0).")
@click.option("--report", "kinds", multiple=True, help="Only these report kinds (default all).")
@click.option("--out-dir", default=None, help="Write <kind>.json and <kind>.md here (what `make` uses) instead of stdout.")
@click.option("--format", "fmt", type=click.Choice(("json", "table", "markdown", "csv")), default="json", show_default=True, help="Stdout format.")
@click.option("--force", is_flag=True, envvar="FORCE", help="With --out-dir: ignore the incremental state in $ARTIFACTS/cache/price/ (env FORCE=1).")
@artifacts_option
@strict_option
def run(input_path, pricing, on_unpriced, kinds, out_dir, fmt, force, artifacts, strict):
    """Price INPUT: an aggregates document, or a JSONL stream of normalized events
    (each event comes back with ``cost_usd``). ``-`` is stdin.

    Example:

    \b
        aggregate events.jsonl | price --pricing pricing.json --report daily --format table -
        normalize --source codex rollout.jsonl | price --pricing pricing.json -
    """
    from scripts.core.pricing_book import load_book

    diag = Diagnostics(strict=strict_from_env(strict))
    timer = StageTimer(artifacts if out_dir else None, "price")
    book = load_book(pricing)
    incremental = out_dir and not kinds and on_unpriced != "skip"
    if incremental and input_path != STDIO:
        # the bundle's case: price only the periods whose aggregate entries changed
        # (scripts/core/price_incr.py), the file read a piece at a time (never whole);
        # the bytes are those of transform() + render()
        if _price_file_incrementally(input_path, book, out_dir, artifacts, on_unpriced, force, diag, timer):
            return
    with open_input(input_path) as fh:
        data = fh.read()
    stripped = data.lstrip()
    # event lines, or one aggregates document (a single line of megabytes: not copied)
    if _is_events(stripped):
        _price_events(data, book, input_path, diag, on_unpriced)
        return
    if incremental and input_path == STDIO and stripped:
        from scripts.core.price_incr import Unsplittable, build

        outcome = "invalidate" if os.path.exists(os.path.join(out_dir, "daily.json")) else "miss"
        try:
            stats, unpriced, written = build(data, book, out_dir, os.path.join(artifacts, "cache", "price"), on_unpriced, force)
        except Unsplittable:
            pass  # not in the form the byte-level cut expects: priced whole below
        else:
            _unpriced_notice(unpriced, on_unpriced, diag)
            timer.finish(cache_outcome=outcome, reports=written, pricing=book.describe(), unpriced=unpriced, cache=stats.as_dict())
            return
    from scripts.shared_io import loads

    try:
        doc = loads(data) if stripped else {"kind": "aggregates", "schema_version": 1, "reports": {}, "timezone": "UTC", "filters": {}}
    except Exception:
        raise DataError("not valid JSON (expected an aggregates document or event lines)", where=input_path) from None
    reports = transform(doc, book, on_unpriced, diag)
    if kinds:
        reports = {k: v for k, v in reports.items() if k in kinds}
    if out_dir:
        from scripts.core.render import render

        outcome = "invalidate" if os.path.exists(os.path.join(out_dir, "daily.json")) else "miss"
        # Every .md before any .json: Make and refresh judge this stage by the .json files
        # alone, so a run killed midway must not leave them all new with a .md missing.
        for kind, rep in reports.items():
            with AtomicFile(os.path.join(out_dir, f"{kind}.md")) as out:
                out.write(render(rep, "markdown").encode())
        for kind, rep in reports.items():
            with AtomicFile(os.path.join(out_dir, f"{kind}.json")) as out:
                out.write(dumps_line(rep))  # compact: `report KIND --format json` pretty-prints
        timer.finish(cache_outcome=outcome, reports=sorted(reports), pricing=book.describe(), unpriced=next(iter(reports.values()), {}).get("unpriced", []) if reports else [])
        return
    if fmt == "json":
        payload = next(iter(reports.values())) if len(reports) == 1 else {"schema_version": 1, "kind": "priced-reports", "reports": reports}
        sys.stdout.buffer.write(dumps_doc(payload))
        return
    from scripts.core.render import render

    for kind, rep in reports.items():
        click.echo(render(rep, fmt), nl=False)


def _is_events(stripped: bytes) -> bool:
    """Whether the input (without leading blanks) is event lines: its first line an
    object with a ``"usage"``."""
    end = stripped.find(b"\n")
    end = len(stripped) if end < 0 else end
    while end and stripped[end - 1] in b" \t\r":
        end -= 1
    return stripped.startswith(b"{") and stripped.find(b'"usage"', 0, end) >= 0 and stripped[end - 1:end] == b"}"


def _maybe_events(fh) -> bool:
    """Whether the open file ``fh`` (at its start) may be event lines, or is blank, read
    only as far as needed: its first line, a block at a time (an aggregates document is
    one line of megabytes). False only when it is neither."""
    head = fh.read(1 << 16).lstrip()
    if not head or b"\n" in head:
        return not head or _is_events(head)
    if not head.startswith(b"{"):
        return False
    tail = b""
    block = head
    while block:
        end = block.find(b"\n")
        end = len(block) if end < 0 else end
        if block.find(b'"usage"', 0, end) >= 0 or (tail + block[:6]).find(b'"usage"') >= 0:
            return True
        if end < len(block):
            return False
        tail = block[-6:]  # a "usage" across two blocks
        block = fh.read(1 << 16)
    return False


def _price_file_incrementally(input_path, book, out_dir, artifacts, on_unpriced, force, diag, timer) -> bool:
    """``price_incr.build`` on the file ``input_path``, read a piece at a time, if it is an
    aggregates document in the form that cuts (else False: it is read whole and priced
    as such, or as events)."""
    from scripts.core.price_incr import FileDocument, Unsplittable, build
    from scripts.core.view_cache import file_identity

    with open_input(input_path) as fh:
        before = file_identity(fh.fileno())
        if before is None or _maybe_events(fh):
            return False
        outcome = "invalidate" if os.path.exists(os.path.join(out_dir, "daily.json")) else "miss"
        try:
            stats, unpriced, written = build(FileDocument(fh.fileno()), book, out_dir, os.path.join(artifacts, "cache", "price"), on_unpriced, force,
                                             (input_path, before))
        except Unsplittable:
            return False
    _unpriced_notice(unpriced, on_unpriced, diag)
    timer.finish(cache_outcome=outcome, reports=written, pricing=book.describe(), unpriced=unpriced, cache=stats.as_dict())
    return True


def _price_events(data: bytes, book, name: str, diag: Diagnostics, on_unpriced: str = "warn") -> None:
    """Each event line with ``cost_usd`` (null when unpriced, never 0)."""
    from scripts.core.costing import price_event
    from scripts.shared_io import loads

    out = sys.stdout.buffer
    shown = name if name != STDIO else "<stdin>"
    unpriced: dict[tuple, list[int]] = {}
    for lineno, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            ev = loads(line)
        except Exception:
            diag.bad_line(name if name != STDIO else "<stdin>", lineno, "not valid JSON")
            continue
        if not isinstance(ev, dict) or not isinstance(ev.get("usage"), dict):
            diag.bad_line(name if name != STDIO else "<stdin>", lineno, "not a normalized event")
            continue
        priced = price_event(ev, book)
        if priced["priced_as"] is None:
            key = (str(ev.get("provider")), str(ev.get("model")))
            if on_unpriced == "error":
                raise DataError(f"unpriced model {key[0]}/{key[1]} (add it to the pricing book or run `price coverage`)", where=f"{shown}:{lineno}")
            acc = unpriced.setdefault(key, [0, 0])
            acc[0] += 1
            acc[1] += int(ev.get("total_tokens") or sum(v for k, v in ev["usage"].items() if k in ADDITIVE and isinstance(v, int)))
            if on_unpriced == "skip":
                continue
        out.write(dumps_line(priced))
    if unpriced and on_unpriced == "warn":
        names = ", ".join(f"{p}/{m} ({n:,} events, {t:,} tokens)" for (p, m), (n, t) in sorted(unpriced.items()))
        diag.notice(f"price: unpriced, cost_usd null and not $0: {names}")
    elif unpriced:
        diag.notice(f"price: skipped {sum(n for n, _ in unpriced.values()):,} unpriced event(s)")


cli.add_command(run)


# ---------------------------------------------------------------- the book's own commands
# Each writes a JSON report under $ARTIFACTS/pricing/ (or -o), one line per finding on
# stderr, and exits 1 when the book fails the check. The logic is in scripts/core/pricing_*.py.
def _pricing_option(func):
    return click.option("--pricing", envvar="PRICING", default="pricing.json", show_default=True, help="The pricing book (env PRICING).")(func)


def _output_option(func):
    return click.option("-o", "--output", default=None, help="Where to write the JSON report (default $ARTIFACTS/pricing/<command>.json; - = stdout).")(func)


def _usage_options(func):
    for decorator in reversed(
        [
            click.option("--month", envvar="MONTH", default="", help="YYYY-MM (env MONTH; default: the bundle's month, else this month)."),
            timezone_option,
            click.option("--events", "events", multiple=True, help="Read these normalized event files (JSONL, - = stdin) instead of the bundle's rollups."),
            artifacts_option,
            strict_option,
        ]
    ):
        func = decorator(func)
    return func


def _exit(status: int) -> None:
    if status:
        raise click.exceptions.Exit(status)


@stage_command("import-litellm")
@click.argument("file", metavar="FILE")
@click.option("--overrides", default=None, help="Hand-kept overrides to apply on top (e.g. pricing-overrides.json).")
@click.option("--source-date", default=None, help="Date of the LiteLLM copy, YYYY-MM-DD (default: the file's modification date; never the clock).")
@click.option("-o", "--output", default=STDIO, show_default=True, help="Where to write the book.")
def import_litellm(file, overrides, source_date, output):
    """Build a pricing book from LiteLLM's model_prices_and_context_window.json.

    Keeps the chat models of the families our sources log (Claude, GPT/o-series,
    Gemini, Grok, DeepSeek, Kimi, GLM, Qwen, MiniMax, Devstral/Codestral), under the
    names events carry, with dated and alternative spellings as aliases; each model's
    provenance is ``litellm:<key>`` and the copy's date. Deterministic.

    Example:

    \b
        price import-litellm model_prices_and_context_window.json --overrides pricing-overrides.json -o pricing.json
        price import-litellm prices.json --source-date 2026-11-25 | price lint --pricing /dev/stdin
    """
    from scripts.core import pricing_ops

    _exit(pricing_ops.import_litellm(file, overrides, output, source_date))


@stage_command("import-book")
@click.argument("file", metavar="FILE")
@click.option("-o", "--output", default=STDIO, show_default=True, help="Where to write the version-1 book.")
def import_book(file, output):
    """Convert a book in the older format (providers.<p>.models, model_aliases,
    subscriptions) to this project's version-1 book. Missing rates become explicit:
    cache write = input, cache read = 0.1 x input, tool input = input, tool output = output.

    Example:

    \b
        price import-book old-pricing.json -o pricing.json
    """
    from scripts.core import pricing_ops

    _exit(pricing_ops.import_book(file, output))


@stage_command("lint")
@_pricing_option
@_output_option
@artifacts_option
def lint(pricing, output, artifacts):
    """Check the book: schema-valid, aliases resolve, no negative rates, no zero output
    rate, no placeholder values, tiers in order, rates plausibly per million tokens.
    Exit 1 with the list of violations.

    Example:

    \b
        price lint --pricing pricing.json
    """
    from scripts.core import pricing_ops

    _exit(pricing_ops.lint(pricing, artifacts, output))


@stage_command("audit")
@_pricing_option
@click.option("--max-age-days", type=click.IntRange(min=0), default=45, show_default=True, help="Older rates are stale.")
@click.option("--allow-stale", is_flag=True, help="Stale rates are warnings, not errors.")
@click.option("--allow-missing-source", is_flag=True, help="Missing sources or dates are warnings, not errors.")
@click.option("--today", default=None, help="The date to measure age from, YYYY-MM-DD (default: today, UTC).")
@_output_option
@artifacts_option
def audit(pricing, max_age_days, allow_stale, allow_missing_source, today, output, artifacts):
    """Check that the book and every model say where their rates come from and when,
    and that those dates are recent. Exit 1 on an error.

    Example:

    \b
        price audit --max-age-days 30
        price audit --allow-stale          # what `make check` does: staleness is a warning
    """
    from scripts.core import pricing_ops

    _exit(pricing_ops.audit(pricing, artifacts, output, max_age_days=max_age_days, allow_stale=allow_stale, allow_missing_source=allow_missing_source, today=today))


@stage_command("check")
@_pricing_option
@click.option("--allow-unpriced", is_flag=True, help="Report unpriced events but exit 0.")
@_usage_options
@_output_option
def check(pricing, allow_unpriced, month, timezone, events, artifacts, strict, output):
    """Exit 1 if any event of the month has no price in the book (reads the bundle's
    rollups, or --events).

    Example:

    \b
        price check --month 2026-08
        cat artifacts/events/cursor/*.jsonl | price check --events - --allow-unpriced
    """
    from scripts.core import pricing_ops

    _exit(pricing_ops.check(pricing, artifacts, output, month=month, timezone=timezone, events=events, allow_unpriced=allow_unpriced, strict=strict_from_env(strict)))


@stage_command("coverage")
@_pricing_option
@click.option("--patch", "patch_out", default=None, help="Where to write the patch (default $ARTIFACTS/pricing/patch.json).")
@_usage_options
@_output_option
def coverage(pricing, patch_out, month, timezone, events, artifacts, strict, output):
    """List the unpriced provider/model pairs with their token volume and the book's
    nearest names, and write a patch: an alias for each confident match (same name
    once normalized, or an effort/thinking variant); the rest listed as ``todo``.
    All months unless --month (or MONTH) is given.

    Example:

    \b
        price coverage && price apply artifacts/pricing/patch.json
    """
    from scripts.core import pricing_ops

    _exit(pricing_ops.coverage(pricing, artifacts, output, patch_out, month=month, timezone=timezone, events=events, strict=strict_from_env(strict)))


@stage_command("apply")
@click.argument("patch", metavar="PATCH")
@_pricing_option
@click.option("--write", is_flag=True, help="Write the book (default: a dry run that only reports).")
@click.option("--overwrite", is_flag=True, help="Replace rates and aliases the book already has.")
@click.option("--backup-dir", default=None, help="Where the previous book is copied before writing (default $ARTIFACTS/pricing/backups).")
@_output_option
@artifacts_option
def apply(patch, pricing, write, overwrite, backup_dir, output, artifacts):
    """Merge PATCH (aliases, models, providers) into the book. A dry run unless --write;
    with --write the old book is backed up first. Existing rates are never replaced
    without --overwrite, and the result must pass `price lint`: otherwise nothing is
    written and the exit status is 1.

    Example:

    \b
        price apply artifacts/pricing/patch.json            # what would change
        price apply artifacts/pricing/patch.json --write
    """
    from scripts.core import pricing_ops

    _exit(pricing_ops.apply(pricing, patch, artifacts, output, write=write, overwrite=overwrite, backup_dir=backup_dir))


@stage_command("reconcile")
@_pricing_option
@click.option("--write", is_flag=True, help="Write the patched book (default: dry run).")
@click.option("--overwrite", is_flag=True, help="Let the patch replace existing values.")
@click.option("--allow-unpriced", is_flag=True, help="Exit 0 even if events stay unpriced.")
@click.option("--stamp", default=None, help="Folder suffix (default: the UTC time, YYYYMMDDTHHMMSSZ).")
@_usage_options
def reconcile(pricing, write, overwrite, allow_unpriced, stamp, month, timezone, events, artifacts, strict):
    """coverage -> patch -> apply (dry run unless --write) -> check, in one run. Leaves
    coverage.json, patch.json, apply.json, check.json and reconcile.json in
    $ARTIFACTS/pricing/reconcile-<stamp>/ and points $ARTIFACTS/pricing/reconcile-latest.json
    at it. The check is of the book as patched.

    Example:

    \b
        price reconcile --month 2026-08
        price reconcile --write && price lint
    """
    from scripts.core import pricing_ops

    _exit(pricing_ops.reconcile(pricing, artifacts, month=month, timezone=timezone, events=events, write=write, overwrite=overwrite, allow_unpriced=allow_unpriced, stamp=stamp, strict=strict_from_env(strict)))


for _command in (import_litellm, import_book, lint, audit, check, coverage, apply, reconcile):
    cli.add_command(_command)
main = cli

if __name__ == "__main__":
    cli()
