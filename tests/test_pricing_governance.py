"""lint, audit, check, coverage, apply, reconcile: each with a failing and a passing input,
its JSON report valid against its schema, and the Make targets that run them."""
from __future__ import annotations

import copy
import json
import os

import jsonschema
import pytest
from click.testing import CliRunner
from referencing import Registry, Resource

from conftest import ROOT, SCHEMAS, load_json, make, sample_env
from scripts.price import cli

BOOK = load_json(ROOT / "pricing.json")
KINDS = ("lint", "audit", "check", "coverage", "patch", "apply", "reconcile", "reconcile-latest")


def _registry():
    resources = []
    for path in SCHEMAS.glob("pricing-*.v1.schema.json"):
        schema = load_json(path)
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def valid(doc: dict, kind: str) -> dict:
    schema = load_json(SCHEMAS / f"pricing-{kind}.v1.schema.json")
    jsonschema.Draft202012Validator(schema, registry=REGISTRY).validate(doc)
    assert doc["schema_version"] == 1
    return doc


def price(*args, input=None):
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def book_file(tmp_path, doc=None, name="pricing.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc if doc is not None else BOOK, indent=2))
    return path


EVENTS = [
    {"provider": "claude", "model": "claude-sonnet-4-5", "raw_model": "claude-sonnet-4-5-20250929", "timestamp": "2026-08-03T10:00:00.000Z",
     "usage": {"input_tokens": 10, "output_tokens": 500, "cache_read_tokens": 50_000}},
    {"provider": "cursor", "model": "claude-4.5-sonnet-high-thinking", "timestamp": "2026-08-04T10:00:00.000Z",
     "usage": {"input_tokens": 2000, "output_tokens": 300}},
    {"provider": "droid", "model": "gpt-5.1-codex-max-xhigh", "timestamp": "2026-08-05T10:00:00.000Z",
     "usage": {"input_tokens": 4000, "output_tokens": 100}},
    {"provider": "opencode", "model": "brand-new-model-x1", "timestamp": "2026-08-06T10:00:00.000Z",
     "usage": {"input_tokens": 7, "output_tokens": 3}},
    {"provider": "cursor", "model": "mystery-9", "timestamp": "2026-07-06T10:00:00.000Z",
     "usage": {"input_tokens": 7, "output_tokens": 3}},
]


@pytest.fixture()
def events(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return path


# ------------------------------------------------------------------ lint
def test_lint_passes_on_the_committed_book(tmp_path):
    r = price("lint", "--pricing", ROOT / "pricing.json", "--artifacts", tmp_path)
    assert r.exit_code == 0, r.stderr
    rep = valid(load_json(tmp_path / "pricing" / "lint.json"), "lint")
    assert rep["ok"] and rep["violations"] == []


def test_lint_lists_every_violation(tmp_path):
    doc = copy.deepcopy(BOOK)
    doc["models"]["gpt-5"]["input_usd_per_mtok"] = -1.25
    doc["models"]["gpt-5"]["output_usd_per_mtok"] = 0
    doc["models"]["o3"]["cache_read_usd_per_mtok"] = "TBD"
    doc["models"]["o3"]["tiers"] = [{"above_prompt_tokens": 272000, "input_usd_per_mtok": 4}, {"above_prompt_tokens": 200000, "input_usd_per_mtok": 3}]
    doc["models"]["o4-mini"]["output_usd_per_mtok"] = 4.4e-06  # USD per token, not per million
    doc["aliases"]["my-alias"] = "no-such-model"
    doc["aliases"]["gpt-5"] = "o3"
    r = price("lint", "--pricing", book_file(tmp_path, doc), "--artifacts", tmp_path)
    assert r.exit_code == 1
    rep = valid(load_json(tmp_path / "pricing" / "lint.json"), "lint")
    found = {(v["code"], v["path"]) for v in rep["violations"]}
    assert found >= {
        ("negative-rate", "models.gpt-5.input_usd_per_mtok"),
        ("zero-output-rate", "models.gpt-5.output_usd_per_mtok"),
        ("placeholder", "models.o3.cache_read_usd_per_mtok"),
        ("tiers-unordered", "models.o3.tiers"),
        ("implausible-rate", "models.o4-mini.output_usd_per_mtok"),
        ("dangling-alias", "aliases.my-alias"),
        ("alias-shadows-model", "aliases.gpt-5"),
    }
    assert "models.gpt-5.input_usd_per_mtok: must not be negative [negative-rate]" in r.stderr


def test_lint_reports_a_file_that_is_not_json(tmp_path):
    broken = tmp_path / "x.json"
    broken.write_text("{oops")
    r = price("lint", "--pricing", broken, "--artifacts", tmp_path)
    assert r.exit_code == 1
    rep = valid(load_json(tmp_path / "pricing" / "lint.json"), "lint")
    assert rep["violations"][0]["code"] == "invalid-json"


# ------------------------------------------------------------------ audit
def test_audit_fresh_and_sourced_passes(tmp_path):
    r = price("audit", "--pricing", ROOT / "pricing.json", "--artifacts", tmp_path, "--today", BOOK["meta"]["updated_at"])
    assert r.exit_code == 0, r.stderr
    rep = valid(load_json(tmp_path / "pricing" / "audit.json"), "audit")
    assert rep["ok"] and rep["summary"]["models_with_provenance"] == rep["summary"]["models"]


def test_audit_stale_and_unsourced_fail_unless_allowed(tmp_path):
    doc = copy.deepcopy(BOOK)
    del doc["models"]["gpt-5"]["provenance"]
    doc["models"]["o3"]["provenance"] = {"source": "TODO", "updated_at": "2026-11-25"}
    path = book_file(tmp_path, doc)
    r = price("audit", "--pricing", path, "--artifacts", tmp_path, "--today", "2027-03-01")
    assert r.exit_code == 1
    rep = valid(load_json(tmp_path / "pricing" / "audit.json"), "audit")
    codes = {(e["code"], e["path"]) for e in rep["errors"]}
    assert ("missing-source", "models.gpt-5.provenance") in codes
    assert ("missing-source", "models.o3.provenance.source") in codes
    assert ("stale", "meta.updated_at") in codes
    only_stale = price("audit", "--pricing", path, "--artifacts", tmp_path, "--today", "2027-03-01", "--allow-stale")
    assert only_stale.exit_code == 1  # the missing sources still fail
    both = price("audit", "--pricing", path, "--artifacts", tmp_path, "--today", "2027-03-01", "--allow-stale", "--allow-missing-source")
    assert both.exit_code == 0
    rep = valid(load_json(tmp_path / "pricing" / "audit.json"), "audit")
    assert rep["errors"] == [] and {w["code"] for w in rep["warnings"]} == {"stale", "missing-source"}
    fresh = price("audit", "--pricing", path, "--artifacts", tmp_path, "--today", "2026-12-01", "--max-age-days", "45", "--allow-missing-source")
    assert fresh.exit_code == 0


# ------------------------------------------------------------------ check
def test_check_fails_on_an_unpriced_event_of_the_month(tmp_path, events):
    r = price("check", "--pricing", ROOT / "pricing.json", "--events", events, "--month", "2026-08", "--timezone", "UTC", "--artifacts", tmp_path)
    assert r.exit_code == 1
    rep = valid(load_json(tmp_path / "pricing" / "check.json"), "check")
    assert {u["model"] for u in rep["unpriced"]} == {"claude-4-5-sonnet-high-thinking", "gpt-5.1-codex-max-xhigh", "brand-new-model-x1"}
    assert rep["unpriced_events"] == 3 and rep["events"] == 4 and rep["unpriced_tokens"] == 2300 + 4100 + 10
    allowed = price("check", "--pricing", ROOT / "pricing.json", "--events", events, "--month", "2026-08", "--timezone", "UTC", "--artifacts", tmp_path, "--allow-unpriced")
    assert allowed.exit_code == 0 and load_json(tmp_path / "pricing" / "check.json")["ok"] is True


def test_check_passes_when_the_month_is_priced(tmp_path, events):
    # July holds one event, of a model this book has
    doc = copy.deepcopy(BOOK)
    doc["models"]["mystery-9"] = {"input_usd_per_mtok": 1, "output_usd_per_mtok": 2, "provenance": {"source": "test", "updated_at": "2026-11-25"}}
    r = price("check", "--pricing", book_file(tmp_path, doc), "--events", events, "--month", "2026-07", "--timezone", "UTC", "--artifacts", tmp_path)
    assert r.exit_code == 0, r.stderr
    rep = valid(load_json(tmp_path / "pricing" / "check.json"), "check")
    assert rep["ok"] and rep["events"] == 1 and rep["unpriced"] == []


# ------------------------------------------------------------------ coverage
def test_coverage_suggests_and_writes_a_patch(tmp_path, events):
    r = price("coverage", "--pricing", ROOT / "pricing.json", "--events", events, "--timezone", "UTC", "--artifacts", tmp_path)
    assert r.exit_code == 0
    rep = valid(load_json(tmp_path / "pricing" / "coverage.json"), "coverage")
    assert not rep["ok"] and 0 < rep["coverage"] < 1
    by_model = {u["model"]: u for u in rep["unpriced"]}
    assert by_model["claude-4-5-sonnet-high-thinking"]["suggestions"][0]["target"] == "claude-sonnet-4-5"
    assert by_model["gpt-5.1-codex-max-xhigh"]["suggestions"][0]["target"] == "gpt-5.1-codex-max"
    assert by_model["brand-new-model-x1"]["tokens"] == 10
    patch = valid(load_json(tmp_path / "pricing" / "patch.json"), "patch")
    assert patch["aliases"] == {"claude-4-5-sonnet-high-thinking": "claude-sonnet-4-5", "gpt-5.1-codex-max-xhigh": "gpt-5.1-codex-max"}
    assert {t["model"] for t in patch["todo"]} == {"brand-new-model-x1", "mystery-9"}


def test_coverage_clean_when_everything_is_priced(tmp_path, events):
    priced = tmp_path / "priced.jsonl"
    priced.write_text(json.dumps(EVENTS[0]) + "\n")
    r = price("coverage", "--pricing", ROOT / "pricing.json", "--events", priced, "--timezone", "UTC", "--artifacts", tmp_path)
    assert r.exit_code == 0
    rep = valid(load_json(tmp_path / "pricing" / "coverage.json"), "coverage")
    assert rep["ok"] and rep["coverage"] == 1.0
    assert valid(load_json(tmp_path / "pricing" / "patch.json"), "patch")["aliases"] == {}


# ------------------------------------------------------------------ apply
def _patch(tmp_path, doc):
    path = tmp_path / "patch.json"
    path.write_text(json.dumps({"schema_version": 1, "kind": "pricing-patch", **doc}))
    return path


def test_apply_dry_run_then_write_with_backup(tmp_path):
    book = book_file(tmp_path)
    before = book.read_bytes()
    patch = _patch(tmp_path, {"aliases": {"claude-4.5-sonnet-high-thinking": "claude-sonnet-4-5"},
                              "models": {"new-model-1": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 4,
                                                         "provenance": {"source": "https://example.com/prices", "updated_at": "2026-11-20"}}}})
    dry = price("apply", patch, "--pricing", book, "--artifacts", tmp_path)
    assert dry.exit_code == 0 and book.read_bytes() == before
    rep = valid(load_json(tmp_path / "pricing" / "apply.json"), "apply")
    assert rep["mode"] == "dry-run" and not rep["written"] and len(rep["changes"]) == 2
    wrote = price("apply", patch, "--pricing", book, "--artifacts", tmp_path, "--write")
    assert wrote.exit_code == 0, wrote.stderr
    rep = valid(load_json(tmp_path / "pricing" / "apply.json"), "apply")
    assert rep["written"] and open(rep["backup"], "rb").read() == before
    after = load_json(book)
    assert after["aliases"]["claude-4.5-sonnet-high-thinking"] == "claude-sonnet-4-5" and "new-model-1" in after["models"]
    assert price("lint", "--pricing", book, "--artifacts", tmp_path).exit_code == 0


def test_apply_never_overwrites_without_overwrite_and_never_writes_a_bad_book(tmp_path):
    book = book_file(tmp_path)
    before = book.read_bytes()
    change_rate = _patch(tmp_path, {"models": {"gpt-5": {"input_usd_per_mtok": 2, "provenance": {"source": "me", "updated_at": "2026-11-25"}}}})
    refused = price("apply", change_rate, "--pricing", book, "--artifacts", tmp_path, "--write")
    assert refused.exit_code == 1 and book.read_bytes() == before
    rep = valid(load_json(tmp_path / "pricing" / "apply.json"), "apply")
    assert rep["conflicts"][0]["path"] == "models.gpt-5.input_usd_per_mtok" and not rep["written"]
    forced = price("apply", change_rate, "--pricing", book, "--artifacts", tmp_path, "--write", "--overwrite")
    assert forced.exit_code == 0
    assert load_json(book)["models"]["gpt-5"]["input_usd_per_mtok"] == 2
    assert load_json(book)["models"]["gpt-5"]["provenance"]["source"] == "me"
    before = book.read_bytes()
    zero = _patch(tmp_path, {"models": {"free-thing": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 0}}})
    bad = price("apply", zero, "--pricing", book, "--artifacts", tmp_path, "--write")
    assert bad.exit_code == 1 and book.read_bytes() == before
    rep = valid(load_json(tmp_path / "pricing" / "apply.json"), "apply")
    assert rep["lint_violations"][0]["code"] == "zero-output-rate"


