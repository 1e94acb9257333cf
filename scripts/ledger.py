"""ledger: every model in one table (what it costs, what benchmarks say about it, how it
runs through CLIProxyAPI, how much you used it) as CSV, SQL and a SQLite database.

``ledger [OPTIONS] [EVENTS]...`` builds (``ledger build``); ``ledger map``, ``ledger dump``
and ``ledger schema`` help with rules and databases. See docs/ledger.md and
docs/contracts/ledger.md.
"""
from __future__ import annotations

import os

import click

from scripts.cli import CONTEXT_SETTINGS, artifacts_option, split_multi, stage_command, strict_option
from scripts.core import event_files
from scripts.shared_io import STDIO, AtomicFile, Diagnostics, dumps_doc, dumps_line, open_input, strict_from_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RULES = os.path.join(ROOT, "ledger-rules.json")
CSV_OUTPUTS = {"ledger.csv": "ledger", "benchmarks_normalized.csv": "benchmarks"}


def transform(*, book, rules, bench, runtime, usage, usage_maps, events):
    """The ledger tables and coverage summary from loaded inputs (pure)."""
    from scripts.core.ledger_table import assemble

    return assemble(book=book, rules=rules, bench=bench, runtime=runtime, usage=usage, usage_maps=usage_maps, events=events)


def csv_bytes(table, rows) -> bytes:
    import csv
    import io

    from scripts.core.ledger_sql import csv_value

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in rows:
        writer.writerow([csv_value(row.get(c)) for c in table.column_names])
    return buf.getvalue().encode("utf-8")


