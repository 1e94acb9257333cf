"""Benchmark tables: a markdown pipe table (rows = benchmarks, columns = models) or its
long form (one row per cell), normalized to one long-form row per (benchmark, model).

Normalization rules (docs/ledger.md, "Benchmark tables"):

- A cell is *missing* when, trimmed, it is one of ``MISSING_MARKERS`` (exact match).
- Any other cell is split once on `` / `` (space, slash, space): the part before is the
  primary value, the rest the secondary (``split_kind = slash``); otherwise the whole
  cell is the primary value (``split_kind = none``). Both parts are trimmed.
- Each part is parsed to a number when it reads ``[$]NUMBER[%] [qualifier]``: ``44.4%``
  is 44.4 percent (points, not a fraction), ``$2.00`` is 2.0 usd, ``2887`` is 2887, and
  a trailing qualifier (``(>200k)``, ``(py)``) is kept apart. Anything else keeps
  number and unit empty; the raw text is always kept.
- ``source_row_index`` is the 1-based line of the file, ``source_col_index`` the 1-based
  cell position in the row (1 = benchmark, 2 = notes, 3.. = models), as in the
  reference long form ``models_normalized.csv``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field

from scripts.shared_io import DataError, Diagnostics

MISSING_MARKERS = frozenset({"", "\u2014", "-", "N/A", "n/a", "na", "NA", "null", "NULL"})
SPLIT_TOKEN = " / "

# The columns of the reference long form, in its order, then what we add.
REFERENCE_COLUMNS = (
    "row_id",
    "benchmark",
    "notes_configuration",
    "model",
    "raw_value",
    "value_primary",
    "value_secondary",
    "split_kind",
    "is_missing",
    "source_row_index",
    "source_col_index",
    "source_col_name",
)
NUMBER_COLUMNS = (
    "primary_number",
    "primary_unit",
    "primary_qualifier",
    "secondary_number",
    "secondary_unit",
    "secondary_qualifier",
)
BENCH_COLUMNS = REFERENCE_COLUMNS + NUMBER_COLUMNS

_NUMBER = re.compile(
    r"^(?P<usd>\$)?\s*(?P<num>[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+-]?\.\d+)\s*(?P<pct>%)?"
    r"(?:\s+(?P<qual>\S.*))?$"
)
_SEPARATOR_CELL = re.compile(r"^:?-{3,}:?$")
_NOTES_HEADER = re.compile(r"note|config", re.IGNORECASE)


def parse_number(text: str) -> tuple[float | int | None, str | None, str | None]:
    """``(number, unit, qualifier)`` of one value; ``(None, None, None)`` when it is not
    a number. Units: ``percent``, ``usd``, ``number``."""
    m = _NUMBER.match(text.strip())
    if not m or (m.group("usd") and m.group("pct")):
        return None, None, None
    digits = m.group("num").replace(",", "")
    number: float | int = float(digits) if "." in digits else int(digits)
    unit = "usd" if m.group("usd") else "percent" if m.group("pct") else "number"
    return number, unit, m.group("qual")


def normalize_cell(raw: str) -> dict:
    """The normalized fields of one cell (everything but its position)."""
    text = raw.strip()
    out = {"raw_value": text, "value_primary": "", "value_secondary": "", "split_kind": "none", "is_missing": 0}
    for key in NUMBER_COLUMNS:
        out[key] = None
    if text in MISSING_MARKERS:
        out["is_missing"] = 1
        return out
    if SPLIT_TOKEN in text:
        primary, secondary = text.split(SPLIT_TOKEN, 1)
        out.update(value_primary=primary.strip(), value_secondary=secondary.strip(), split_kind="slash")
    else:
        out["value_primary"] = text
    for part in ("primary", "secondary"):
        value = out[f"value_{part}"]
        if value:
            number, unit, qualifier = parse_number(value)
            out[f"{part}_number"], out[f"{part}_unit"], out[f"{part}_qualifier"] = number, unit, qualifier
    return out


@dataclass
class BenchTable:
    """A benchmark table in long form: ``cells`` in row-major order (row_id order)."""

    name: str  # the file's base name (what artifacts record, never the full path)
    digest: str
    kind: str  # "pipe" or "long"
    columns: list[str] = field(default_factory=list)  # model columns, in table order
    benchmarks: list[tuple[str, str]] = field(default_factory=list)  # (benchmark, notes) rows
    cells: list[dict] = field(default_factory=list)
    skipped_lines: int = 0

    @property
    def missing(self) -> int:
        return sum(c["is_missing"] for c in self.cells)


def split_pipe_row(line: str) -> list[str]:
    """Cells of one markdown table row: split on ``|`` (not ``\\|``), outer pipes dropped."""
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    cells = re.split(r"(?<!\\)\|", text)
    return [c.strip().replace("\\|", "|") for c in cells]


def read_table(path: str, data: bytes, diag: Diagnostics) -> BenchTable:
    """Parse a benchmark table from ``data`` (a pipe table, or a long-form CSV)."""
    import os

    name = os.path.basename(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", where=path) from None
    digest = hashlib.sha256(data).hexdigest()
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if first.startswith("row_id,") or ",raw_value" in first:
        return _read_long(path, name, digest, text, diag)
    if any(ln.lstrip().startswith("|") for ln in text.splitlines()):
        return _read_pipe(path, name, digest, text, diag)
    raise DataError("not a benchmark table (expected a markdown pipe table or a long-form CSV with row_id,...,raw_value)", where=f"{path}:1")


def _read_pipe(path: str, name: str, digest: str, text: str, diag: Diagnostics) -> BenchTable:
    table = BenchTable(name=name, digest=digest, kind="pipe")
    header: list[str] | None = None
    first_model = 2
    seen: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.lstrip().startswith("|"):
            continue  # captions, blank lines, prose around the table
        cells = split_pipe_row(line)
        if header is None:
            header = cells
            first_model = 2 if len(header) > 2 and _NOTES_HEADER.search(header[1]) else 1
            table.columns = header[first_model:]
            if not table.columns:
                raise DataError("the header row names no model columns", where=f"{path}:{lineno}")
            for i, col in enumerate(table.columns):
                if not col:
                    raise DataError(f"model column {first_model + i + 1} has an empty name", where=f"{path}:{lineno}")
                if col in seen:
                    raise DataError(f"model column {col!r} appears twice (columns {seen[col]} and {first_model + i + 1})", where=f"{path}:{lineno}")
                seen[col] = first_model + i + 1
            continue
        if all(_SEPARATOR_CELL.match(c) for c in cells):
            continue  # the | --- | line under the header
        if len(cells) != len(header):
            table.skipped_lines += 1
            diag.bad_line(path, lineno, f"row has {len(cells)} cells, the header has {len(header)}")
            continue
        benchmark = cells[0]
        notes = cells[1] if first_model == 2 else ""
        table.benchmarks.append((benchmark, notes))
        for i, col in enumerate(table.columns):
            cell = normalize_cell(cells[first_model + i])
            cell.update(
                row_id=len(table.cells) + 1,
                benchmark=benchmark,
                notes_configuration=notes,
                model=col,
                source_row_index=lineno,
                source_col_index=first_model + i + 1,
                source_col_name=col,
            )
            table.cells.append(cell)
    if header is None:
        raise DataError("no table rows (lines starting with |)", where=path)
    return table


def _read_long(path: str, name: str, digest: str, text: str, diag: Diagnostics) -> BenchTable:
    table = BenchTable(name=name, digest=digest, kind="long")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    need = {"benchmark", "model", "raw_value"}
    missing = need - set(reader.fieldnames or ())
    if missing:
        raise DataError(f"long-form table lacks column(s) {', '.join(sorted(missing))}", where=f"{path}:1")
    columns: dict[str, None] = {}
    rows: dict[tuple[str, str], None] = {}
    for row in reader:
        lineno = reader.line_num
        model = (row.get("model") or "").strip()
        benchmark = (row.get("benchmark") or "").strip()
        if not model or not benchmark or row.get("raw_value") is None:
            table.skipped_lines += 1
            diag.bad_line(path, lineno, "row lacks benchmark, model or raw_value")
            continue
        notes = (row.get("notes_configuration") or "").strip()
        cell = normalize_cell(row["raw_value"])
        cell.update(
            row_id=len(table.cells) + 1,
            benchmark=benchmark,
            notes_configuration=notes,
            model=model,
            source_row_index=_int_or(row.get("source_row_index"), lineno),
            source_col_index=_int_or(row.get("source_col_index"), None),
            source_col_name=(row.get("source_col_name") or model).strip(),
        )
        table.cells.append(cell)
        columns.setdefault(model)
        rows.setdefault((benchmark, notes))
    table.columns = list(columns)
    table.benchmarks = list(rows)
    return table


def _int_or(value, default):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default
