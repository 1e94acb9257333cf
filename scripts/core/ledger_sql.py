"""The ledger's SQL contract: tables, indexes and views (one definition for schema.sql,
seed.sql, tokentally.db and the docs), SQL literals, and an ordered dump.

Column order here is the column order of the CSV files and of every INSERT. A change
to a table is a contract change: see docs/contracts/ledger.md (``LEDGER_SCHEMA_VERSION``).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

LEDGER_SCHEMA_VERSION = 1

SCHEMAS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "schemas")

_CONF = "BETWEEN 0 AND 100"
_RATE = ">= 0"
_SCORE = "BETWEEN 0 AND 100"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # TEXT, INTEGER, REAL
    not_null: bool = False
    check: str = ""  # the condition on this column, e.g. ">= 0"
    doc: str = ""


def C(name, type_, doc="", *, not_null=False, check=""):
    return Column(name, type_, not_null, check, doc)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    checks: tuple[str, ...] = ()  # table-level CHECK conditions
    foreign_keys: tuple[tuple[str, str, str], ...] = ()  # (column, table, column)
    doc: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


_RATES = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read", "tool_input", "tool_output")
_SCORES = (
    ("swe_bench_verified", "SWE-bench Verified, percent (primary value of the primary column)"),
    ("swe_bench_pro", "SWE-bench Pro, percent"),
    ("swe_bench_multilingual", "SWE-bench Multilingual, percent"),
    ("multi_swe_bench", "Multi-SWE-Bench, percent"),
    ("terminal_bench", "Terminal-Bench, percent"),
    ("livecodebench", "LiveCodeBench, percent"),
)
_USAGE = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens", "tool_input_tokens", "tool_output_tokens", "reasoning_tokens", "cache_write_1h_tokens")

META = Table(
    "meta",
    (C("key", "TEXT", "what", not_null=True), C("value", "TEXT", "its value (text)")),
    ("key",),
    doc="Where the ledger came from: schema version, input names and hashes. No clock.",
)

LEDGER = Table(
    "ledger",
    (
        C("model", "TEXT", "the pricing book's model name; for an unpriced model, its canonical logged name", not_null=True),
        C("priced", "INTEGER", "1 when the pricing book prices this model", not_null=True, check="IN (0, 1)"),
        C("vendor", "TEXT", "provider mapping: the company behind the model (anthropic, openai, google, ...); NULL when unmapped"),
        C("vendor_rule", "TEXT", "the rule that set vendor (book-provider, name-pattern, cliproxy-provider, source-tool, unmapped)", not_null=True),
        C("vendor_confidence", "INTEGER", "0-100", not_null=True, check=_CONF),
        C("model_rule", "TEXT", "model mapping: the rule that tied the primary benchmark column to this model (NULL: no column)"),
        C("model_rule_chain", "TEXT", "every rule of that mapping, in order, joined by >"),
        C("model_confidence", "INTEGER", "0-100; the lowest confidence in the chain", check=_CONF),
        C("bench_column", "TEXT", "the benchmark column the scores come from (highest confidence, then most values, then leftmost)"),
        C("bench_columns", "INTEGER", "how many benchmark columns map to this model", not_null=True, check=">= 0"),
        *(C(f"{r}_usd_per_mtok", "REAL", f"{r.replace('_', ' ')} rate, USD per million tokens (defaults filled in)", check=_RATE) for r in _RATES),
        C("long_context_above_tokens", "INTEGER", "prompt size above which the first long-context tier bills the whole request", check="> 0"),
        *(C(f"lc_{r}_usd_per_mtok", "REAL", f"long-context {r.replace('_', ' ')} rate", check=_RATE) for r in _RATES[:5]),
        C("tiers", "INTEGER", "long-context tiers in the book (all in table pricing)", not_null=True, check=">= 0"),
        C("list_blended_usd_per_mtok", "REAL", "(3 x input + output) / 4: the list price of a 3:1 input:output mix", check=_RATE),
        C("pricing_source", "TEXT", "the book's provenance.source for this model"),
        C("pricing_updated_at", "TEXT", "the book's provenance.updated_at"),
        C("bench_rows_total", "INTEGER", "benchmark rows of the primary column (price rows excluded)", not_null=True, check=">= 0"),
        C("bench_rows_present", "INTEGER", "of those, cells with a value", not_null=True, check=">= 0"),
        C("bench_rows_missing", "INTEGER", "of those, missing cells", not_null=True, check=">= 0"),
        *(C(name, "REAL", doc, check=_SCORE) for name, doc in _SCORES),
        C("table_input_usd_per_mtok", "REAL", "the benchmark table's own Input Price (primary value), for cross-checking the book", check=_RATE),
        C("table_output_usd_per_mtok", "REAL", "the benchmark table's own Output Price", check=_RATE),
        C("rt_requests", "INTEGER", "CLIProxyAPI requests (all providers)", not_null=True, check=">= 0"),
        C("rt_failures", "INTEGER", "of those, failed", not_null=True, check=">= 0"),
        C("rt_failure_rate", "REAL", "failures / requests", check="BETWEEN 0 AND 1"),
        C("rt_latency_p50_ms", "REAL", "median latency of successful requests, ms (nearest rank)", check=">= 0"),
        C("rt_latency_p95_ms", "REAL", "95th percentile latency, ms", check=">= 0"),
        C("rt_latency_mean_ms", "REAL", "mean latency, ms", check=">= 0"),
        C("rt_ttft_p50_ms", "REAL", "median time to first token, ms (v7 records)", check=">= 0"),
        C("usage_events", "INTEGER", "your calls of this model", not_null=True, check=">= 0"),
        C("usage_sessions", "INTEGER", "distinct (tool, session) pairs", not_null=True, check=">= 0"),
        *(C(f"usage_{k}", "INTEGER", k.replace("_", " "), not_null=True, check=">= 0") for k in _USAGE),
        C("usage_total_tokens", "INTEGER", "input + output + cache write + cache read + tool tokens", not_null=True, check=">= 0"),
        C("usage_cost_usd", "REAL", "what those calls cost at the book's rates (NULL: unpriced)", check=">= 0"),
        C("usage_first", "TEXT", "first call (UTC)"),
        C("usage_last", "TEXT", "last call (UTC)"),
        C("usage_sources", "TEXT", "the tools that logged it, comma-separated"),
    ),
    ("model",),
    checks=(
        "bench_rows_present + bench_rows_missing = bench_rows_total",
        "rt_failures <= rt_requests",
        "rt_latency_p50_ms IS NULL OR rt_latency_p95_ms IS NULL OR rt_latency_p50_ms <= rt_latency_p95_ms",
        "priced = 0 OR (input_usd_per_mtok IS NOT NULL AND output_usd_per_mtok IS NOT NULL)",
        "(vendor IS NULL) = (vendor_rule = 'unmapped')",
        "(model_rule IS NULL) = (bench_column IS NULL)",
    ),
    doc="One row per model: every model the book prices, plus every unpriced model seen in your events or the CLIProxyAPI archive.",
)

PRICING = Table(
    "pricing",
    (
        C("model", "TEXT", "ledger model", not_null=True),
        C("above_prompt_tokens", "INTEGER", "0 for the base rates; else the tier's threshold", not_null=True, check=">= 0"),
        *(C(f"{r}_usd_per_mtok", "REAL", f"{r.replace('_', ' ')}, USD per million tokens", not_null=True, check=_RATE) for r in _RATES),
    ),
    ("model", "above_prompt_tokens"),
    foreign_keys=(("model", "ledger", "model"),),
    doc="Every rate of the pricing book, one row per model and tier (defaults filled in as the book defines them).",
)

SUBSCRIPTIONS = Table(
    "subscriptions",
    (C("provider", "TEXT", "the tool (claude, cursor, ...)", not_null=True), C("usd_per_month", "REAL", "monthly fee", not_null=True, check=">= 0")),
    ("provider",),
    doc="Subscriptions of the pricing book (providers[].subscription_usd_month).",
)

MODEL_MAP = Table(
    "model_map",
    (
        C("kind", "TEXT", "benchmark (a table column), usage (an event model) or runtime (a CLIProxyAPI model)", not_null=True, check="IN ('benchmark', 'usage', 'runtime')"),
        C("name", "TEXT", "the name as it appears there", not_null=True),
        C("model", "TEXT", "the ledger model it maps to; NULL: unmapped (see reason)"),
        C("vendor", "TEXT", "the vendor of the name"),
        C("rule", "TEXT", "the deciding rule (the lowest-confidence link)", not_null=True),
        C("rule_chain", "TEXT", "every rule applied, joined by >", not_null=True),
        C("confidence", "INTEGER", "0-100", not_null=True, check=_CONF),
        C("reason", "TEXT", "why it is unmapped"),
        C("candidates", "TEXT", "model ids tried, as a JSON array"),
    ),
    ("kind", "name"),
    checks=("(model IS NULL) = (reason IS NOT NULL)",),
    foreign_keys=(("model", "ledger", "model"),),
    doc="Every mapping decision: each benchmark column, event model and CLIProxyAPI model, mapped or not.",
)

BENCHMARKS = Table(
    "benchmarks",
    (
        C("row_id", "INTEGER", "row-major cell number, from 1", not_null=True, check=">= 1"),
        C("benchmark", "TEXT", "the benchmark (row label)", not_null=True),
        C("notes_configuration", "TEXT", "the table's notes/configuration cell", not_null=True),
        C("model", "TEXT", "the column's display name", not_null=True),
        C("raw_value", "TEXT", "the cell, trimmed", not_null=True),
        C("value_primary", "TEXT", "before ' / ', or the whole cell", not_null=True),
        C("value_secondary", "TEXT", "after ' / ', else empty", not_null=True),
        C("split_kind", "TEXT", "slash or none", not_null=True, check="IN ('none', 'slash')"),
        C("is_missing", "INTEGER", "1 for a missing marker", not_null=True, check="IN (0, 1)"),
        C("source_row_index", "INTEGER", "1-based line in the source file", check=">= 1"),
        C("source_col_index", "INTEGER", "1-based cell in the row", check=">= 1"),
        C("source_col_name", "TEXT", "the header cell", not_null=True),
        C("primary_number", "REAL", "value_primary as a number"),
        C("primary_unit", "TEXT", "percent, usd or number", check="IN ('percent', 'usd', 'number')"),
        C("primary_qualifier", "TEXT", "text after the number, e.g. (>200k)"),
        C("secondary_number", "REAL", "value_secondary as a number"),
        C("secondary_unit", "TEXT", "percent, usd or number", check="IN ('percent', 'usd', 'number')"),
        C("secondary_qualifier", "TEXT", "text after the number"),
    ),
    ("row_id",),
    checks=("is_missing = 0 OR (value_primary = '' AND primary_number IS NULL)",),
    doc="The benchmark table in long form (the same rows as benchmarks_normalized.csv).",
)

RUNTIME = Table(
    "runtime_metrics",
    (
        C("provider", "TEXT", "CLIProxyAPI's provider (claude, codex, gemini, ...; unknown for v6 records)", not_null=True),
        C("model", "TEXT", "canonical model name of the records", not_null=True),
        C("ledger_model", "TEXT", "the ledger row: the book's model, else the canonical name (unpriced models are ledger rows too)", not_null=True),
        C("vendor", "TEXT", "the vendor"),
        C("requests", "INTEGER", "requests, each counted once", not_null=True, check="> 0"),
        C("failures", "INTEGER", "failed requests", not_null=True, check=">= 0"),
        C("failure_rate", "REAL", "failures / requests", not_null=True, check="BETWEEN 0 AND 1"),
        C("latency_p50_ms", "REAL", "median latency of successful requests (nearest rank)", check=">= 0"),
        C("latency_p95_ms", "REAL", "95th percentile latency", check=">= 0"),
        C("latency_mean_ms", "REAL", "mean latency", check=">= 0"),
        C("latency_samples", "INTEGER", "successful requests with a latency", not_null=True, check=">= 0"),
        C("ttft_p50_ms", "REAL", "median time to first token (v7)", check=">= 0"),
        C("first_seen", "TEXT", "first request (UTC)"),
        C("last_seen", "TEXT", "last request (UTC)"),
        C("total_tokens", "INTEGER", "tokens the records report", not_null=True, check=">= 0"),
    ),
    ("provider", "model"),
    checks=("failures <= requests", "latency_p50_ms IS NULL OR latency_p50_ms <= latency_p95_ms"),
    foreign_keys=(("ledger_model", "ledger", "model"),),
    doc="Latency and failure rate per CLIProxyAPI provider and model.",
)

EVENTS = Table(
    "events",
    (
        C("id", "TEXT", "the event id (stable across runs)", not_null=True),
        C("provider", "TEXT", "the tool that logged it (claude, codex, cursor, ...)", not_null=True),
        C("model", "TEXT", "canonical model name", not_null=True),
        C("raw_model", "TEXT", "the name as logged"),
        C("ledger_model", "TEXT", "the ledger row: the book's model, else the canonical name", not_null=True),
        C("priced_as", "TEXT", "the book model that priced it (NULL: unpriced)"),
        C("session_id", "TEXT", "session"),
        C("project", "TEXT", "project"),
        C("timestamp", "TEXT", "RFC 3339 UTC with milliseconds", not_null=True),
        C("day", "TEXT", "UTC date of timestamp", not_null=True),
        *(C(k, "INTEGER", k.replace("_", " "), not_null=True, check=">= 0") for k in _USAGE),
        C("total_tokens", "INTEGER", "sum of the additive buckets", not_null=True, check=">= 0"),
        C("cost_micro_usd", "INTEGER", "cost in micro-dollars (NULL: unpriced)", check=">= 0"),
        C("cost_usd", "REAL", "the same in USD", check=">= 0"),
        C("source_file", "TEXT", "the log file"),
        C("source_line", "INTEGER", "its line"),
        C("adapter", "TEXT", "adapter"),
        C("adapter_version", "TEXT", "adapter version"),
        C("source_version", "TEXT", "the tool's version"),
        C("device", "TEXT", "machine"),
        C("model_provider", "TEXT", "upstream provider a tool reports (e.g. Codex's model_provider)"),
    ),
    ("id",),
    checks=("(cost_micro_usd IS NULL) = (priced_as IS NULL)",),
    foreign_keys=(("ledger_model", "ledger", "model"),),
    doc="Every normalized event (database only; not in seed.sql).",
)

# Order = creation and seeding order (referenced tables first).
TABLES = (META, LEDGER, PRICING, SUBSCRIPTIONS, MODEL_MAP, BENCHMARKS, RUNTIME, EVENTS)
SEED_TABLES = (META, LEDGER, PRICING, SUBSCRIPTIONS, MODEL_MAP, BENCHMARKS, RUNTIME)
TABLE_BY_NAME = {t.name: t for t in TABLES}

INDEXES = (
    ("events_day_provider", "events", ("day", "provider")),
    ("events_ledger_model_timestamp", "events", ("ledger_model", "timestamp")),
    ("events_session", "events", ("provider", "session_id")),
    ("events_project_day", "events", ("project", "day")),
    ("ledger_vendor", "ledger", ("vendor",)),
    ("model_map_model", "model_map", ("model",)),
    ("benchmarks_model_benchmark", "benchmarks", ("model", "benchmark")),
    ("benchmarks_benchmark", "benchmarks", ("benchmark",)),
    ("runtime_metrics_ledger_model", "runtime_metrics", ("ledger_model",)),
)

VIEWS = (
    (
        "daily_cost",
        """SELECT day, provider, ledger_model AS model,
       COUNT(*) AS events,
       COUNT(DISTINCT session_id) AS sessions,
       SUM(total_tokens) AS tokens,
       ROUND(SUM(cost_micro_usd) / 1000000.0, 6) AS cost_usd,
       SUM(CASE WHEN cost_micro_usd IS NULL THEN total_tokens ELSE 0 END) AS unpriced_tokens
