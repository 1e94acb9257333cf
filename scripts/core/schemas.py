"""JSON Schema validation of artifacts (jsonschema is imported only here, only when used)."""
from __future__ import annotations

import fnmatch
import os
from functools import lru_cache

import orjson

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "schemas")

# Which schema each bundle path follows (first match wins); paths are relative to the bundle.
BUNDLE_SCHEMAS = [
    ("events/*/*.jsonl", "event.v1.schema.json"),  # events/<source>/<YYYY-MM-DD>.jsonl
    ("events/*.jsonl", "event.v1.schema.json"),  # the older single file per source
    ("rollups/*.json", "rollup.v1.schema.json"),
    ("stamps/*.fp", "stamp.v1.schema.json"),
    ("runs/*.json", "run-summary.v1.schema.json"),
    ("aggregates/aggregates.json", "aggregates.v1.schema.json"),
    ("reports/suggestions.json", "suggestions.v1.schema.json"),
    ("reports/*.json", "report.v1.schema.json"),
    ("ui-snapshot.json", "ui-snapshot.v1.schema.json"),
    ("ledger/coverage.json", "ledger-coverage.v1.schema.json"),
    ("raw/cursor.jsonl", "cursor-record.v1.schema.json"),
    ("pricing/lint.json", "pricing-lint.v1.schema.json"),
    ("pricing/audit.json", "pricing-audit.v1.schema.json"),
    ("pricing/check.json", "pricing-check.v1.schema.json"),
    ("pricing/coverage.json", "pricing-coverage.v1.schema.json"),
    ("pricing/reconcile-latest.json", "pricing-reconcile-latest.v1.schema.json"),
    ("bench/growth/*.json", "bench-growth.v1.schema.json"),
    ("bench/*.json", "bench.v1.schema.json"),
    ("faults/*.json", "faults-figures.v1.schema.json"),
]


@lru_cache(maxsize=None)
def validator(schema_name: str):
    import jsonschema

    with open(os.path.join(SCHEMA_DIR, schema_name), "rb") as fh:
        schema = orjson.loads(fh.read())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_exists(schema_name: str) -> bool:
    return os.path.exists(os.path.join(SCHEMA_DIR, schema_name))


def errors(doc, schema_name: str, limit: int = 5) -> list[str]:
    """Up to ``limit`` violations as ``path: message`` strings (empty: valid)."""
    out = []
    for err in sorted(validator(schema_name).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        out.append(f"{where}: {err.message[:200]}")
        if len(out) >= limit:
            break
    return out


def schema_for(relpath: str) -> str | None:
    relpath = relpath.replace(os.sep, "/")
    for pattern, name in BUNDLE_SCHEMAS:
        if fnmatch.fnmatch(relpath, pattern):
            return name
    return None
