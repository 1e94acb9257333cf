"""The contract every command keeps (csvkit-style: the same tests over every tool).

- every console command has --help with an Example block;
- the pipe stages (normalize, aggregate, price): empty input gives empty output, `-` and
  a path give the same output, a bad line's number appears in the error, output
  validates against its schema.
"""
from __future__ import annotations

import json
import tomllib

import pytest

from conftest import ROOT, stage
from scripts.core.schemas import errors, schema_exists

with open(ROOT / "pyproject.toml", "rb") as fh:
    COMMANDS = tomllib.load(fh)["project"]["scripts"]

CLAUDE_LINE = json.dumps(
    {
        "type": "assistant",
        "sessionId": "s-1",
        "cwd": "/home/dev/projects/alpha",
        "version": "2.0.14",
        "requestId": "req_1",
        "timestamp": "2026-08-06T17:49:45.767Z",
        "message": {
            "id": "msg_1",
            "model": "claude-sonnet-4-5-20250929",
            "usage": {"input_tokens": 2, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000, "output_tokens": 50},
        },
    }
)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_with_an_example(command):
    module = COMMANDS[command].split(":")[0]
    out = stage(module.split(".", 1)[1], "--help").stdout.decode()
    assert "Usage:" in out
    assert "Example" in out, f"{command} --help has no Example block"


def _normalize(tmp_path, text):
    f = tmp_path / "in.jsonl"
    f.write_text(text)
    return stage("normalize", "--source", "claude", str(f)).stdout


def test_normalize_empty_input_gives_empty_output(tmp_path):
    assert stage("normalize", "--source", "claude", "-", input=b"").stdout == b""
    assert _normalize(tmp_path, "") == b""


def test_normalize_dash_and_path_agree(tmp_path):
    f = tmp_path / "s.jsonl"
    f.write_text(CLAUDE_LINE + "\n")
    from_path = stage("normalize", "--source", "claude", str(f)).stdout
    from_stdin = stage("normalize", "--source", "claude", "-", input=f.read_bytes()).stdout
    ev_path = json.loads(from_path)
    ev_stdin = json.loads(from_stdin)
    # the source file differs by name only
    ev_path.pop("source_file"), ev_stdin.pop("source_file")
    assert ev_path == ev_stdin


def test_normalize_bad_line_names_file_and_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(CLAUDE_LINE + "\n" + '{"type":"assistant","message":{"usage":{' + "\n")
    proc = stage("normalize", "--source", "claude", str(f))
    assert f"{f}:2: " in proc.stderr.decode()
    assert len(proc.stdout.splitlines()) == 1  # the good line still counts
    strict = stage("normalize", "--source", "claude", "--strict", str(f), check=False)
    assert strict.returncode == 1
    assert f"{f}:2: " in strict.stderr.decode()
    assert "Traceback" not in strict.stderr.decode()


def test_normalize_output_validates(tmp_path):
    ev = json.loads(_normalize(tmp_path, CLAUDE_LINE + "\n"))
    assert errors(ev, "event.v1.schema.json") == []


def _events_file(tmp_path):
    f = tmp_path / "events.jsonl"
    f.write_bytes(stage("normalize", "--source", "claude", "-", input=(CLAUDE_LINE + "\n").encode()).stdout)
    return f


def test_aggregate_empty_input_gives_empty_tables():
    doc = json.loads(stage("aggregate", "-", "--timezone", "UTC", input=b"").stdout)
    assert all(t["rows"] == [] for t in doc["reports"].values())
    assert doc["reports"]["daily"]["totals"]["total_tokens"] == 0


def test_aggregate_dash_and_path_agree(tmp_path):
    f = _events_file(tmp_path)
    a = stage("aggregate", str(f), "--timezone", "UTC").stdout
    b = stage("aggregate", "-", "--timezone", "UTC", input=f.read_bytes()).stdout
    assert a == b


def test_aggregate_bad_line_names_the_line(tmp_path):
    f = _events_file(tmp_path)
    f.write_bytes(f.read_bytes() + b"not json\n")
    proc = stage("aggregate", str(f), "--timezone", "UTC", "--strict", check=False)
    assert proc.returncode == 1
    assert f"{f}:2: " in proc.stderr.decode()


@pytest.mark.skipif(not schema_exists("aggregates.v1.schema.json"), reason="aggregates schema not in this checkout")
def test_aggregate_output_validates(tmp_path):
    doc = json.loads(stage("aggregate", str(_events_file(tmp_path)), "--timezone", "UTC").stdout)
    assert errors(doc, "aggregates.v1.schema.json") == []


def test_price_empty_and_dash_vs_path(tmp_path):
    f = tmp_path / "agg.json"
    f.write_bytes(stage("aggregate", str(_events_file(tmp_path)), "--timezone", "UTC").stdout)
    book = str(ROOT / "pricing.json")
    a = stage("price", "--pricing", book, str(f)).stdout
    b = stage("price", "--pricing", book, "-", input=f.read_bytes()).stdout
    assert a == b
    empty = json.loads(stage("price", "--pricing", book, "-", input=b"").stdout)
    assert empty["reports"] == {}


def test_price_bad_input_is_one_line(tmp_path):
    proc = stage("price", "--pricing", str(ROOT / "pricing.json"), "-", input=b"{not json", check=False)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not schema_exists("report.v1.schema.json"), reason="report schema not in this checkout")
def test_price_output_validates(tmp_path):
    f = tmp_path / "agg.json"
    f.write_bytes(stage("aggregate", str(_events_file(tmp_path)), "--timezone", "UTC").stdout)
    doc = json.loads(stage("price", "--pricing", str(ROOT / "pricing.json"), "--report", "daily", str(f)).stdout)
    assert errors(doc, "report.v1.schema.json") == []


def test_usage_error_exits_2():
    proc = stage("normalize", "--no-such-option", check=False)
    assert proc.returncode == 2