FROM events
GROUP BY day, provider, ledger_model""",
    ),
    (
        "model_value",
        """SELECT model, vendor, bench_column, model_confidence,
       swe_bench_verified, terminal_bench,
       list_blended_usd_per_mtok,
       ROUND(list_blended_usd_per_mtok / NULLIF(swe_bench_verified, 0), 6) AS list_usd_per_mtok_per_swe_point,
       ROUND(list_blended_usd_per_mtok / NULLIF(terminal_bench, 0), 6) AS list_usd_per_mtok_per_terminal_point,
       usage_total_tokens, usage_cost_usd,
       ROUND(usage_cost_usd * 1000000.0 / NULLIF(usage_total_tokens, 0), 6) AS usage_usd_per_mtok,
       ROUND(usage_cost_usd / NULLIF(swe_bench_verified, 0), 6) AS usage_cost_usd_per_swe_point
FROM ledger
WHERE priced = 1 AND (swe_bench_verified IS NOT NULL OR terminal_bench IS NOT NULL)""",
    ),
    (
        "benchmark_scores",
        """SELECT m.model AS ledger_model, b.model AS column_name, m.rule, m.confidence,
       b.benchmark, b.notes_configuration, b.primary_number AS value, b.primary_unit AS unit,
       b.secondary_number AS value_secondary, b.raw_value
