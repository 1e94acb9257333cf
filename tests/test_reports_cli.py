"""The report, suggest and merge commands; rendering; schemas; pruning; determinism."""
from __future__ import annotations

import json
import os
import time

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from conftest import ROOT, SCHEMAS, load_json, make, sample_env, stage
from scripts.core.pruning import Pruner
from scripts.core.render import render
from scripts.core.suggestions import RULES, month_suggestions, suggestions_document

KINDS = ("daily", "weekly", "monthly", "sessions", "projects", "blocks")


@pytest.fixture(scope="module")
def bundle(sample_logs, tmp_path_factory):
    logs = sample_logs(2000, 42)
    art = tmp_path_factory.mktemp("cli") / "art"
    make("all", env=sample_env(logs, art, TIMEZONE="UTC"))
    return logs, art


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.v1.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_artifacts_match_their_schemas(bundle):
    _logs, art = bundle
    assert not list(_validator("aggregates").iter_errors(load_json(art / "aggregates" / "aggregates.json")))
    report = _validator("report")
    for kind in KINDS:
        errors = list(report.iter_errors(load_json(art / "reports" / f"{kind}.json")))
        assert not errors, (kind, errors[0].message)
    assert not list(_validator("suggestions").iter_errors(load_json(art / "reports" / "suggestions.json")))
    # the schemas do reject what breaks the contract
    broken = load_json(art / "reports" / "daily.json")
    del broken["rows"][0]["cost_usd"]
    assert list(report.iter_errors(broken))


def test_reports_are_deterministic(bundle, tmp_path):
    logs, art = bundle
    again = tmp_path / "again"
    make("all", env=sample_env(logs, again, TIMEZONE="UTC"))
    for name in ["aggregates/aggregates.json", "reports/suggestions.json"] + [f"reports/{k}.{e}" for k in KINDS for e in ("json", "md")]:
        assert (art / name).read_bytes() == (again / name).read_bytes(), name


def test_report_table_is_aligned_with_a_totals_row(bundle):
    _logs, art = bundle
    out = stage("report", "monthly", "--artifacts", art).stdout.decode().splitlines()
    header, rule, *body, rule2, total = out
    assert rule == rule2 and set(rule) <= {"-", " "}
    assert total.startswith("Total")
    widths = [len(part) for part in rule.split("  ")]
    # every numeric column ends at the same place on every line
    ends = [sum(widths[: i + 1]) + 2 * i for i in range(len(widths))]
    for line in [header] + body + [total]:
        for end, col in zip(ends[3:], range(3, len(widths))):
            assert line[end - 1] != " ", (line, col)
    report = load_json(art / "reports" / "monthly.json")
    assert f"{report['totals']['total_tokens']:,}" in total
    assert len(body) == len(report["rows"])


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_report_in_every_format(bundle, kind, fmt):
    _logs, art = bundle
    proc = stage("report", kind, "--format", fmt, "--now", "2026-08-01T00:00:00Z", "--artifacts", art)
    out = proc.stdout.decode()
    report = load_json(art / "reports" / f"{kind}.json")
    if fmt == "json":
        assert json.loads(out)["totals"] == report["totals"]
    elif fmt == "csv":
        lines = out.splitlines()
        assert len(lines) == len(report["rows"]) + 2 and lines[-1].startswith("total,")
    elif fmt == "markdown":
        assert out.startswith("## ") and "| **Total** |" in out
    else:
        assert out.splitlines()[-1].startswith("Total")


@pytest.mark.parametrize("view", ["period", "provider", "model"])
def test_report_views(bundle, view):
    _logs, art = bundle
    out = stage("report", "daily", "--by", view, "--format", "csv", "--artifacts", art).stdout.decode().splitlines()
    part = {"period": "periods", "provider": "by_provider", "model": "by_model"}[view]
    assert len(out) == len(load_json(art / "reports" / "daily.json")[part]) + 2


def test_filters_reaggregate_from_rollups_and_match_a_filtered_build(bundle, tmp_path):
    logs, art = bundle
    args = ["--since", "2026-08-10", "--until", "2026-09-05", "--provider", "claude", "--project", "alpha,billing-api"]
    fresh = json.loads(stage("report", "daily", "--format", "json", *args, "--artifacts", art,
                             env={"PRICING": str(ROOT / "pricing.json")}).stdout)
    built = tmp_path / "filtered"
    make("all", env=sample_env(logs, built, TIMEZONE="UTC", SINCE="2026-08-10", UNTIL="2026-09-05", PROVIDER="claude",
                               PROJECT="alpha,billing-api"))
    cached = load_json(built / "reports" / "daily.json")
    assert fresh["rows"] == cached["rows"] and fresh["totals"] == cached["totals"]
    assert fresh["filters"] == cached["filters"] and fresh["filters"]["since"] == "2026-08-10"
    assert {r["period"] for r in fresh["rows"]} <= {f"2026-08-{d:02d}" for d in range(10, 32)} | {f"2026-09-0{d}" for d in range(1, 6)}


