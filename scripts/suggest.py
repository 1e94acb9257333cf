"""suggest: the priced monthly report -> suggestions with the numbers that triggered them.

Rules and thresholds: docs/suggestions.md. Output: ``$ARTIFACTS/reports/suggestions.json``
(schemas/suggestions.v1.schema.json).
"""
from __future__ import annotations

import os

import click

from scripts.cli import artifacts_option, stage_command
from scripts.core.runlog import StageTimer
from scripts.shared_io import STDIO, AtomicFile, DataError, dumps_doc, read_doc


def transform(monthly: dict, month: str | None = None) -> dict:
    """The suggestions document (pure)."""
    from scripts.core.suggestions import suggestions_document

    if not isinstance(monthly, dict) or monthly.get("kind") != "monthly" or monthly.get("schema_version") != 1:
        raise DataError("input is not a version-1 monthly report (reports/monthly.json)")
    return suggestions_document(monthly, month)


@stage_command("suggest")
@click.argument("monthly", required=False, default=None)
@click.option("--month", envvar="MONTH", default="", help="YYYY-MM to suggest for (env MONTH; default: the latest month in the data).")
@click.option("-o", "--output", default=None, help="Where to write (default $ARTIFACTS/reports/suggestions.json; - for stdout).")
@artifacts_option
def cli(monthly, month, output, artifacts):
    """Suggest where the money goes and what would cost less: high tool share, low
    cache-read share, high blended $/MTok, subscription-dominated spend, and a model far
    costlier per output token than another one you run in the same tool.

    MONTHLY is a priced monthly report (default $ARTIFACTS/reports/monthly.json).

    Example:

    \b
        suggest --artifacts artifacts --month 2026-08
        suggest artifacts/reports/monthly.json -o - | jq '.suggestions[].title'
    """
    from scripts.core.periods import parse_month

    timer = StageTimer(artifacts, "suggest")
    month = parse_month(month) if month else None
    source = monthly or os.path.join(artifacts, "reports", "monthly.json")
    if source != STDIO and not os.path.exists(source):
        raise DataError("missing; run `make all` first", where=source)
    doc = transform(read_doc(source), month)
    target = output or os.path.join(artifacts, "reports", "suggestions.json")
    with AtomicFile(target) as fh:
        fh.write(dumps_doc(doc))
    timer.finish(month=doc["month"], suggestions=len(doc["suggestions"]))


main = cli

if __name__ == "__main__":
    cli()