# ------------------------------------------------------------------ reconcile
def test_reconcile_dry_run_leaves_todo_and_fails(tmp_path, events):
    book = book_file(tmp_path)
    before = book.read_bytes()
    r = price("reconcile", "--pricing", book, "--events", events, "--month", "2026-08", "--timezone", "UTC", "--artifacts", tmp_path, "--stamp", "20261125T000000Z")
    assert r.exit_code == 1  # brand-new-model-x1 has no confident match
    assert book.read_bytes() == before
    root = tmp_path / "pricing"
    latest = valid(load_json(root / "reconcile-latest.json"), "reconcile-latest")
    folder = root / latest["folder"]
    summary = valid(load_json(folder / "reconcile.json"), "reconcile")
    for kind in ("coverage", "patch", "apply", "check"):
        valid(load_json(folder / f"{kind}.json"), kind)
    assert summary["unpriced_before"] == 3 and summary["aliases_proposed"] == 2 and summary["unpriced_after"] == 1
    assert summary["todo"] == ["brand-new-model-x1"] and summary["mode"] == "dry-run" and not summary["written"]
    again = price("reconcile", "--pricing", book, "--events", events, "--month", "2026-08", "--timezone", "UTC", "--artifacts", tmp_path, "--stamp", "20261125T000000Z")
    assert load_json(root / "reconcile-latest.json")["folder"] == "reconcile-20261125T000000Z-2"  # never overwrites a run
    assert again.exit_code == 1


