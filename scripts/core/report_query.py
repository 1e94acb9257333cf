"""Answer a report question from a bundle's cached artifacts, never from the logs.

An unfiltered question in the bundle's own time zone is the cached priced report
(``reports/<kind>.json``) as it is. A question the cached report cannot answer exactly
(other dates, providers, models, projects or another time zone: distinct session counts
and subscription shares do not survive filtering rows) is re-aggregated in-process from
the bundle's slot rollups (``rollups/*.json``, about a tenth of the events) and priced
with the pricing book: still no log parsing, and only the one report kind asked for.
"""
from __future__ import annotations

import glob
import os

from scripts.shared_io import DataError, read_doc


def read_rollup_rows(paths: list[str]) -> list[list]:
    """The rows of rollup artifacts (``rollups/<source>.json``), concatenated.

    Aggregation sums whatever it is given, so rows are not re-merged; files are read in
    path order so the result does not depend on directory listing order."""
    rows: list[list] = []
    for path in sorted(paths):
        doc = read_doc(path)
        if not isinstance(doc, dict) or doc.get("schema_version") != 1 or not isinstance(doc.get("rows"), list):
            raise DataError("not a version-1 rollup document", where=path)
        rows += doc["rows"]
    return rows


def cached_report(artifacts: str, kind: str) -> dict:
    path = os.path.join(artifacts, "reports", f"{kind}.json")
    if not os.path.exists(path):
        raise DataError("no cached report; run `make all` (or `make demo`) first", where=path)
    doc = read_doc(path)
    if not isinstance(doc, dict) or doc.get("schema_version") != 1 or doc.get("kind") != kind:
        raise DataError(f"not a version-1 {kind} report", where=path)
    return doc


def fresh_report(artifacts: str, kind: str, zone_name: str, filters, pricing_path: str) -> dict:
    """One report kind re-aggregated from the bundle's rollups and priced."""
    from scripts.core.aggregation import aggregate_rollups
    from scripts.core.costing import price_aggregates
    from scripts.core.pricing_book import load_book

    paths = glob.glob(os.path.join(artifacts, "rollups", "*.json"))
    if not paths:
        raise DataError("no rollups; run `make all` (or `make demo`) first", where=os.path.join(artifacts, "rollups"))
    agg = aggregate_rollups(read_rollup_rows(paths), zone_name, filters, (kind,))
    return price_aggregates(agg, load_book(pricing_path))[kind]


def answer(artifacts: str, kind: str, *, zone_name: str | None, filters, pricing_path: str | None) -> tuple[dict, str]:
    """``(report, how)``: ``how`` is ``cached`` or ``rollups``."""
    cached_path = os.path.join(artifacts, "reports", f"{kind}.json")
    cached = cached_report(artifacts, kind) if os.path.exists(cached_path) else None
    same_zone = zone_name is None or (cached is not None and cached.get("timezone") == zone_name)
    if cached is not None and same_zone and not filters.active:
        return cached, "cached"
    if cached is None and not os.path.isdir(os.path.join(artifacts, "rollups")):
        cached_report(artifacts, kind)  # raises the "run make all first" error
    zone = zone_name or (cached or {}).get("timezone") or "UTC"
    book = pricing_path or ((cached or {}).get("pricing") or {}).get("path") or "pricing.json"
    return fresh_report(artifacts, kind, zone, filters, book), "rollups"
