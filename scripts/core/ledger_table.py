"""Assemble the ledger (pure): pricing book + benchmark table + runtime metrics + usage
-> the rows of every ledger table and the coverage summary.

Nothing here reads files or the clock; the ``ledger`` stage feeds it and writes what it
returns. Every list it returns is in primary-key order, so the output is deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from scripts.core.event import USAGE_KEYS
from scripts.core.ledger_bench import BenchTable
from scripts.core.ledger_rules import SCORE_COLUMNS, Mapping, Rules, slugify
from scripts.core.ledger_runtime import RuntimeArchive, Series
from scripts.core.ledger_sql import (
    BENCHMARKS,
    LEDGER,
    LEDGER_SCHEMA_VERSION,
    MODEL_MAP,
    PRICING,
    RUNTIME,
    SUBSCRIPTIONS,
    sort_key,
)

COVERAGE_SCHEMA_VERSION = 1
RATE_NAMES = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read", "tool_input", "tool_output")
USAGE_FIELDS = USAGE_KEYS
UNKNOWN_VENDOR = "unknown"


@dataclass
class Usage:
    """The user's usage of one ledger model (summed from the events table)."""

    events: int = 0
    sessions: int = 0
    tokens: dict = field(default_factory=dict)
    total_tokens: int = 0
    cost_micro: int | None = None
    first: str | None = None
    last: str | None = None
    sources: tuple[str, ...] = ()


@dataclass
class EventStats:
    files: list = field(default_factory=list)  # base names
    lines: int = 0
    events: int = 0  # distinct events in the database
    duplicates: int = 0
    bad_lines: int = 0
    unpriced_events: int = 0
    unpriced_tokens: int = 0


@dataclass
class ColumnStats:
    name: str
    index: int
    mapping: Mapping
    vendor: str | None
    total: int = 0
    present: int = 0
    missing: int = 0
    cells: int = 0
    cells_present: int = 0
    scores: dict = field(default_factory=dict)
    table_input: float | None = None
    table_output: float | None = None


def column_stats(bench: BenchTable, mappings: dict[str, Mapping], rules: Rules) -> list[ColumnStats]:
    """Per benchmark column: coverage over score rows (price rows apart), coding scores
    (first non-missing percent value of a matching row, primary value) and table prices."""
    stats = {
        name: ColumnStats(name, i, mappings[name], rules.vendor_of_name(slugify(name)).vendor)
        for i, name in enumerate(bench.columns)
    }
    for cell in bench.cells:
        st = stats.get(cell["model"])
        if st is None:
            continue
        st.cells += 1
        st.cells_present += 1 - cell["is_missing"]
        price = rules.price_row(cell["benchmark"])
        if price:
            if not cell["is_missing"] and cell["primary_unit"] == "usd":
                setattr(st, f"table_{price}", cell["primary_number"])
            continue
        st.total += 1
        if cell["is_missing"]:
            st.missing += 1
            continue
        st.present += 1
        score = rules.score_column(cell["benchmark"])
        if score and score not in st.scores and cell["primary_unit"] == "percent" and 0 <= cell["primary_number"] <= 100:
            st.scores[score] = cell["primary_number"]
    return [stats[name] for name in bench.columns]


def _rate(value: float) -> float:
    # defaults such as 0.1 x input carry float noise (0.17500000000000002); a rate is
    # exact to far fewer than 9 decimals per million tokens
    return round(value, 9)


def _rates(rates) -> dict:
    return {f"{r}_usd_per_mtok": _rate(getattr(rates, r)) for r in RATE_NAMES}


def _blend(rates) -> float:
    return round((3 * rates.input + rates.output) / 4, 6)