FROM benchmarks b
JOIN model_map m ON m.kind = 'benchmark' AND m.name = b.model
WHERE b.is_missing = 0""",
    ),
)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_table_sql(table: Table) -> str:
    lines = []
    for col in table.columns:
        parts = [f"  {col.name} {col.type}"]
        if col.not_null:
            parts.append("NOT NULL")
        if col.check:
            parts.append(f"CHECK ({col.name} {col.check})")
        lines.append(" ".join(parts))
    lines.append(f"  PRIMARY KEY ({', '.join(table.primary_key)})")
    for cond in table.checks:
        lines.append(f"  CHECK ({cond})")
    for column, ref_table, ref_column in table.foreign_keys:
        lines.append(f"  FOREIGN KEY ({column}) REFERENCES {ref_table} ({ref_column})")
    return f"CREATE TABLE {table.name} (\n" + ",\n".join(lines) + "\n);\n"


def create_index_sql(name: str, table: str, columns: tuple[str, ...]) -> str:
    return f"CREATE INDEX {name} ON {table} ({', '.join(columns)});\n"


def create_view_sql(name: str, select: str) -> str:
    return f"CREATE VIEW {name} AS\n{select};\n"


def schema_sql() -> str:
    """The whole schema (schema.sql): tables, indexes, views; a fresh database loads it."""
    parts = [
        f"-- tokentally ledger schema, version {LEDGER_SCHEMA_VERSION} (docs/contracts/ledger.md)\n",
        f"PRAGMA user_version = {LEDGER_SCHEMA_VERSION};\n",
    ]
    parts += ["\n" + create_table_sql(t) for t in TABLES]
    parts.append("\n")
    parts += [create_index_sql(*ix) for ix in INDEXES]
    parts += ["\n" + create_view_sql(name, sql) for name, sql in VIEWS]
    return "".join(parts)


# ------------------------------------------------------------------ values
def format_number(value) -> str:
    """Numbers as text, the same way in CSV and SQL: ints as ints, floats by repr
    (shortest round-trip), integral floats without ``.0``."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"not a finite number: {value!r}")
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def sql_literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return format_number(value)
    text = str(value).replace("\x00", "")
    return "'" + text.replace("'", "''") + "'"


def csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return format_number(value)
    return str(value)


def insert_sql(table: Table, row: dict) -> str:
    cols = table.column_names
    return f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join(sql_literal(row.get(c)) for c in cols)});\n"


def seed_lines(tables: dict[str, list[dict]]):
    """seed.sql, line by line: every row of the seeded tables, in primary-key order."""
    yield f"-- tokentally ledger seed, schema version {LEDGER_SCHEMA_VERSION}; load schema.sql first\n"
    yield "BEGIN TRANSACTION;\n"
    for table in SEED_TABLES:
        for row in tables.get(table.name, []):
            yield insert_sql(table, row)
    yield "COMMIT;\n"


def sort_key(table: Table):
    pk = table.primary_key
    return lambda row: tuple((row.get(c) is not None, row.get(c)) for c in pk)


# ------------------------------------------------------------------ dumps
def ordered_dump(conn):
    """An ordered, deterministic dump of a ledger database: schema objects by type and
    name, then every table's rows in primary-key order, as INSERT statements."""
    yield f"-- ordered dump, user_version {conn.execute('PRAGMA user_version').fetchone()[0]}\n"
    for typ, name, sql in conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type, name"
    ):
        yield f"{sql};\n"
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    for name in names:
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({quote_ident(name)})")]
        pk = [r[1] for r in sorted(conn.execute(f"PRAGMA table_info({quote_ident(name)})"), key=lambda r: r[5]) if r[5]] or cols
        order = ", ".join(quote_ident(c) for c in pk)
        for row in conn.execute(f"SELECT * FROM {quote_ident(name)} ORDER BY {order}"):
            yield f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join(sql_literal(v) for v in row)});\n"


