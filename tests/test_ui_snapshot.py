"""ui-snapshot.json: schema in both modes, figures against the reports, top-5, unpriced,
suggestions, links, atomic write, determinism, and the command's errors."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import pytest
from click.testing import CliRunner

from conftest import SCHEMAS, load_json, stage
from ui_bundle import build_bundle

from scripts import snapshot as snap_mod


@pytest.fixture(scope="module")
def bundle(sample_logs, tmp_path_factory):
    return build_bundle(sample_logs(2000), tmp_path_factory.mktemp("ui-snap"), month="2026-08", mode="compact")


@pytest.fixture(scope="module")
def validator():
    from jsonschema import Draft202012Validator

    schema = load_json(SCHEMAS / "ui-snapshot.v1.schema.json")
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors_of(validator, doc) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_snapshot_validates_in_both_modes(bundle, validator, tmp_path):
    compact = load_json(bundle / "ui-snapshot.json")
    assert compact["mode"] == "compact"
    assert errors_of(validator, compact) == []
    assert "days" not in compact and "active_block" not in compact

    out = tmp_path / "extended.json"
    stage("snapshot", "--artifacts", bundle, "--month", "2026-08", "--mode", "extended", "--timezone", "UTC", "-o", out)
    extended = load_json(out)
    assert extended["mode"] == "extended"
    assert errors_of(validator, extended) == []
    assert [d["date"] for d in extended["days"]] == [f"2026-08-{d:02d}" for d in range(1, 32)]
    assert "active_block" in extended  # null: no block of 2026 is active today

    # the schema rejects what it should
    bad = json.loads(json.dumps(compact))
    bad["top_models"] = bad["top_models"] * 2
    assert any("top_models" in e for e in errors_of(validator, bad)), "compact allows at most 5 rows"
    bad = dict(extended)
    del bad["days"]
    assert errors_of(validator, bad), "extended requires days"
    bad = dict(compact, schema_version=2)
    assert errors_of(validator, bad)


def test_snapshot_figures_match_the_reports(bundle):
    doc = load_json(bundle / "ui-snapshot.json")
    monthly = load_json(bundle / "reports" / "monthly.json")
    daily = load_json(bundle / "reports" / "daily.json")
    month = next(p for p in monthly["periods"] if p["period"] == "2026-08")
    assert doc["totals"] == {
        "cost_usd": month["total_cost_usd"],
        "tokens": month["total_tokens"],
        "blended_usd_per_mtok": month["blended_usd_per_mtok"],
        "session_count": month["sessions"],
        "skipped_unpriced_count": 0,
    }
    # two providers, five models: compact lists them all, most expensive first
    assert {p["name"] for p in doc["top_providers"]} == {"claude", "codex"}
    assert sum(p["tokens"] for p in doc["top_providers"]) == month["total_tokens"]
    assert round(sum(p["total_cost_usd"] for p in doc["top_providers"]), 6) == month["total_cost_usd"]
    costs = [m["total_cost_usd"] for m in doc["top_models"]]
    assert costs == sorted(costs, reverse=True) and len(costs) == 5
    rows = {(r["provider"], r["model"]): r for r in monthly["rows"] if r["period"] == "2026-08"}
    for m in doc["top_models"]:
        r = rows[(m["provider"], m["name"])]
        assert (m["tokens"], m["total_cost_usd"], m["session_count"]) == (r["total_tokens"], r["total_cost_usd"], r["sessions"])
    # today is the real today, with no usage in these 2026-08/09 logs (unless today is in them)
    today = doc["today"]["date"]
    day = next((p for p in daily["periods"] if p["period"] == today), None)
    assert doc["today"]["tokens"] == (day["total_tokens"] if day else 0)
    # latest block per provider, matching the blocks report
    blocks = load_json(bundle / "reports" / "blocks.json")["periods"]
    for b in doc["latest_blocks"]:
        assert b["start"] == max(x["start"] for x in blocks if x["provider"] == b["provider"])


def _report(rows: list[tuple[str, str, float | None, int]], month="2026-08") -> dict:
    """A minimal priced monthly/daily report from (provider, model, cost, tokens) rows."""
    out = {"rows": [], "periods": [], "period_providers": []}
    by_provider: dict[str, dict] = {}
    for i, (provider, model, cost, tokens) in enumerate(rows):
        out["rows"].append({"period": month, "provider": provider, "model": model, "total_cost_usd": cost, "total_tokens": tokens,
                            "blended_usd_per_mtok": None if cost is None else round(cost / tokens * 1e6, 6), "sessions": i + 1, "events": 10 * (i + 1),
                            "priced_as": None if cost is None else model})
        p = by_provider.setdefault(provider, {"period": month, "provider": provider, "total_cost_usd": 0.0, "total_tokens": 0, "sessions": 0})
        p["total_cost_usd"] += cost or 0
        p["total_tokens"] += tokens
        p["sessions"] += 1
    out["period_providers"] = list(by_provider.values())
    out["periods"] = [{"period": month, "total_cost_usd": sum(c or 0 for _, _, c, _ in rows), "total_tokens": sum(t for *_, t in rows),
                       "blended_usd_per_mtok": 1.0, "sessions": len(rows)}]
    return out


def _transform(monthly, mode="compact", blocks=None, now="2026-08-20T12:00:00+00:00", suggestions=None):
    now_dt = dt.datetime.fromisoformat(now)
    return snap_mod.transform(monthly, {"periods": []}, blocks, suggestions, month="2026-08", today=now_dt.strftime("%Y-%m-%d"), mode=mode,
                              generated_at="2026-08-20T12:00:00.000Z", now_ms=int(now_dt.timestamp() * 1000), links={}, timezone="UTC")


def test_compact_keeps_the_top_five_extended_keeps_all():
    rows = [(f"p{i % 7}", f"model-{i}", float(i), 1000 * (i + 1)) for i in range(1, 9)]
    monthly = _report(rows)
    compact = _transform(monthly)
    assert [m["name"] for m in compact["top_models"]] == ["model-8", "model-7", "model-6", "model-5", "model-4"]
    assert len(compact["top_providers"]) == 5
    extended = _transform(monthly, "extended")
    assert len(extended["top_models"]) == 8 and len(extended["top_providers"]) == 7
    assert [d["date"] for d in extended["days"]] == [f"2026-08-{d:02d}" for d in range(1, 21)], "days that have begun"


def test_unpriced_is_null_and_counted_never_zero(validator):
    monthly = _report([("claude", "claude-sonnet-4-5", 3.5, 1_000_000), ("cliproxy", "mystery-model", None, 500_000)])
    doc = _transform(monthly)
    mystery = next(m for m in doc["top_models"] if m["name"] == "mystery-model")
    assert mystery["total_cost_usd"] is None and mystery["blended_usd_per_mtok"] is None
    assert doc["totals"]["skipped_unpriced_count"] == 20  # the unpriced row's calls
    assert errors_of(validator, doc) == []


def test_active_block_is_decided_at_write_time_in_extended_mode(validator):
    blocks = {"periods": [
        {"provider": "claude", "period": "2026-08-20T10:00:00.000Z", "start": "2026-08-20T10:00:00.000Z", "end": "2026-08-20T15:00:00.000Z",
         "first_timestamp": "2026-08-20T10:05:00.000Z", "last_timestamp": "2026-08-20T11:05:00.000Z", "total_tokens": 3_000_000,
         "cost_usd": 2.0, "total_cost_usd": 2.0},
        {"provider": "claude", "period": "2026-08-19T10:00:00.000Z", "start": "2026-08-19T10:00:00.000Z", "end": "2026-08-19T15:00:00.000Z",
         "first_timestamp": "2026-08-19T10:05:00.000Z", "last_timestamp": "2026-08-19T11:05:00.000Z", "total_tokens": 1, "cost_usd": 1.0, "total_cost_usd": 1.0},
    ]}
    doc = _transform(_report([("claude", "claude-sonnet-4-5", 3.0, 1000)]), "extended", blocks)
    assert [b["start"] for b in doc["latest_blocks"]] == ["2026-08-20T10:00:00.000Z"]
    active = doc["active_block"]
    assert active["provider"] == "claude" and active["burn_rate_usd_per_hour"] == 2.0 and active["remaining_minutes"] == 180.0
    assert errors_of(validator, doc) == []
    later = _transform(_report([("claude", "claude-sonnet-4-5", 3.0, 1000)]), "extended", blocks, now="2026-08-20T16:00:00+00:00")
    assert later["active_block"] is None


def test_suggestions_and_links_are_passed_on(bundle, validator, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    suggestion = {"id": "cache-opus", "severity": "info", "title": "Opus reads little from cache", "detail": "…",
                  "evidence": {"cache_read_share": 0.4}, "threshold": {"cache_read_share": 0.6}}
    (copy / "reports" / "suggestions.json").write_text(json.dumps(
        {"schema_version": 1, "kind": "suggestions", "month": "2026-08", "suggestions": [suggestion]}))
    (copy / "pricing").mkdir()
    (copy / "pricing" / "reconcile-latest.json").write_text("{}")
    stage("snapshot", "--artifacts", copy, "--month", "2026-08", "--timezone", "UTC")
    doc = load_json(copy / "ui-snapshot.json")
    assert doc["suggestions"] == [suggestion]
    assert doc["run_summary_path"] == "runs/latest.json"
    assert doc["reconcile_summary_path"] == "pricing/reconcile-latest.json"
    assert (copy / doc["run_summary_path"]).exists()
    assert errors_of(validator, doc) == []
    # another month's suggestions are not this month's
    stage("snapshot", "--artifacts", copy, "--month", "2026-09", "--timezone", "UTC")
    assert load_json(copy / "ui-snapshot.json")["suggestions"] == []
    # no file: no suggestions, and no reconcile link when the summary is absent
    (copy / "reports" / "suggestions.json").unlink()
    shutil.rmtree(copy / "pricing")
    stage("snapshot", "--artifacts", copy, "--month", "2026-08", "--timezone", "UTC")
    doc = load_json(copy / "ui-snapshot.json")
    assert doc["suggestions"] == [] and "reconcile_summary_path" not in doc


def test_same_reports_same_bytes_and_no_temp_files(bundle):
    now = dt.datetime(2026, 9, 1, 8, 30, tzinfo=dt.timezone.utc)
    from scripts.shared_io import dumps_doc

    a = dumps_doc(snap_mod.build(str(bundle), month="2026-08", mode="extended", timezone="UTC", now=now))
    b = dumps_doc(snap_mod.build(str(bundle), month="2026-08", mode="extended", timezone="UTC", now=now))
    assert a == b
    assert b'"generated_at": "2026-09-01T08:30:00.000Z"' in a
    assert not [n for n in os.listdir(bundle) if n.endswith(".tmp")]


def test_missing_reports_is_one_line_exit_1(tmp_path):
    proc = stage("snapshot", "--artifacts", tmp_path, "--timezone", "UTC", check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "monthly.json: missing; run `make all` first" in err and "Traceback" not in err
    assert not (tmp_path / "ui-snapshot.json").exists()
    proc = stage("snapshot", "--mode", "huge", check=False)
    assert proc.returncode == 2


def test_help_and_cli_runner(bundle, tmp_path):
    runner = CliRunner()
    result = runner.invoke(snap_mod.cli, ["--help"])
    assert result.exit_code == 0 and "Example:" in result.output and "--statusline" in result.output
    out = tmp_path / "s.json"
    result = runner.invoke(snap_mod.cli, ["--artifacts", str(bundle), "--month", "2026-08", "--timezone", "UTC", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert load_json(out)["month"] == "2026-08"
    # the console entry stands for the click command too, and --statusline works through it
    result = runner.invoke(snap_mod.main, ["--statusline", "--artifacts", str(bundle)])
    assert result.exit_code == 0 and result.output.startswith("today ") and " · 2026-08 $" in result.output
    proc = stage("dashboard", "--help")
    assert b"Example:" in proc.stdout
