"""The I/O behind ``price``'s book commands: read inputs, call the pure functions in
pricing_import / pricing_lint / pricing_coverage, write the JSON reports under
``$ARTIFACTS/pricing/``, say one line per finding on stderr, return the exit status.
"""
from __future__ import annotations

import datetime as dt
import os
import sys

from scripts.core.pricing_book import Book, book_hash, load_book, read_book_doc
from scripts.shared_io import STDIO, AtomicFile, DataError, Diagnostics, dumps_doc, read_doc, write_bytes, write_doc


def say(line: str) -> None:
    sys.stderr.write(line + "\n")


def report_path(artifacts: str, name: str, output: str | None) -> str:
    return output or os.path.join(artifacts, "pricing", f"{name}.json")


def emit(doc: dict, path: str) -> None:
    write_doc(path, doc)
    if path != STDIO:
        say(f"wrote {path}")


def book_info(path: str, data: bytes | None) -> dict:
    return {"path": path, "hash": book_hash(data) if data is not None else None}


# ------------------------------------------------------------------ import
def import_litellm(file: str, overrides: str | None, output: str, source_date: str | None) -> int:
    from scripts.core.pricing_import import file_digest, import_litellm as build, merge_overrides

    try:
        with open(file, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise DataError(exc.strerror or str(exc), where=file) from None
    prices = _loads(data, file)
    if not source_date:
        # the copy's own date (its modification time), never today's: same file, same book
        source_date = dt.datetime.fromtimestamp(os.stat(file).st_mtime, dt.timezone.utc).strftime("%Y-%m-%d")
    _check_date(source_date, "--source-date")
    label = f"LiteLLM model_prices_and_context_window.json ({os.path.basename(file)}, sha256 {file_digest(data)[:12]})"
    book, rep = build(prices, source_date=source_date, source_label=label)
    n_over = 0
    if overrides:
        odoc = read_doc(overrides)
        n_over = len((odoc or {}).get("models") or {}) if isinstance(odoc, dict) else 0
        book = merge_overrides(book, odoc, overrides)
        book["meta"]["source"] = f"{label} + {os.path.basename(overrides)}"
    with AtomicFile(output) as fh:
        fh.write(dumps_doc(book))
    skipped = ", ".join(f"{n} {why}" for why, n in rep["skipped"].items()) or "none"
    say(f"import-litellm: {len(book['models'])} models, {len(book['aliases'])} aliases from {file} (dated {source_date}); "
        f"{n_over} overridden or added by {overrides or 'no overrides'}; left out: {skipped}")
    return 0


def import_book(file: str, output: str) -> int:
    from scripts.core.pricing_import import import_legacy

    book = import_legacy(read_doc(file), file)
    with AtomicFile(output) as fh:
        fh.write(dumps_doc(book))
    subs = {p: e["subscription_usd_month"] for p, e in book["providers"].items() if e.get("subscription_usd_month")}
    say(f"import-book: {len(book['models'])} models, {len(book['aliases'])} aliases, subscriptions {subs or 'none'} from {file}")
    return 0


def _loads(data: bytes, where: str):
    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc})", where=where) from None


