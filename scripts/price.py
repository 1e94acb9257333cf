"""price: token aggregates (or events) -> money, from the pricing book.

``price [OPTIONS] INPUT`` prices; the governance commands are subcommands
(``price lint``, ``price audit``, ...). See ``price --help``.
"""
from __future__ import annotations

import os

import click

from scripts.cli import CONTEXT_SETTINGS, artifacts_option, stage_command, strict_option
from scripts.core.runlog import StageTimer
from scripts.shared_io import STDIO, AtomicFile, DataError, Diagnostics, dumps_doc, dumps_line, open_input, strict_from_env

ON_UNPRICED = ("warn", "skip", "error")


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
        names = ", ".join(f"{u['provider']}/{u['model']} ({u['tokens']:,} tokens)" for u in unpriced)
        if on_unpriced == "error":
            raise DataError(f"unpriced models: {names} (add them to the pricing book or run `price coverage`)")
        if on_unpriced == "warn" and diag is not None:
            diag.notice(f"price: unpriced, reported as such and not as $0: {names}")
        if on_unpriced == "skip":
            for rep in reports.values():
                rep["rows"] = [r for r in rep["rows"] if r.get("priced_as") is not None]
    return reports


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
@artifacts_option
@strict_option
def run(input_path, pricing, on_unpriced, kinds, out_dir, fmt, artifacts, strict):
    """Price INPUT: an aggregates document, or a JSONL stream of normalized events
    (each event comes back with ``cost_usd``). ``-`` is stdin.

    Example:

    \b
        aggregate events.jsonl | price --pricing pricing.json --report daily --format table -
        normalize --source codex rollout.jsonl | price --pricing pricing.json -
    """
    from scripts.core.pricing_book import load_book

    import gc

    gc.disable()  # many short-lived, acyclic dicts: the cyclic collector only costs time
    diag = Diagnostics(strict=strict_from_env(strict))
    timer = StageTimer(artifacts if out_dir else None, "price")
    book = load_book(pricing)
    with open_input(input_path) as fh:
        data = fh.read()
    stripped = data.lstrip()
    first_line = stripped.split(b"\n", 1)[0]
    if stripped.startswith(b"{") and b'"usage"' in first_line and first_line.rstrip().endswith(b"}"):
        _price_events(data, book, input_path, diag)
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
        for kind, rep in reports.items():
            with AtomicFile(os.path.join(out_dir, f"{kind}.json")) as out:
                out.write(dumps_line(rep))  # compact: `report KIND --format json` pretty-prints
            with AtomicFile(os.path.join(out_dir, f"{kind}.md")) as out:
                out.write(render(rep, "markdown").encode())
        timer.finish(cache_outcome=outcome, reports=sorted(reports), pricing=book.describe(), unpriced=next(iter(reports.values()), {}).get("unpriced", []) if reports else [])
        return
    if fmt == "json":
        payload = next(iter(reports.values())) if len(reports) == 1 else {"schema_version": 1, "kind": "priced-reports", "reports": reports}
        click.get_binary_stream("stdout").write(dumps_doc(payload))
        return
    from scripts.core.render import render

    for kind, rep in reports.items():
        click.echo(render(rep, fmt), nl=False)


def _price_events(data: bytes, book, name: str, diag: Diagnostics) -> None:
    from scripts.core.costing import price_event
    from scripts.shared_io import loads

    out = click.get_binary_stream("stdout")
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
        out.write(dumps_line(price_event(ev, book)))


cli.add_command(run)
main = cli

if __name__ == "__main__":
    cli()