def load_schema(name: str) -> dict:
    with open(os.path.join(SCHEMAS_DIR, name), "rb") as fh:
        return json.loads(fh.read())


def schema_markdown() -> str:
    """The tables as markdown (the generated part of docs/contracts/ledger.md)."""
    out = []
    for table in TABLES:
        out.append(f"### `{table.name}`\n\n{table.doc}\n\n")
        out.append("| column | type | constraint | meaning |\n| --- | --- | --- | --- |\n")
        for col in table.columns:
            cons = []
            if col.name in table.primary_key:
                cons.append("key")
            if col.not_null:
                cons.append("not null")
            if col.check:
                cons.append(col.check.replace("|", "\\|"))
            for column, ref_table, ref_column in table.foreign_keys:
                if column == col.name:
                    cons.append(f"→ {ref_table}.{ref_column}")
            out.append(f"| `{col.name}` | {col.type} | {', '.join(cons)} | {col.doc.replace('|', '/')} |\n")
        out.append(f"\nPrimary key: ({', '.join(table.primary_key)})")
        if table.checks:
            out.append("; checks: " + "; ".join(f"`{c}`" for c in table.checks))
        out.append(".\n\n")
    out.append("### Indexes\n\n")
    for name, table, columns in INDEXES:
        out.append(f"- `{name}` on {table} ({', '.join(columns)})\n")
    out.append("\n### Views\n\n")
    for name, select in VIEWS:
        out.append(f"`{name}`:\n\n```sql\n{select}\n```\n\n")
    return "".join(out).rstrip("\n") + "\n"