def assemble(
    *,
    book,
    rules: Rules,
    bench: BenchTable | None,
    runtime: RuntimeArchive,
    usage: dict[str, Usage],
    usage_maps: dict[str, Mapping],
    events: EventStats,
) -> tuple[dict[str, list[dict]], dict]:
    """Every ledger table's rows (keyed by table name) and the coverage summary."""
    # ---- benchmark columns -> book models
    bench_maps: dict[str, Mapping] = {}
    columns: list[ColumnStats] = []
    if bench is not None:
        bench_maps = {name: rules.map_display_name(name, book) for name in bench.columns}
        columns = column_stats(bench, bench_maps, rules)
    primary: dict[str, ColumnStats] = {}
    column_count: dict[str, int] = {}
    for st in columns:
        model = st.mapping.model
        if model is None:
            continue
        column_count[model] = column_count.get(model, 0) + 1
        best = primary.get(model)
        if best is None or (-st.mapping.confidence, -st.present, st.index) < (-best.mapping.confidence, -best.present, best.index):
            primary[model] = st

    # ---- runtime series -> ledger models
    runtime_maps: dict[str, Mapping] = {}
    runtime_rows = []
    by_model_runtime: dict[str, Series] = {}
    runtime_providers: dict[str, set] = {}
    for (provider, model) in sorted(runtime.series):
        series = runtime.series[(provider, model)]
        m = runtime_maps.get(model)
        if m is None:
            m = rules.map_logged_name(model, None, book, kind="runtime")
            runtime_maps[model] = m
        ledger_model = m.model or model
        merged = by_model_runtime.setdefault(ledger_model, Series())
        merged.merge(series)
        runtime_providers.setdefault(ledger_model, set()).add(provider)
        vendor = rules.vendor_of_cliproxy_provider(provider) or rules.vendor_of_name(model).vendor
        runtime_rows.append({"provider": provider, "model": model, "ledger_model": ledger_model, "vendor": vendor, **series.metrics()})

    # ---- the ledger's models: the whole book, plus every unpriced model we saw
    names: dict[str, None] = {p.name: None for p in book.models.values()}
    for model in usage:
        names.setdefault(model)
    for model in by_model_runtime:
        names.setdefault(model)
    entry_by_name = book.doc.get("models") or {}

    ledger_rows, pricing_rows = [], []
    vendor_unmapped = []
    vendor_rules: dict[str, int] = {}
    for model in sorted(names):
        price = book.models.get(model.lower())
        priced = price is not None and price.name == model
        u = usage.get(model) or Usage()
        rt = by_model_runtime.get(model)
        vm = rules.vendor_of_model(model, entry_by_name.get(model) if priced else None, tools=u.sources, cliproxy=sorted(runtime_providers.get(model, ())))
        vendor_rules[vm.rule] = vendor_rules.get(vm.rule, 0) + 1
        if vm.vendor is None:
            vendor_unmapped.append({"model": model, "reason": vm.reason})
        st = primary.get(model)
        row = {
            "model": model,
            "priced": 1 if priced else 0,
            "vendor": vm.vendor,
            "vendor_rule": vm.rule,
            "vendor_confidence": vm.confidence,
            "model_rule": st.mapping.rule if st else None,
            "model_rule_chain": st.mapping.rule_chain if st else None,
            "model_confidence": st.mapping.confidence if st else None,
            "bench_column": st.name if st else None,
            "bench_columns": column_count.get(model, 0),
            "tiers": len(price.tiers) if priced else 0,
            "bench_rows_total": st.total if st else 0,
            "bench_rows_present": st.present if st else 0,
            "bench_rows_missing": st.missing if st else 0,
            "table_input_usd_per_mtok": st.table_input if st else None,
            "table_output_usd_per_mtok": st.table_output if st else None,
        }
        for score in SCORE_COLUMNS:
            row[score] = st.scores.get(score) if st else None
        if priced:
            row.update(_rates(price.base))
            row["list_blended_usd_per_mtok"] = _blend(price.base)
            if price.tiers:
                threshold, lc = price.tiers[0]
                row["long_context_above_tokens"] = threshold
                row.update({f"lc_{r}_usd_per_mtok": _rate(getattr(lc, r)) for r in RATE_NAMES[:5]})
            prov = price.provenance if isinstance(price.provenance, dict) else {}
            row["pricing_source"] = prov.get("source")
            row["pricing_updated_at"] = prov.get("updated_at")
            pricing_rows.append({"model": model, "above_prompt_tokens": 0, **_rates(price.base)})
            for threshold, rates in price.tiers:
                pricing_rows.append({"model": model, "above_prompt_tokens": threshold, **_rates(rates)})
        m = rt.metrics() if rt else {}
        row.update(
            rt_requests=m.get("requests", 0),
            rt_failures=m.get("failures", 0),
            rt_failure_rate=m.get("failure_rate"),
            rt_latency_p50_ms=m.get("latency_p50_ms"),
            rt_latency_p95_ms=m.get("latency_p95_ms"),
            rt_latency_mean_ms=m.get("latency_mean_ms"),
            rt_ttft_p50_ms=m.get("ttft_p50_ms"),
            usage_events=u.events,
            usage_sessions=u.sessions,
            usage_total_tokens=u.total_tokens,
            usage_cost_usd=None if u.cost_micro is None else round(u.cost_micro / 1_000_000, 6),
            usage_first=u.first,
            usage_last=u.last,
            usage_sources=",".join(u.sources) or None,
        )
        for k in USAGE_FIELDS:
            row[f"usage_{k}"] = u.tokens.get(k, 0)
        ledger_rows.append({c: row.get(c) for c in LEDGER.column_names})

    # ---- model_map: every mapping decision
    map_rows = []
    vendor_by_model = {r["model"]: r["vendor"] for r in ledger_rows}
    for m in list(bench_maps.values()) + list(usage_maps.values()) + list(runtime_maps.values()):
        if m.model or (m.kind != "benchmark" and m.name in vendor_by_model):
            vendor = vendor_by_model.get(m.model or m.name)
        else:
            vendor = rules.vendor_of_name(slugify(m.name) if m.kind == "benchmark" else m.name).vendor
        map_rows.append(
            {
                "kind": m.kind,
                "name": m.name,
                "model": m.model,
                "vendor": vendor,
                "rule": m.rule,
                "rule_chain": m.rule_chain,
                "confidence": m.confidence,
                "reason": m.reason,
                "candidates": _json_list(m.candidates) if m.candidates else None,
            }
        )
    map_rows.sort(key=sort_key(MODEL_MAP))

    subscriptions = []
    for provider in sorted(book.providers or {}):
        fee = book.subscription(provider)
        if fee:
            subscriptions.append({"provider": provider, "usd_per_month": fee})

    tables = {
        "ledger": ledger_rows,
        "pricing": sorted(pricing_rows, key=sort_key(PRICING)),
        "subscriptions": sorted(subscriptions, key=sort_key(SUBSCRIPTIONS)),
        "model_map": map_rows,
        "benchmarks": [{c: cell.get(c) for c in BENCHMARKS.column_names} for cell in (bench.cells if bench else [])],
        "runtime_metrics": [{c: r.get(c) for c in RUNTIME.column_names} for r in runtime_rows],
    }
    tables["meta"] = _meta(book, rules, bench)
    coverage = _coverage(book, rules, bench, runtime, events, tables, columns, vendor_rules, vendor_unmapped, primary)
    return tables, coverage