def test_reconcile_write_fixes_what_it_can_and_passes(tmp_path, events):
    book = book_file(tmp_path)
    solvable = tmp_path / "solvable.jsonl"
    solvable.write_text("".join(json.dumps(e) + "\n" for e in EVENTS[:3]))
    r = price("reconcile", "--pricing", book, "--events", solvable, "--month", "2026-08", "--timezone", "UTC", "--artifacts", tmp_path, "--write")
    assert r.exit_code == 0, r.stderr
    summary = load_json(tmp_path / "pricing" / load_json(tmp_path / "pricing" / "reconcile-latest.json")["summary"])
    assert summary["ok"] and summary["written"] and summary["unpriced_after"] == 0
    assert price("check", "--pricing", book, "--events", solvable, "--month", "2026-08", "--timezone", "UTC", "--artifacts", tmp_path).exit_code == 0


# ------------------------------------------------------------------ help and Make
def test_every_command_has_help_with_an_example():
    for name, command in cli.commands.items():
        r = CliRunner().invoke(cli, [name, "--help"])
        assert r.exit_code == 0 and "Example:" in r.output, name


@pytest.fixture(scope="module")
def bundle(sample_logs, tmp_path_factory):
    logs = sample_logs(events=400, seed=3)
    artifacts = tmp_path_factory.mktemp("pricing-bundle") / "artifacts"
    make("all", env=sample_env(logs, artifacts, MONTH="2026-08"))
    return logs, artifacts


