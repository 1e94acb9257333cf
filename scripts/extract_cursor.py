"""extract-cursor: Cursor's state.vscdb (SQLite) -> one JSONL record per row used.

Reads ``cursorDiskKV`` (``bubbleId:*``, ``composerData:*``) and ``ItemTable``
(``composer.composerHeaders``) read-only, rows still in the ``-wal`` included, and writes
one record per row with only ids, model names, token counts, timestamps and workspace
paths (no message text), sorted by table and key. ``normalize --source cursor`` turns the
records into events.
"""
from __future__ import annotations

import os

import click

from scripts.cli import artifacts_option, stage_command, strict_option
from scripts.core.runlog import StageTimer
from scripts.shared_io import STDIO, AtomicFile, DataError, Diagnostics, dumps_line, strict_from_env, write_if_changed


def transform(databases: list[str], *, timeout: float = 2.0, diag: Diagnostics | None = None):
    """``(records, telemetry, failures)`` for the given database files (pure apart from
    reading them). A database that cannot be read at all is a failure ``(db, reason)``;
    a row that cannot be used is a rejection record (and a diagnostic line)."""
    from scripts.core.cursor_store import StoreError, Telemetry, read_records

    diag = diag or Diagnostics()
    tel = Telemetry()
    records: list[dict] = []
    failures: list[tuple[str, str]] = []
    for db in sorted(databases):
        try:
            got = []
            for rec in read_records(db, timeout, tel):
                if "rejected" in rec:
                    diag.bad_line(db, rec["key"], rec["rejected"])
                got.append(rec)
        except StoreError as exc:
            failures.append((db, str(exc)))
            continue
        records += got
    return records, tel, failures


def _inside(path: str, directory: str) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(directory) + os.sep)


@stage_command("extract-cursor")
@click.argument("databases", nargs=-1, type=click.Path(dir_okay=False))
@click.option("-o", "--output", default=STDIO, show_default=True, help="Where to write the JSONL records.")
@click.option("--busy-timeout", type=float, default=2.0, show_default=True, help="Seconds to wait for a lock Cursor holds.")
@artifacts_option
@strict_option
def cli(databases, output, busy_timeout, artifacts, strict):
    """Extract Cursor usage rows from state.vscdb as JSONL, one record per row.

    DATABASES default to $CURSOR_STATE_DB, else Cursor's global state.vscdb
    (~/.config/Cursor/... on Linux, ~/Library/Application Support/Cursor/... on
    macOS). The database is opened read-only: a running Cursor is not disturbed and
    rows still in the -wal file are read. A row whose value is not valid JSON goes
    through a best-effort extraction (counted as via_fallback); a row that yields
    nothing is reported as DB:KEY: REASON. A locked or corrupt database is one line
    on stderr: the previous output is kept as it was (none is written if there was
    none), so the next run tries again, and the run goes on (--strict or STRICT=1:
    exit 1). No database: an empty output.

    Example:

    \b
        extract-cursor -o cursor.jsonl
        extract-cursor ~/.config/Cursor/User/globalStorage/state.vscdb | normalize --source cursor -
    """
    from scripts.adapters import cursor

    strict = strict_from_env(strict)
    diag = Diagnostics(strict=strict)
    in_bundle = output != STDIO and _inside(output, artifacts)
    timer = StageTimer(artifacts if in_bundle else None, "extract_cursor")
    if databases:
        for db in databases:
            if not os.path.isfile(db):
                raise DataError("no such database file", where=db)
        dbs = list(databases)
    else:
        dbs = list(cursor.discover(cursor.roots_from_env(os.environ.get(cursor.ENV_VAR, "").strip() or None)))
    records, tel, failures = transform(dbs, timeout=busy_timeout, diag=diag)
    for db, reason in failures:
        if strict:
            raise DataError(reason, where=db)
        diag.notice(f"{db}: {reason}; Cursor usage not updated this run")
    data = b"".join(dumps_line(rec) for rec in records)
    changed = False
    if output == STDIO:
        with AtomicFile(output) as fh:
            fh.write(data)
    elif not failures:
        # unchanged records: only touched, so Make sees the extraction as done and
        # normalize finds nothing new
        changed = write_if_changed(output, data, touch=True)
    # else: a database could not be read. The previous output stays as it was, and none is
    # written when there was none: a file newer than the Cursor stamp would tell Make the
    # extraction is done, and a lock released without a write would never be retried.
    if tel.via_fallback:
        diag.notice(f"extract-cursor: {tel.via_fallback} row(s) read through the fallback JSON extraction")
    timer.finish(
        databases=dbs,
        present=bool(dbs),
        failures=[{"database": db, "reason": reason} for db, reason in failures],
        output_changed=changed,
        records=len(records),
        **tel.as_dict(),
    )




main = cli

if __name__ == "__main__":
    cli()