def test_report_answers_fast(bundle):
    _logs, art = bundle
    t = time.perf_counter()
    stage("report", "daily", "--artifacts", art)
    cached = time.perf_counter() - t
    t = time.perf_counter()
    stage("report", "sessions", "--since", "2026-08-15", "--artifacts", art, env={"PRICING": str(ROOT / "pricing.json")})
    fresh = time.perf_counter() - t
    assert cached < 1.0 and fresh < 1.0, (cached, fresh)


def test_an_empty_history_costs_nothing_and_suggests_nothing(tmp_path):
    art = tmp_path / "art"
    make("all", env={"ARTIFACTS": str(art), "TIMEZONE": "UTC", "CLAUDE_CONFIG_DIR": str(tmp_path / "none"),
                     "CODEX_HOME": str(tmp_path / "none"), "HOME": str(tmp_path / "home")})
    daily = load_json(art / "reports" / "daily.json")
    assert daily["rows"] == [] and daily["totals"]["cost_usd"] == 0.0 and daily["totals"]["total_tokens"] == 0
    assert load_json(art / "reports" / "suggestions.json")["month"] is None
    out = stage("report", "daily", "--artifacts", art).stdout.decode().splitlines()
    assert out[-1].split()[:2] == ["Total", "0"] and "0.00" in out[-1]


def test_report_without_a_bundle_is_one_line(tmp_path):
    proc = stage("report", "daily", "--artifacts", tmp_path / "none", check=False)
    assert proc.returncode == 1
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "run `make all`" in err[0]
    bad = stage("report", "daily", "--since", "August", "--artifacts", tmp_path, check=False)
    assert bad.returncode == 1 and "--since 'August' is not YYYY-MM-DD" in bad.stderr.decode()
    usage = stage("report", "yearly", check=False)
    assert usage.returncode == 2


@pytest.mark.parametrize("module", ["report", "suggest", "merge"])
def test_commands_have_help_with_an_example(module):
    import importlib

    cli = importlib.import_module(f"scripts.{module}").cli
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "Example:" in result.output


# ------------------------------------------------------------------ suggestions
def _entry(**kw) -> dict:
    base = {"input_tokens": 0, "output_tokens": 0, "cache_write_tokens": 0, "cache_read_tokens": 0,
            "tool_input_tokens": 0, "tool_output_tokens": 0, "total_tokens": 0, "events": 100,
            "cost_usd": 0.0, "subscription_usd": 0.0, "total_cost_usd": 0.0, "blended_usd_per_mtok": None,
            "cache_savings_usd": 0.0}
    base.update(kw)
    base["total_tokens"] = sum(base[k] for k in ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens",
                                                  "tool_input_tokens", "tool_output_tokens"))
    return base


def _monthly(rows, providers, month="2026-08") -> dict:
    return {"schema_version": 1, "kind": "monthly", "timezone": "UTC", "pricing": {"path": "p", "hash": "h"},
            "rows": [dict(r, period=month) for r in rows], "period_providers": [dict(p, period=month) for p in providers],
            "periods": [{"period": month, "total_cost_usd": 100.0}]}


def test_each_rule_fires_with_its_evidence_and_only_past_its_threshold():
    providers = [
        _entry(provider="gemini", input_tokens=200_000, tool_input_tokens=500_000, cache_read_tokens=1_200_000, output_tokens=100_000),
        _entry(provider="codex", input_tokens=900_000, cache_read_tokens=100_000, cost_usd=10.0, total_cost_usd=10.0),
        _entry(provider="claude", input_tokens=10, cache_read_tokens=5_000_000, output_tokens=1, cost_usd=20.0,
               subscription_usd=100.0, total_cost_usd=120.0),
    ]
    rows = [
        _entry(provider="codex", model="gpt-5", input_tokens=1_000_000, output_tokens=100_000, cost_usd=12.0,
               total_cost_usd=12.0, blended_usd_per_mtok=10.9),
        _entry(provider="claude", model="opus", output_tokens=100_000, cost_usd=30.0, total_cost_usd=30.0, blended_usd_per_mtok=1.0),
        _entry(provider="claude", model="haiku", output_tokens=200_000, cost_usd=10.0, total_cost_usd=10.0, blended_usd_per_mtok=0.5),
        _entry(provider="claude", model="sonnet", output_tokens=100_000, cost_usd=10.0, total_cost_usd=10.0, blended_usd_per_mtok=0.5),
    ]
    found = {s["id"]: s for s in month_suggestions(_monthly(rows, providers), "2026-08")}
    assert set(found) == {"high-tool-share:gemini", "low-cache-read-share:codex", "high-blended-rate:codex/gpt-5",
                          "subscription-dominated:claude", "expensive-model:claude/opus"}
    assert found["high-tool-share:gemini"]["evidence"]["tool_share"] == 0.25
    s = found["expensive-model:claude/opus"]
    assert s["evidence"]["ratio"] == 6.0 and s["severity"] == "warn" and s["compared_with"] == "haiku"
    assert s["evidence"]["savings_usd_if_moved"] == 25.0  # 30 - 100k x $50/M
    assert found["subscription-dominated:claude"]["evidence"]["subscription_share"] == round(100 / 120, 4)
    assert found["low-cache-read-share:codex"]["severity"] == "warn"  # 10% < 20%
    for sug in found.values():
        assert sug["threshold"] == RULES[sug["rule"]]["threshold"]
        assert all(isinstance(v, (int, float)) for v in sug["evidence"].values())
    # sonnet at 2x haiku's cost per output token is not "far above"
    assert "expensive-model:claude/sonnet" not in found
    # below the minimum volume nothing fires
    small = [_entry(provider="codex", input_tokens=900, cache_read_tokens=100)]
    assert month_suggestions(_monthly([], small), "2026-08") == []