def _json_list(items) -> str:
    import orjson

    return orjson.dumps(list(items)).decode()


def _meta(book, rules: Rules, bench: BenchTable | None) -> list[dict]:
    import os

    info = book.describe()
    rows = {
        "schema_version": str(LEDGER_SCHEMA_VERSION),
        "pricing_file": os.path.basename(info.get("path") or ""),
        "pricing_hash": info.get("hash") or "",
        "pricing_source": info.get("source"),
        "pricing_updated_at": info.get("updated_at"),
        "rules_file": os.path.basename(rules.path),
        "rules_sha256": rules.digest,
        "benchmarks_file": bench.name if bench else None,
        "benchmarks_sha256": bench.digest if bench else None,
        "benchmarks_format": bench.kind if bench else None,
    }
    return [{"key": k, "value": rows[k]} for k in sorted(rows)]


def _coverage(book, rules, bench, runtime, events, tables, columns, vendor_rules, vendor_unmapped, primary) -> dict:
    import os

    ledger_rows = tables["ledger"]
    mappings: dict[str, dict] = {}
    unmapped = []
    for row in tables["model_map"]:
        k = mappings.setdefault(row["kind"], {"total": 0, "mapped": 0, "unmapped": 0, "by_rule": {}})
        k["total"] += 1
        k["mapped" if row["model"] else "unmapped"] += 1
        k["by_rule"][row["rule"]] = k["by_rule"].get(row["rule"], 0) + 1
        if row["model"] is None:
            unmapped.append(
                {
                    "kind": row["kind"],
                    "name": row["name"],
                    "vendor": row["vendor"],
                    "rule": row["rule"],
                    "reason": row["reason"],
                    "candidates": list(_candidates(row["candidates"])),
                }
            )
    for kind in ("benchmark", "usage", "runtime"):
        mappings.setdefault(kind, {"total": 0, "mapped": 0, "unmapped": 0, "by_rule": {}})

    by_vendor: dict[str, dict] = {}
    for st in columns:
        v = by_vendor.setdefault(
            st.vendor or UNKNOWN_VENDOR,
            {"columns": 0, "mapped_columns": 0, "cells": 0, "present": 0, "missing": 0, "ledger_models": 0, **{f"models_with_{s}": 0 for s in SCORE_COLUMNS}},
        )
        v["columns"] += 1
        v["mapped_columns"] += 1 if st.mapping.model else 0
        v["cells"] += st.total
        v["present"] += st.present
        v["missing"] += st.missing
    for model, st in sorted(primary.items()):
        v = by_vendor[st.vendor or UNKNOWN_VENDOR]
        v["ledger_models"] += 1
        for s in SCORE_COLUMNS:
            v[f"models_with_{s}"] += 1 if s in st.scores else 0

    info = book.describe()
    return {
        "schema_version": COVERAGE_SCHEMA_VERSION,
        "kind": "ledger-coverage",
        "ledger_schema_version": LEDGER_SCHEMA_VERSION,
        "inputs": {
            "pricing": {
                "file": os.path.basename(info.get("path") or ""),
                "hash": info.get("hash") or "",
                "source": info.get("source"),
                "updated_at": info.get("updated_at"),
                "models": len(book.models),
            },
            "rules": {"file": os.path.basename(rules.path), "sha256": rules.digest},
            "benchmarks": None
            if bench is None
            else {
                "file": bench.name,
                "sha256": bench.digest,
                "format": bench.kind,
                "columns": len(bench.columns),
                "rows": len(bench.benchmarks),
                "cells": len(bench.cells),
                "missing": bench.missing,
                "skipped_lines": bench.skipped_lines,
            },
            "cliproxy": runtime.summary(),
            "events": {
                "files": list(events.files),
                "lines": events.lines,
                "events": events.events,
                "duplicates": events.duplicates,
                "bad_lines": events.bad_lines,
                "unpriced_events": events.unpriced_events,
                "unpriced_tokens": events.unpriced_tokens,
            },
        },
        "ledger": {
            "models": len(ledger_rows),
            "priced": sum(r["priced"] for r in ledger_rows),
            "unpriced": sum(1 - r["priced"] for r in ledger_rows),
            "with_benchmarks": sum(1 for r in ledger_rows if r["bench_column"]),
            "with_usage": sum(1 for r in ledger_rows if r["usage_events"]),
            "with_runtime": sum(1 for r in ledger_rows if r["rt_requests"]),
        },
        "vendors": {"by_rule": dict(sorted(vendor_rules.items())), "unmapped": vendor_unmapped},
        "mappings": {k: {**v, "by_rule": dict(sorted(v["by_rule"].items()))} for k, v in sorted(mappings.items())},
        "benchmark_coverage_by_vendor": dict(sorted(by_vendor.items())),
        "unmapped": sorted(unmapped, key=lambda u: (u["kind"], u["name"])),
    }


def _candidates(text):
    if not text:
        return []
    import orjson

    return orjson.loads(text)