def _check_date(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise DataError(f"{value!r} is not YYYY-MM-DD", where=what) from None


# ------------------------------------------------------------------ lint / audit
def _read_for_lint(pricing: str):
    """(doc or None, data or None, violation or None): lint reports a broken file, it does not stop at it."""
    try:
        doc, data = read_book_doc(pricing)
        return doc, data, None
    except DataError as exc:
        return None, None, {"code": "invalid-json", "path": "", "message": exc.reason}


def lint(pricing: str, artifacts: str, output: str | None) -> int:
    from scripts.core.pricing_lint import REPORT_SCHEMA_VERSION, lint_report

    doc, data, broken = _read_for_lint(pricing)
    if broken:
        rep = {"schema_version": REPORT_SCHEMA_VERSION, "kind": "pricing-lint", "book": book_info(pricing, None), "ok": False, "violations": [broken], "counts": {"invalid-json": 1}}
    else:
        rep = lint_report(doc, book_info(pricing, data))
    emit(rep, report_path(artifacts, "lint", output))
    for v in rep["violations"]:
        say(f"{pricing}: {v['path'] + ': ' if v['path'] else ''}{v['message']} [{v['code']}]")
    if rep["ok"]:
        say(f"lint: {pricing} is clean ({len(doc.get('models', {}))} models, {len(doc.get('aliases') or {})} aliases)")
        return 0
    say(f"lint: {len(rep['violations'])} violation(s) in {pricing}")
    return 1


def audit(pricing: str, artifacts: str, output: str | None, *, max_age_days: int, allow_stale: bool, allow_missing_source: bool, today: str | None) -> int:
    from scripts.core.pricing_lint import audit_report

    doc, data = read_book_doc(pricing)
    if not isinstance(doc, dict):
        raise DataError("a pricing book is a JSON object", where=pricing)
    day = _check_date(today, "--today") if today else dt.datetime.now(dt.timezone.utc).date()
    rep = audit_report(doc, book_info(pricing, data), today=day, max_age_days=max_age_days, allow_stale=allow_stale, allow_missing_source=allow_missing_source)
    emit(rep, report_path(artifacts, "audit", output))
    for level, items in (("error", rep["errors"]), ("warning", rep["warnings"])):
        stale_models = [v for v in items if v["code"] == "stale" and v["path"].startswith("models.")]
        others = [v for v in items if v not in stale_models]
        for v in others[:20]:
            say(f"{pricing}: {v['path']}: {v['message']} [{v['code']}, {level}]")
        if len(others) > 20:
            say(f"... and {len(others) - 20} more {level}s (see the report)")
        by_message: dict[str, int] = {}
        for v in stale_models:
            by_message[v["message"]] = by_message.get(v["message"], 0) + 1
        for message, n in sorted(by_message.items()):
            say(f"{pricing}: {n} model(s): {message} [stale, {level}]")
    s = rep["summary"]
    say(f"audit: {'ok' if rep['ok'] else 'FAILED'}: {s['models_with_provenance']}/{s['models']} models with provenance, "
        f"book dated {s['book_updated_at']}, {len(rep['errors'])} error(s), {len(rep['warnings'])} warning(s)")
    return 0 if rep["ok"] else 1


# ------------------------------------------------------------------ usage-based commands
def bundle_setting(artifacts: str, stamp: str, key: str) -> str:
    """A setting the last `make all` resolved (stamps/<stamp>.fp), or ''."""
    try:
        with open(os.path.join(artifacts, "stamps", f"{stamp}.fp"), "rb") as fh:
            return str(_loads(fh.read(), stamp).get(key) or "")
    except (OSError, DataError, AttributeError):
        return ""


def resolve_view(artifacts: str, month: str, timezone: str, *, need_month: bool = True) -> tuple[str | None, str]:
    from scripts.core.periods import Periods, parse_month, resolve_zone_name

    zone_name = resolve_zone_name(timezone or bundle_setting(artifacts, "params", "timezone"))
    if month:
        return parse_month(month), zone_name
    if not need_month:
        return None, zone_name
    return bundle_setting(artifacts, "view", "month") or Periods(zone_name).month_now(), zone_name


def usage(artifacts: str, events: tuple, zone_name: str, strict: bool):
    from scripts.core.pricing_coverage import usage_table

    diag = Diagnostics(strict=strict)
    if events:
        return usage_table(events=list(events), zone_name=zone_name, diag=diag)
    return usage_table(rollup_dir=os.path.join(artifacts, "rollups"), zone_name=zone_name)


def _say_unpriced(items: list, what: str) -> None:
    for u in items[:20]:
        say(f"  {u['provider']}/{u['model']}: {u['events']:,} events, {u['tokens']:,} tokens {what}")


def check(pricing: str, artifacts: str, output: str | None, *, month: str, timezone: str, events: tuple, allow_unpriced: bool, strict: bool) -> int:
    from scripts.core.pricing_coverage import check_report

    book = load_book(pricing)
    month, zone_name = resolve_view(artifacts, month, timezone)
    rep = check_report(usage(artifacts, events, zone_name, strict), book, month=month, zone_name=zone_name, allow_unpriced=allow_unpriced)
    emit(rep, report_path(artifacts, "check", output))
    if rep["unpriced"]:
        say(f"check: {month}: {rep['unpriced_events']:,} of {rep['events']:,} events unpriced ({rep['unpriced_tokens']:,} tokens):")
        _say_unpriced(rep["unpriced"], "(run `price coverage` for suggested aliases)")
    if rep["ok"]:
        say(f"check: {month} ({zone_name}): {rep['events']:,} events, " + ("all priced" if not rep["unpriced"] else "unpriced allowed"))
        return 0
    return 1


def coverage(pricing: str, artifacts: str, output: str | None, patch_out: str | None, *, month: str, timezone: str, events: tuple, strict: bool) -> int:
    from scripts.core.pricing_coverage import coverage_report, patch_from_coverage

    book = load_book(pricing)
    month, zone_name = resolve_view(artifacts, month, timezone, need_month=False)
    rep = coverage_report(usage(artifacts, events, zone_name, strict), book, month=month, zone_name=zone_name)
    patch = patch_from_coverage(rep)
    emit(rep, report_path(artifacts, "coverage", output))
    emit(patch, patch_out or os.path.join(artifacts, "pricing", "patch.json"))
    for u in rep["unpriced"][:20]:
        best = u["suggestions"][0] if u["suggestions"] else None
        hint = f"nearest: {best['target']} ({best['score']:.2f}, {best['reason']})" if best else "no similar name in the book"
        say(f"  {u['provider']}/{u['model']}: {u['tokens']:,} tokens unpriced; {hint}")
    say(f"coverage: {rep['coverage']:.2%} of {rep['tokens']:,} tokens priced{' in ' + month if month else ''}; "
        f"patch: {len(patch['aliases'])} alias(es), {len(patch['todo'])} model(s) left for you")
    return 0


def apply(pricing: str, patch_path: str, artifacts: str, output: str | None, *, write: bool, overwrite: bool, backup_dir: str | None) -> int:
    from scripts.core.pricing_coverage import check_patch

    patch = read_doc(patch_path)
    check_patch(patch, patch_path)
    rep, _new = apply_to_book(pricing, patch, patch_path, artifacts, write=write, overwrite=overwrite, backup_dir=backup_dir)
    emit(rep, report_path(artifacts, "apply", output))
    _say_apply(rep, pricing)
    return 0 if rep["ok"] else 1


def apply_to_book(pricing: str, patch: dict, patch_path: str, artifacts: str, *, write: bool, overwrite: bool, backup_dir: str | None) -> tuple[dict, dict]:
    """(report, resulting book): merge, lint the result, and (with ``write``) back up and
    replace the book. All or nothing: a conflict or a lint violation writes nothing."""
    from scripts.core.pricing_coverage import apply_patch
    from scripts.core.pricing_lint import lint_doc

    doc, data = read_book_doc(pricing)
    Book(doc, pricing)  # a broken book is one line naming the key, before anything else
    new, changes, conflicts = apply_patch(doc, patch, overwrite=overwrite)
    violations = lint_doc(new) if changes else []
    ok = not conflicts and not violations
    rep = {
        "schema_version": 1,
        "kind": "pricing-apply",
        "book": book_info(pricing, data),
        "patch": patch_path,
        "mode": "write" if write else "dry-run",
        "overwrite": overwrite,
        "ok": ok,
        "changes": changes,
        "conflicts": conflicts,
        "lint_violations": violations,
        "written": False,
        "backup": None,
        "result_hash": book_hash(dumps_doc(new)),
    }
    if write and ok and changes:
        folder = backup_dir or os.path.join(artifacts, "pricing", "backups")
        backup = os.path.join(folder, f"{os.path.splitext(os.path.basename(pricing))[0]}.{book_hash(data)[:12]}.json")
        write_bytes(backup, data)
        write_doc(pricing, new)
        rep.update(written=True, backup=backup)
    return rep, new


def _say_apply(rep: dict, pricing: str) -> None:
    for c in rep["changes"][:30]:
        say(f"  {c['op']:7} {c['path']}: {c.get('new')!r}" + (f" (was {c['old']!r})" if c["op"] == "replace" else ""))
    for c in rep["conflicts"]:
        say(f"  CONFLICT {c['path']}: {c['message']} (book {c['old']!r}, patch {c['new']!r})")
    for v in rep["lint_violations"]:
        say(f"  LINT {v['path']}: {v['message']} [{v['code']}]")
    if not rep["ok"]:
        say(f"apply: refused, {pricing} unchanged ({len(rep['conflicts'])} conflict(s), {len(rep['lint_violations'])} lint violation(s))")
    elif rep["written"]:
        say(f"apply: wrote {len(rep['changes'])} change(s) to {pricing} (backup: {rep['backup']})")
    elif rep["changes"]:
        say(f"apply: dry run, {len(rep['changes'])} change(s) would be made; rerun with --write to write {pricing}")
    else:
        say("apply: nothing to change")


def reconcile(pricing: str, artifacts: str, *, month: str, timezone: str, events: tuple, write: bool, overwrite: bool, allow_unpriced: bool, stamp: str | None, strict: bool) -> int:
    """coverage -> patch -> apply (dry run unless ``write``) -> check, in one folder."""
    from scripts.core.pricing_coverage import check_report, coverage_report, patch_from_coverage

    book = load_book(pricing)
    month, zone_name = resolve_view(artifacts, month, timezone)
    table = usage(artifacts, events, zone_name, strict)
    stamp = stamp or dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    root = os.path.join(artifacts, "pricing")
    name = f"reconcile-{stamp}"
    n = 2
    while os.path.exists(os.path.join(root, name)):
        name = f"reconcile-{stamp}-{n}"
        n += 1
    folder = os.path.join(root, name)
    cov = coverage_report(table, book, month=month, zone_name=zone_name)
    patch = patch_from_coverage(cov)
    patch_path = os.path.join(folder, "patch.json")
    write_doc(os.path.join(folder, "coverage.json"), cov)
    write_doc(patch_path, patch)
    applied, new = apply_to_book(pricing, patch, patch_path, artifacts, write=write, overwrite=overwrite, backup_dir=os.path.join(folder, "backup"))
    after = Book(new, pricing + ("" if applied["written"] else " (as patched, not written)"), applied["result_hash"]) if applied["ok"] else book
    chk = check_report(table, after, month=month, zone_name=zone_name, allow_unpriced=allow_unpriced)
    write_doc(os.path.join(folder, "apply.json"), applied)
    write_doc(os.path.join(folder, "check.json"), chk)
    ok = applied["ok"] and chk["ok"]
    summary = {
        "schema_version": 1,
        "kind": "pricing-reconcile",
        "folder": name,
        "book": book.describe(),
        "month": month,
        "timezone": zone_name,
        "mode": applied["mode"],
        "ok": ok,
        "unpriced_before": len(cov["unpriced"]),
        "aliases_proposed": len(patch["aliases"]),
        "todo": [t["model"] for t in patch["todo"]],
        "applied": applied["ok"] and bool(applied["changes"]),
        "written": applied["written"],
        "unpriced_after": len(chk["unpriced"]),
        "files": {k: f"{k}.json" for k in ("coverage", "patch", "apply", "check")},
    }
    write_doc(os.path.join(folder, "reconcile.json"), summary)
    write_doc(os.path.join(root, "reconcile-latest.json"), {"schema_version": 1, "kind": "pricing-reconcile-latest", "folder": name, "summary": f"{name}/reconcile.json", "ok": ok, "month": month})
    say(f"reconcile: {name}: {summary['unpriced_before']} unpriced model(s) in {month or 'all months'} -> "
        f"{summary['aliases_proposed']} alias(es) proposed, {'written' if applied['written'] else 'not written (dry run)' if applied['ok'] else 'REFUSED'}; "
        f"{summary['unpriced_after']} unpriced after; {'ok' if ok else 'FAILED'}")
    say(f"wrote {folder}/ and {os.path.join(root, 'reconcile-latest.json')}")
    return 0 if ok else 1