def test_suggestions_month_is_month_or_the_latest_in_the_data(bundle):
    _logs, art = bundle
    monthly = load_json(art / "reports" / "monthly.json")
    doc = suggestions_document(monthly)
    assert doc["month"] == "2026-09" and sorted(doc["by_month"]) == ["2026-08", "2026-09"]
    assert doc["suggestions"] == doc["by_month"]["2026-09"]
    assert suggestions_document(monthly, "2026-08")["suggestions"] == doc["by_month"]["2026-08"]
    out = json.loads(stage("suggest", "--artifacts", art, "--month", "2026-08", "-o", "-").stdout)
    assert out["month"] == "2026-08" and out["month_source"] == "MONTH"
    assert any(s["rule"] == "expensive-model" for s in out["suggestions"])


def test_markdown_lists_unpriced_models():
    report = {"kind": "daily", "timezone": "UTC", "rows": [], "totals": {}, "unpriced": [
        {"provider": "claude", "model": "mystery", "tokens": 1234, "events": 2}]}
    assert "- claude / mystery: 1,234 tokens in 2 calls" in render(report, "markdown")


# ------------------------------------------------------------------ pruning
def test_pruner_skips_only_files_that_cannot_hold_a_call_in_range(tmp_path):
    old = tmp_path / "old.jsonl"
    new = tmp_path / "new.jsonl"
    old.write_text("{}\n")
    new.write_text("{}\n")
    when = 1_785_556_800  # 2026-08-01T04:00Z
    os.utime(old, (when, when))
    p = Pruner("2026-08-02", None, "UTC")
    assert p.reason_to_skip("claude", str(old)) == "last written before --since"
    assert p.reason_to_skip("claude", str(new)) is None
    # --since is a local day: 2026-08-01T04:00Z is on Aug 1 in UTC, still Jul 31 in Los Angeles
    assert Pruner("2026-08-01", None, "UTC").reason_to_skip("claude", str(old)) is None
    assert Pruner("2026-08-01", None, "America/Los_Angeles").reason_to_skip("claude", str(old)) == "last written before --since"
    assert Pruner("2026-07-31", None, "America/Los_Angeles").reason_to_skip("claude", str(old)) is None
    # Codex: a session dated two days after --until cannot hold a call in range; one day after may (zones)
    codex = lambda d: f"/h/.codex/sessions/2026/08/{d}/rollout-2026-08-{d}T00-00-00-x.jsonl"  # noqa: E731
    until = Pruner(None, "2026-08-10", "UTC")
    assert until.reason_to_skip("codex", codex("12")) == "its session started after --until (dated directory)"
    assert until.reason_to_skip("codex", codex("11")) is None
    assert until.reason_to_skip("codex", codex("10")) is None
    assert until.reason_to_skip("claude", codex("12")) is None


def test_normalize_since_does_not_read_old_files(sample_logs, tmp_path):
    logs = sample_logs(2000, 42)
    files = sorted((logs / "home" / ".codex" / "sessions").rglob("*.jsonl"))
    copies = []
    for i, f in enumerate(files[:6]):
        c = tmp_path / "sessions" / f.relative_to(logs / "home" / ".codex" / "sessions")
        c.parent.mkdir(parents=True, exist_ok=True)
        c.write_bytes(f.read_bytes())
        if i % 2:
            os.utime(c, (1_700_000_000, 1_700_000_000))  # 2023: last written long before
        copies.append(c)
    everything = stage("normalize", "--source", "codex", *copies).stdout
    pruned = stage("normalize", "--source", "codex", "--since", "2026-01-01", "--timezone", "UTC", *copies)
    assert "not read, nothing in range: 3 file(s) last written before --since" in pruned.stderr.decode()
    kept = {json.loads(line)["source_file"] for line in pruned.stdout.splitlines()}
    assert kept == {str(c) for c in copies[0::2]}
    assert len(pruned.stdout.splitlines()) < len(everything.splitlines())
    bundle_mode = stage("normalize", "--bundle", "--since", "2026-01-01", check=False)
    assert bundle_mode.returncode == 2
