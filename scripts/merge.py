"""merge: several machines' bundles -> one bundle of their events, deduplicated by id.

Writes ``<out>/events/<source>/<day>.jsonl`` and ``<out>/rollups/<source>.json``; `make merge`
then aggregates, prices and suggests in ``<out>`` as in any bundle.
"""
from __future__ import annotations

import click

from scripts.cli import stage_command, strict_option
from scripts.core.runlog import StageTimer, start_run
from scripts.shared_io import Diagnostics, strict_from_env


@stage_command("merge")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "out", envvar="MERGED", required=True, type=click.Path(file_okay=False), help="The merged bundle directory (env MERGED).")
@strict_option
def cli(inputs, out, strict):
    """Combine the normalized events of bundles copied from several computers.

    Each INPUT is a bundle directory (the ARTIFACTS directory `make all` wrote on one
    machine). An event found in several inputs counts once (the copy with the most
    tokens; ties to the first input). Events keep the `device` they were recorded on.

    Example:

    \b
        merge --out artifacts/merged artifacts ~/from-laptop/artifacts
        make merge INPUTS="artifacts ~/from-laptop/artifacts"
    """
    from scripts.core.merge import merge_bundles

    start_run(out)
    timer = StageTimer(out, "merge")
    diag = Diagnostics(strict=strict_from_env(strict))
    counts = merge_bundles(list(inputs), out, diag)
    click.echo(
        f"merged {counts['inputs']} bundles: {counts['events']:,} events from {counts['lines']:,} event lines "
        f"({counts['duplicates']:,} duplicates, {counts['bad_lines']:,} bad lines) into {out}",
        err=True,
    )
    timer.finish(**counts)


main = cli

if __name__ == "__main__":
    cli()