def test_make_pricing_ci_on_a_bundle(bundle):
    logs, artifacts = bundle
    env = sample_env(logs, artifacts, MONTH="2026-08")
    make("pricing-ci", env=env)
    for kind in ("lint", "audit", "check"):
        assert valid(load_json(artifacts / "pricing" / f"{kind}.json"), kind)["ok"]
    assert load_json(artifacts / "pricing" / "check.json")["events"] > 0


def test_make_pricing_ci_fails_on_an_unpriced_month(bundle, tmp_path):
    logs, artifacts = bundle
    doc = copy.deepcopy(BOOK)
    codex_models = {"gpt-5-codex", "gpt-5.2-codex"}  # what the generator's Codex sessions use
    for name in codex_models:
        del doc["models"][name]
    doc["aliases"] = {a: t for a, t in doc["aliases"].items() if t not in codex_models}
    env = sample_env(logs, artifacts, MONTH="2026-08", PRICING=book_file(tmp_path, doc))
    proc = make("pricing-ci", env=env, check=False)
    assert proc.returncode != 0
    rep = load_json(artifacts / "pricing" / "check.json")
    assert not rep["ok"] and rep["unpriced"] and {u["model"] for u in rep["unpriced"]} <= codex_models
    make("pricing-coverage", "pricing-reconcile", env=env, check=False)
    assert os.path.exists(artifacts / "pricing" / "reconcile-latest.json")
    assert {u["model"] for u in load_json(artifacts / "pricing" / "coverage.json")["unpriced"]} == {u["model"] for u in rep["unpriced"]}