class DefaultGroup(click.Group):
    """``ledger [OPTIONS] [EVENTS]`` is ``ledger build ...``; subcommands stay reachable."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["build"] + list(args)
        return super().parse_args(ctx, args)


@click.group("ledger", cls=DefaultGroup, context_settings=CONTEXT_SETTINGS)
def cli():
    """Build the model ledger: pricing + benchmark priors + CLIProxyAPI runtime metrics +
    your usage, as ledger.csv, benchmarks_normalized.csv, schema.sql, seed.sql,
    tokentally.db and coverage.json.

    Example:

    \b
        ledger --benchmarks models.csv          # build into $ARTIFACTS/ledger/
        ledger map "GPT-5.2 Codex (High)"      # how a benchmark column maps
        sqlite3 artifacts/ledger/tokentally.db 'SELECT * FROM model_value'
    """


@stage_command("build")
@click.argument("events", nargs=-1, type=click.Path(allow_dash=True))
@click.option("--pricing", envvar="PRICING", default="pricing.json", show_default=True, help="The pricing book (env PRICING).")
@click.option("--benchmarks", "benchmarks", envvar="MODELS_CSV", default="", help="Benchmark table: a markdown pipe table or its long-form CSV (env MODELS_CSV; default: none).")
@click.option("--rules", "rules_path", envvar="LEDGER_RULES", default="", help="Mapping rules file (env LEDGER_RULES; default: ledger-rules.json of this checkout).")
@click.option("--cliproxy-dir", "cliproxy_dirs", envvar="CLIPROXY_USAGE_DIR", default="", help="CLIProxyAPI usage archive directory, comma list (env CLIPROXY_USAGE_DIR).")
@click.option("--out-dir", default=None, help="Where to write (default $ARTIFACTS/ledger).")
@artifacts_option
@strict_option
def build(events, pricing, benchmarks, rules_path, cliproxy_dirs, out_dir, artifacts, strict):
    """Build the ledger from the pricing book, a benchmark table, the CLIProxyAPI archive
    and normalized EVENTS (JSONL files, ``-`` for stdin; default $ARTIFACTS/events/*/*.jsonl).

    Example:

    \b
        ledger --pricing pricing.json --benchmarks models.csv
        normalize --source claude session.jsonl | ledger --out-dir /tmp/ledger -
        MODELS_CSV=models.csv CLIPROXY_USAGE_DIR=~/cliproxy-archive make ledger
    """
    from scripts.core import ledger_db
    from scripts.core.ledger_bench import read_table
    from scripts.core.ledger_rules import load_rules
    from scripts.core.ledger_runtime import read_archive
    from scripts.core.ledger_sql import BENCHMARKS, LEDGER, schema_sql, seed_lines
    from scripts.core.pricing_book import load_book
    from scripts.core.runlog import StageTimer

    diag = Diagnostics(strict=strict_from_env(strict))
    timer = StageTimer(artifacts if out_dir is None else None, "ledger")
    out = out_dir or os.path.join(artifacts, "ledger")
    book = load_book(pricing)
    rules = load_rules(rules_path or DEFAULT_RULES)
    bench = None
    if benchmarks:
        with open_input(benchmarks) as fh:
            bench = read_table(benchmarks, fh.read(), diag)
    runtime = read_archive(_archive_dirs(cliproxy_dirs), diag)
    paths = list(events) or event_files.all_paths(artifacts)
    if not paths:
        diag.notice(f"ledger: no events in {os.path.join(artifacts, 'events')}; usage columns are zero")
    final_db = os.path.join(out, "tokentally.db")
    db, tmp = ledger_db.open_database(final_db)
    try:
        usage, usage_maps, estats = ledger_db.load_events(db, paths, book, rules, diag)
        tables, coverage = transform(book=book, rules=rules, bench=bench, runtime=runtime, usage=usage, usage_maps=usage_maps, events=estats)
        ledger_db.complete(db, tables)
        with AtomicFile(os.path.join(out, "ledger.csv")) as fh:
            fh.write(csv_bytes(LEDGER, tables["ledger"]))
        with AtomicFile(os.path.join(out, "benchmarks_normalized.csv")) as fh:
            fh.write(csv_bytes(BENCHMARKS, tables["benchmarks"]))
        with AtomicFile(os.path.join(out, "schema.sql")) as fh:
            fh.write(schema_sql().encode())
        with AtomicFile(os.path.join(out, "seed.sql")) as fh:
            for line in seed_lines(tables):
                fh.write(line.encode())
        with AtomicFile(os.path.join(out, "coverage.json")) as fh:
            fh.write(dumps_doc(coverage))
        ledger_db.publish(tmp, final_db)
    except BaseException:
        ledger_db.discard(db, tmp)
        raise
    led = coverage["ledger"]
    maps = coverage["mappings"]["benchmark"]
    click.echo(
        f"ledger: {led['models']} models ({led['priced']} priced), "
        f"{maps['mapped']}/{maps['total']} benchmark columns mapped, "
        f"{led['with_runtime']} with runtime metrics, {estats.events} events -> {out}/",
        err=True,
    )
    timer.finish(models=led["models"], events=estats.events, bad_lines=diag.bad_lines, benchmark_columns=maps, cache_outcome="miss")


def _archive_dirs(option: str) -> list[str]:
    dirs = [d for d in split_multi([option]) if d] if option else []
    if dirs:
        return [os.path.expanduser(d) for d in dirs]
    try:  # the adapter's default locations, when this checkout has a CLIProxyAPI adapter
        from scripts.core.sources import roots

        return roots("cliproxy", {})
    except (ImportError, KeyError, AttributeError):
        return []


@stage_command("map")
@click.argument("names", nargs=-1, required=True)
@click.option("--kind", type=click.Choice(("benchmark", "usage")), default="benchmark", show_default=True, help="benchmark: a table column's display name; usage: a logged model name.")
@click.option("--pricing", envvar="PRICING", default="pricing.json", show_default=True, help="The pricing book (env PRICING).")
@click.option("--rules", "rules_path", envvar="LEDGER_RULES", default="", help="Mapping rules file (env LEDGER_RULES).")
def map_names(names, kind, pricing, rules_path):
    """Show how NAMES map to the pricing book: model, rule, confidence, or the reason
    they stay unmapped (one JSON line each).

    Example:

    \b
        ledger map "Claude Sonnet 4.5" "GPT-5.2 Codex (High)" "Qwen 3 Base"
        ledger map --kind usage claude-sonnet-4-5-20250929
    """
    from scripts.core.ledger_rules import load_rules
    from scripts.core.pricing_book import load_book

    book = load_book(pricing)
    rules = load_rules(rules_path or DEFAULT_RULES)
    import sys

    out = sys.stdout.buffer
    for name in names:
        m = rules.map_display_name(name, book) if kind == "benchmark" else rules.map_logged_name(name, None, book)
        out.write(
            dumps_line(
                {
                    "name": name,
                    "model": m.model,
                    "rule": m.rule,
                    "rule_chain": m.rule_chain,
                    "confidence": m.confidence,
                    "reason": m.reason,
                    "candidates": list(m.candidates),
                }
            )
        )


@stage_command("dump")
@click.argument("database", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", default=STDIO, show_default=True, help="Where to write the dump.")
def dump(database, output):
    """Write an ordered, deterministic SQL dump of a ledger DATABASE (schema by type and
    name, rows in primary-key order): two builds from the same inputs dump the same bytes.

    Example:

    \b
        ledger dump artifacts/ledger/tokentally.db | sha256sum
    """
    import sqlite3

    from scripts.core.ledger_sql import ordered_dump

    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        with AtomicFile(output) as fh:
            for line in ordered_dump(conn):
                fh.write(line.encode())
    finally:
        conn.close()


@stage_command("schema")
@click.option("--format", "fmt", type=click.Choice(("sql", "markdown")), default="sql", show_default=True, help="sql: schema.sql; markdown: the table reference of docs/contracts/ledger.md.")
def schema(fmt):
    """Print the ledger's schema (tables, indexes, views) as SQL or as markdown.

    Example:

    \b
        ledger schema | sqlite3 fresh.db
        ledger schema --format markdown
    """
    from scripts.core.ledger_sql import schema_markdown, schema_sql

    click.echo(schema_sql() if fmt == "sql" else schema_markdown(), nl=False)


@stage_command("stamp")
@click.option("--benchmarks", "benchmarks", envvar="MODELS_CSV", default="", help="Benchmark table (env MODELS_CSV).")
@click.option("--rules", "rules_path", envvar="LEDGER_RULES", default="", help="Mapping rules file (env LEDGER_RULES).")
@click.option("--cliproxy-dir", "cliproxy_dirs", envvar="CLIPROXY_USAGE_DIR", default="", help="CLIProxyAPI archive (env CLIPROXY_USAGE_DIR).")
@click.option("-o", "--output", required=True, help="The stamp file; rewritten only when the fingerprint changed.")
def stamp(benchmarks, rules_path, cliproxy_dirs, output):
    """Fingerprint the ledger's own inputs (benchmark table and rules by content, the
    CLIProxyAPI archive by file sizes and times) for Make: the stamp changes only when
    they do.

    Example:

    \b
        ledger stamp --benchmarks models.csv -o artifacts/stamps/ledger.fp
    """
    import hashlib

    from scripts.core.ledger_runtime import archive_files

    def content(path):
        try:
            with open(path, "rb") as fh:
                return hashlib.blake2b(fh.read(), digest_size=16).hexdigest()
        except OSError:
            return "missing"

    listing = hashlib.blake2b(digest_size=16)
    dirs = _archive_dirs(cliproxy_dirs)
    for d in dirs:
        for path in archive_files(d) if os.path.isdir(d) else ():
            st = os.stat(path)
            listing.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    rules_file = rules_path or DEFAULT_RULES
    doc = {
        "schema_version": 1,
        "benchmarks": {"path": benchmarks, "hash": content(benchmarks) if benchmarks else None},
        "rules": {"path": rules_file, "hash": content(rules_file)},
        "cliproxy": {"dirs": dirs, "fingerprint": listing.hexdigest()},
    }
    data = dumps_doc(doc)
    try:
        with open(output, "rb") as fh:
            if fh.read() == data:
                return
    except OSError:
        pass
    with AtomicFile(output) as fh:
        fh.write(data)


cli.add_command(build)
cli.add_command(stamp)
cli.add_command(map_names)
cli.add_command(dump)
cli.add_command(schema)
main = cli

if __name__ == "__main__":
    cli()
