"""Keeping the pricing book honest: ``lint`` (is it well-formed and plausible) and
``audit`` (can every rate be traced to a source and a recent date).

Both are pure: they take the book document (and, for audit, today's date) and return a
report document; the ``price lint`` / ``price audit`` commands write it and set the exit
status. See docs/contracts/pricing-governance.md.
"""
from __future__ import annotations

import datetime as dt
import os

from scripts.core.pricing_book import (
    DATE_PREFIX,
    PLACEHOLDER,
    RATE_FIELDS,
    book_problems,
    is_number,
)

REPORT_SCHEMA_VERSION = 1
SCHEMA_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "schemas", "pricing-book.v1.schema.json")
# A rate outside these bounds is almost surely a unit mistake (USD per token, or per 1k
# tokens, written where USD per million tokens belongs).
MIN_PLAUSIBLE = 0.001
MAX_PLAUSIBLE = 1000.0


def _code(message: str) -> str:
    if message.startswith("placeholder value"):
        return "placeholder"
    if message == "must not be negative":
        return "negative-rate"
    if message.startswith("points to unknown model"):
        return "dangling-alias"
    if message == "unknown field":
        return "unknown-field"
    if message.startswith("must be one of"):
        return "tier-threshold"
    if message.startswith("same name as"):
        return "duplicate-model"
    return "schema"


def _v(code: str, path: str, message: str) -> dict:
    return {"code": code, "path": path, "message": message}


def lint_doc(doc, *, use_jsonschema: bool = True) -> list[dict]:
    """Every violation in a book document, as ``{code, path, message}``, in a stable order."""
    out = [_v(_code(m), p, m) for p, m in book_problems(doc)]
    if not isinstance(doc, dict):
        return out
    seen_paths = {v["path"] for v in out}
    if use_jsonschema:
        for path, message in schema_errors(doc):
            if path not in seen_paths and not any(_related(path, p) for p in seen_paths):
                out.append(_v("schema", path, message))
                seen_paths.add(path)
    models = doc.get("models") if isinstance(doc.get("models"), dict) else {}
    names = {n.lower() for n in models}
    for name, entry in models.items():
        if not isinstance(entry, dict):
            continue
        where = f"models.{name}"
        if name != name.strip().lower():
            out.append(_v("model-name", where, "model names are lower-case without spaces (events carry canonical names)"))
        out.extend(_rate_lint(entry, where))
        tiers = entry.get("tiers") if isinstance(entry.get("tiers"), list) else []
        thresholds = [t.get("above_prompt_tokens") for t in tiers if isinstance(t, dict)]
        if any(not is_number(x) for x in thresholds):
            continue
        if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
            out.append(_v("tiers-unordered", f"{where}.tiers", f"tiers must be in ascending order of above_prompt_tokens, each once (got {thresholds})"))
        for i, tier in enumerate(tiers):
            if isinstance(tier, dict):
                out.extend(_rate_lint(tier, f"{where}.tiers[{i}]", tier=True))
    aliases = doc.get("aliases") if isinstance(doc.get("aliases"), dict) else {}
    for alias, target in aliases.items():
        if alias.lower() in names:
            out.append(_v("alias-shadows-model", f"aliases.{alias}", "is also a model name; the model wins and the alias is never used"))
        if isinstance(target, str) and target.lower() in {a.lower() for a in aliases} and target.lower() not in names:
            out.append(_v("dangling-alias", f"aliases.{alias}", f"points to another alias ({target!r}); point it at a model"))
    for path, value in _walk(doc, ""):
        if isinstance(value, str) and PLACEHOLDER.match(value) and not path.endswith(".notes") and path != "notes":
            if not any(v["path"] == path for v in out):
                out.append(_v("placeholder", path, f"placeholder value {value!r}"))
    return sorted(out, key=lambda v: (v["path"], v["code"]))


def _related(a: str, b: str) -> bool:
    """One key path inside the other (the same problem seen from two levels)."""
    if not a or not b:
        return False
    return a.startswith(b + ".") or a.startswith(b + "[") or b.startswith(a + ".") or b.startswith(a + "[")


