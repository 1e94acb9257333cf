"""Benchmark tables: normalization rules, and the long form of ../shared/data/models.csv
equal to ../shared/data/models_normalized.csv."""
from __future__ import annotations

import csv

import pytest

from conftest import shared_path
from scripts.core.ledger_bench import MISSING_MARKERS, REFERENCE_COLUMNS, normalize_cell, parse_number, read_table, split_pipe_row
from scripts.shared_io import DataError, Diagnostics

MODELS_CSV = shared_path("data", "models.csv")
MODELS_LONG = shared_path("data", "models_normalized.csv")


def table(text: str, diag=None, name="t.md"):
    return read_table(name, text.encode(), diag or Diagnostics())


@pytest.mark.skipif(not MODELS_CSV.exists(), reason="../shared/data/models.csv not present")
def test_long_form_of_models_csv_equals_the_reference():
    t = read_table(str(MODELS_CSV), MODELS_CSV.read_bytes(), Diagnostics())
    with open(MODELS_LONG, encoding="utf-8", newline="") as fh:
        ref = list(csv.DictReader(fh))
    assert len(t.cells) == len(ref) == 3304
    assert t.missing == sum(r["is_missing"] == "1" for r in ref) == 2725
    assert len(t.columns) == 56 and len(t.benchmarks) == 59
    for mine, theirs in zip(t.cells, ref):
        assert {k: str(mine[k]) for k in REFERENCE_COLUMNS} == theirs


@pytest.mark.skipif(not MODELS_LONG.exists(), reason="../shared/data/models_normalized.csv not present")
def test_long_form_input_reads_back_the_same_cells():
    pipe = read_table(str(MODELS_CSV), MODELS_CSV.read_bytes(), Diagnostics())
    long = read_table(str(MODELS_LONG), MODELS_LONG.read_bytes(), Diagnostics())
    assert long.kind == "long" and pipe.kind == "pipe"
    assert long.columns == pipe.columns and long.benchmarks == pipe.benchmarks
    assert long.cells == pipe.cells


@pytest.mark.parametrize("marker", sorted(MISSING_MARKERS))
def test_missing_markers(marker):
    cell = normalize_cell(f"  {marker} ")
    assert cell["is_missing"] == 1 and cell["value_primary"] == "" and cell["primary_number"] is None
    assert cell["raw_value"] == marker


@pytest.mark.parametrize("text", ["Na", "none", "--", "0", "0%", "—x"])
def test_only_the_listed_markers_are_missing(text):
    assert normalize_cell(text)["is_missing"] == 0


def test_split_once_on_space_slash_space():
    c = normalize_cell("$2.00 / $4.00 (>200k)")
    assert (c["value_primary"], c["value_secondary"], c["split_kind"]) == ("$2.00", "$4.00 (>200k)", "slash")
    assert (c["primary_number"], c["primary_unit"], c["secondary_number"], c["secondary_qualifier"]) == (2.0, "usd", 4.0, "(>200k)")
    c = normalize_cell("1 / 2 / 3")
    assert (c["value_primary"], c["value_secondary"]) == ("1", "2 / 3")
    assert normalize_cell("a/b")["split_kind"] == "none"  # no spaces, no split


@pytest.mark.parametrize(
    "text,expected",
    [
        ("44.4%", (44.4, "percent", None)),
        ("100%", (100, "percent", None)),
        ("$0.50", (0.5, "usd", None)),
        ("$5478", (5478, "usd", None)),
        ("2887", (2887, "number", None)),
        ("0.115", (0.115, "number", None)),
        ("1,234.5", (1234.5, "number", None)),
        ("86.3% (py)", (86.3, "percent", "(py)")),
        ("$4.00 (>200k)", (4.0, "usd", "(>200k)")),
        ("-3.5", (-3.5, "number", None)),
        ("Elo 1200", (None, None, None)),
        ("$12%", (None, None, None)),
        ("n/a yet", (None, None, None)),
    ],
)
def test_parse_number(text, expected):
    assert parse_number(text) == expected


def test_pipe_table_with_separator_prose_and_escaped_pipe():
    t = table(
        "Scores from the vendor pages.\n\n"
        "| Benchmark | Notes | Model A | Model B |\n"
        "| --- | :---: | --- | ---: |\n"
        "| SWE-bench Verified | a \\| b | 70.0% | N/A |\n"
        "\n"
        "| Terminal-Bench 2.0 | | 40% / 42% | null |\n"
        "Source: somewhere\n"
    )
    assert t.columns == ["Model A", "Model B"]
    assert t.benchmarks == [("SWE-bench Verified", "a | b"), ("Terminal-Bench 2.0", "")]
    assert [(c["row_id"], c["source_row_index"], c["source_col_index"], c["is_missing"]) for c in t.cells] == [
        (1, 5, 3, 0),
        (2, 5, 4, 1),
        (3, 7, 3, 0),
        (4, 7, 4, 1),
    ]


def test_table_without_notes_column():
    t = table("| Benchmark | A |\n| X | 1 |\n")
    assert t.columns == ["A"] and t.cells[0]["notes_configuration"] == "" and t.cells[0]["source_col_index"] == 2


def test_ragged_row_is_counted_and_skipped_or_fatal_when_strict(capsys):
    text = "| Benchmark | Notes | A | B |\n| X | n | 1 | 2 |\n| Y | n | 3 |\n| Z | n | 4 | 5 |\n"
    diag = Diagnostics()
    t = table(text, diag)
    assert [c["benchmark"] for c in t.cells] == ["X", "X", "Z", "Z"]
    assert t.skipped_lines == 1 and diag.bad_lines == 1
    assert "t.md:3: row has 3 cells, the header has 4" in capsys.readouterr().err
    with pytest.raises(DataError, match=r"t.md:3: row has 3 cells"):
        table(text, Diagnostics(strict=True))


def test_duplicate_or_empty_model_columns_are_errors():
    with pytest.raises(DataError, match="appears twice"):
        table("| Benchmark | A | A |\n| X | 1 | 2 |\n")
    with pytest.raises(DataError, match="empty name"):
        table("| Benchmark | A |  |\n| X | 1 | 2 |\n")


def test_not_a_table():
    with pytest.raises(DataError, match=r"t.md:1: not a benchmark table"):
        table("just some text\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_table("t.md", b"| a |\xff\n", Diagnostics())


def test_long_form_requires_its_columns():
    with pytest.raises(DataError, match="lacks column"):
        read_table("l.csv", b"row_id,benchmark,raw_value\n1,X,2\n", Diagnostics())


def test_split_pipe_row():
    assert split_pipe_row("| a | b \\| c |  |") == ["a", "b | c", ""]
