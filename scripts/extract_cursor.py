"""extract-cursor: Cursor's state.vscdb (SQLite) -> one JSONL record per row used.

Placeholder until the Cursor adapter lands: writes an empty extraction.
"""
from __future__ import annotations

import click

from scripts.cli import artifacts_option, stage_command
from scripts.core.runlog import StageTimer
from scripts.shared_io import STDIO, AtomicFile


@stage_command("extract-cursor")
@click.option("-o", "--output", default=STDIO, show_default=True, help="Where to write the JSONL records.")
@artifacts_option
def cli(output, artifacts):
    """Extract Cursor usage rows as JSONL (not implemented yet: writes nothing).

    Example:

    \b
        extract-cursor -o cursor.jsonl
    """
    timer = StageTimer(artifacts if output != STDIO else None, "extract_cursor")
    with AtomicFile(output) as fh:
        fh.write(b"")
    timer.finish(rows_seen=0)


main = cli

if __name__ == "__main__":
    cli()