def _rate_lint(entry: dict, where: str, tier: bool = False) -> list[dict]:
    out = []
    if entry.get("output_usd_per_mtok") == 0 and is_number(entry.get("output_usd_per_mtok")):
        out.append(_v("zero-output-rate", f"{where}.output_usd_per_mtok", "an output rate of 0 prices every answer at $0; leave the model out instead (it is then reported as unpriced)"))
    if entry.get("input_usd_per_mtok") == 0 and is_number(entry.get("input_usd_per_mtok")) and not tier:
        out.append(_v("zero-input-rate", f"{where}.input_usd_per_mtok", "an input rate of 0 prices every prompt at $0; leave the model out instead"))
    for field in RATE_FIELDS:
        v = entry.get(field)
        if is_number(v) and v > 0 and not (MIN_PLAUSIBLE <= v <= MAX_PLAUSIBLE):
            out.append(_v("implausible-rate", f"{where}.{field}", f"{v} USD per million tokens looks like a unit mistake (rates are USD per million tokens)"))
    return out


def _walk(value, path):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, value


def schema_errors(doc) -> list[tuple[str, str]]:
    """(key path, message) for each JSON Schema violation (schemas/pricing-book.v1)."""
    import jsonschema

    from scripts.shared_io import loads

    with open(SCHEMA_FILE, "rb") as fh:
        schema = loads(fh.read())
    validator = jsonschema.Draft202012Validator(schema)
    out = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        out.append((_json_path(err.absolute_path), err.message))
    return out


def _json_path(parts) -> str:
    path = ""
    for p in parts:
        path += f"[{p}]" if isinstance(p, int) else (f".{p}" if path else str(p))
    return path


def lint_report(doc, book_info: dict) -> dict:
    violations = lint_doc(doc)
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "pricing-lint",
        "book": book_info,
        "ok": not violations,
        "violations": violations,
        "counts": _counts(violations),
    }


def _counts(items: list[dict]) -> dict:
    counts: dict[str, int] = {}
    for v in items:
        counts[v["code"]] = counts.get(v["code"], 0) + 1
    return dict(sorted(counts.items()))


def parse_day(value) -> dt.date | None:
    if not isinstance(value, str) or not DATE_PREFIX.match(value):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def audit_report(doc: dict, book_info: dict, *, today: dt.date, max_age_days: int = 45, allow_stale: bool = False, allow_missing_source: bool = False) -> dict:
    """Provenance and freshness of every rate. Missing sources and stale dates are errors
    unless allowed, then warnings; a date that cannot be read is always an error."""
    errors: list[dict] = []
    warnings: list[dict] = []

    def finding(code: str, path: str, message: str, allowed: bool):
        (warnings if allowed else errors).append(_v(code, path, message))

    def check_dated(path: str, source, updated):
        if not isinstance(source, str) or not source.strip() or PLACEHOLDER.match(source):
            finding("missing-source", f"{path}.source", "no source: say where these numbers come from", allow_missing_source)
        if updated is None:
            finding("missing-date", f"{path}.updated_at", "no date: say when these numbers were checked", allow_missing_source)
            return None
        day = parse_day(updated)
        if day is None:
            errors.append(_v("bad-date", f"{path}.updated_at", f"{updated!r} is not a date (YYYY-MM-DD)"))
            return None
        age = (today - day).days
        if age > max_age_days:
            finding("stale", f"{path}.updated_at", f"{day.isoformat()} is {age} days old (more than {max_age_days}); refresh the rates (docs/pricing.md, How to update)", allow_stale)
        elif age < -1:
            warnings.append(_v("future-date", f"{path}.updated_at", f"{day.isoformat()} is in the future"))
        return day

    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else None
    if meta is None:
        finding("missing-source", "meta", "no meta: the book says neither where it comes from nor when", allow_missing_source)
        meta_day = None
    else:
        meta_day = check_dated("meta", meta.get("source"), meta.get("updated_at"))
    models = doc.get("models") if isinstance(doc.get("models"), dict) else {}
    days = []
    with_prov = 0
    for name, entry in sorted(models.items()):
        prov = entry.get("provenance") if isinstance(entry, dict) else None
        if not isinstance(prov, dict):
            finding("missing-source", f"models.{name}.provenance", "no provenance: add {source, updated_at}", allow_missing_source)
            continue
        with_prov += 1
        day = check_dated(f"models.{name}.provenance", prov.get("source"), prov.get("updated_at"))
        if day:
            days.append(day)
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "pricing-audit",
        "book": book_info,
        "today": today.isoformat(),
        "max_age_days": max_age_days,
        "allow_stale": allow_stale,
        "allow_missing_source": allow_missing_source,
        "ok": not errors,
        "errors": errors,
        "warnings": warnings,
        "summary": {
            "models": len(models),
            "models_with_provenance": with_prov,
            "book_updated_at": meta_day.isoformat() if meta_day else None,
            "oldest_model_date": min(days).isoformat() if days else None,
            "newest_model_date": max(days).isoformat() if days else None,
        },
    }
