"""Which usage the book cannot price, what to do about it, and merging the fix.

- ``usage_table``: token volume per (month, provider, model) from a bundle's slot rollups
  (what ``make all`` leaves in ``$ARTIFACTS/rollups``) or from normalized event lines.
- ``check_report``: is every event of a month priced?
- ``coverage_report`` + ``patch_from_coverage``: the unpriced models with their volume and
  the nearest names the book knows; confident matches become aliases in a patch.
- ``apply_patch``: merge a patch into a book; an existing rate is never replaced unless
  asked, and the caller lints the result before writing it.

All pure (documents in, documents out); the ``price`` subcommands do the I/O.
"""
from __future__ import annotations

import difflib
import glob
import os
import re

from scripts.core.event import ADDITIVE_KEYS, canonical_model, normalize_timestamp, timestamp_ms
from scripts.core.pricing_book import RATE_FIELDS, Book
from scripts.shared_io import DataError, Diagnostics, display_name, iter_jsonl, read_doc

REPORT_SCHEMA_VERSION = 1
# A suggestion at least this close becomes an alias in the patch; weaker ones are listed
# for a person to decide (a wrong alias is a wrong price, not a missing one).
PATCH_MIN_SCORE = 0.9
# Suffixes that name a reasoning effort or thinking mode, billed at the model's own rates.
# "-fast" is not among them: it is priority processing, billed higher.
EFFORT_SUFFIX = re.compile(r"-(thinking|high|medium|low|minimal|xhigh|reasoning|max-thinking|high-thinking)$")


# ------------------------------------------------------------------ usage
def usage_table(*, rollup_dir: str | None = None, events: list[str] | None = None, zone_name: str = "UTC", diag: Diagnostics | None = None) -> dict:
    """``{(month, provider, model, raw_model): [events, tokens]}`` in the zone's months."""
    from scripts.core.periods import Periods
    from scripts.core.rollup import N_KEY

    periods = Periods(zone_name)
    table: dict[tuple, list[int]] = {}
    if events:
        diag = diag or Diagnostics()
        for path in events:
            name = display_name(path)
            for lineno, ev in iter_jsonl(path, diag):
                if not isinstance(ev, dict) or not isinstance(ev.get("usage"), dict) or "timestamp" not in ev:
                    diag.bad_line(name, lineno, "not a normalized event (needs provider, model, timestamp, usage)")
                    continue
                try:
                    ms = timestamp_ms(normalize_timestamp(ev["timestamp"]))
                    tokens = ev.get("total_tokens")
                    if not isinstance(tokens, int):
                        tokens = sum(int(ev["usage"].get(k, 0) or 0) for k in ADDITIVE_KEYS)
                except (TypeError, ValueError) as exc:
                    diag.bad_line(name, lineno, f"bad event ({exc})")
                    continue
                raw = ev.get("raw_model")
                key = (periods.of_ms(ms)[2], str(ev.get("provider") or "unknown"), canonical_model(ev.get("model") or raw), raw)
                acc = table.setdefault(key, [0, 0])
                acc[0] += 1
                acc[1] += tokens
        return table
    if rollup_dir is None:
        raise DataError("no usage to read: give a bundle (--artifacts) or --events")
    paths = sorted(glob.glob(os.path.join(rollup_dir, "*.json")))
    if not paths:
        raise DataError("no rollups here; build the bundle first (`make all`, or `make demo`)", where=rollup_dir)
    for path in paths:
        doc = read_doc(path)
        if not isinstance(doc, dict) or doc.get("schema_version") != 1 or not isinstance(doc.get("rows"), list):
            raise DataError("not a version-1 rollup document", where=path)
        for row in doc["rows"]:
            slot, provider, model = row[0], row[1], row[2]
            usage = row[N_KEY + 3 :]
            key = (periods.of_ms(slot)[2], provider, model, None)
            acc = table.setdefault(key, [0, 0])
            acc[0] += row[N_KEY]
            acc[1] += sum(usage[:6])
    return table


def _unpriced(table: dict, book: Book, month: str | None) -> tuple[list[dict], dict]:
    groups: dict[tuple, dict] = {}
    totals = {"events": 0, "tokens": 0, "priced_events": 0, "priced_tokens": 0}
    for (m, provider, model, raw), (events, tokens) in table.items():
        if month and m != month:
            continue
        totals["events"] += events
        totals["tokens"] += tokens
        if book.resolve(model, raw) is not None:
            totals["priced_events"] += events
            totals["priced_tokens"] += tokens
            continue
        g = groups.setdefault((provider, model), {"provider": provider, "model": model, "events": 0, "tokens": 0, "months": {}})
        g["events"] += events
        g["tokens"] += tokens
        g["months"][m] = g["months"].get(m, 0) + tokens
    out = []
    for key in sorted(groups, key=lambda k: (-groups[k]["tokens"], k)):
        g = groups[key]
        g["months"] = dict(sorted(g["months"].items()))
        out.append(g)
    return out, totals


# ------------------------------------------------------------------ check
def check_report(table: dict, book: Book, *, month: str, zone_name: str, allow_unpriced: bool = False) -> dict:
    unpriced, totals = _unpriced(table, book, month)
    for u in unpriced:
        u.pop("months", None)
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "pricing-check",
        "book": book.describe(),
        "month": month,
        "timezone": zone_name,
        "allow_unpriced": allow_unpriced,
        "ok": allow_unpriced or not unpriced,
        "events": totals["events"],
        "tokens": totals["tokens"],
        "unpriced_events": totals["events"] - totals["priced_events"],
        "unpriced_tokens": totals["tokens"] - totals["priced_tokens"],
        "unpriced": unpriced,
    }


# ------------------------------------------------------------------ coverage
def normalize_name(name: str) -> str:
    """A name in the shape the book uses, for comparison only: lower-case, no vendor or
    router path, no date, Claude in ``claude-<family>-<major>-<minor>`` order."""
    n = (name or "").strip().lower()
    n = re.sub(r"^custom:", "", n)  # Droid's bring-your-own-key prefix
    n = n.rsplit("/", 1)[-1]
    n = canonical_model(n)
    n = re.sub(r"-(20\d{2}-\d{2}-\d{2})$", "", n)
    n = n.replace("_", "-").replace(" ", "-")
    m = re.match(r"^claude-(\d+(?:[.-]\d+)?)-([a-z]+)(.*)$", n)
    if m:
        n = f"claude-{m.group(2)}-{m.group(1)}{m.group(3)}"
    if n.startswith("claude-"):
        n = n.replace(".", "-")
    return n


def suggestions(name: str, book: Book, limit: int = 3) -> list[dict]:
    """The book's nearest names for ``name``, best first: ``{name, target, score, reason}``."""
    known = book.names()
    by_norm: dict[str, str] = {}
    for k in known:
        by_norm.setdefault(normalize_name(k), k)

    def target(k: str) -> str:
        price = book.resolve(k)
        return price.name if price else k

    norm = normalize_name(name)
    if norm in by_norm:
        k = by_norm[norm]
        return [{"name": k, "target": target(k), "score": 1.0, "reason": "the same name once spelling is normalized"}]
    stripped = norm
    while EFFORT_SUFFIX.search(stripped):
        stripped = EFFORT_SUFFIX.sub("", stripped)
        if stripped in by_norm:
            k = by_norm[stripped]
            return [{"name": k, "target": target(k), "score": 0.95, "reason": "a reasoning-effort or thinking variant, billed at the model's rates"}]
    out = []
    seen_targets = set()
    matcher = difflib.SequenceMatcher(a=norm, autojunk=False)
    scored = []
    for n, k in by_norm.items():
        matcher.set_seq2(n)
        if matcher.real_quick_ratio() < 0.6 or matcher.quick_ratio() < 0.6:
            continue
        scored.append((round(matcher.ratio(), 3), k))
    for score, k in sorted(scored, key=lambda s: (-s[0], s[1])):
        if score < 0.6:
            break
        t = target(k)
        if t in seen_targets:
            continue
        seen_targets.add(t)
        # a similar name is a hint, never a certainty: cap below the patch threshold
        out.append({"name": k, "target": t, "score": min(score, 0.89), "reason": "a similar name"})
        if len(out) == limit:
            break
    return out


def coverage_report(table: dict, book: Book, *, month: str | None, zone_name: str) -> dict:
    unpriced, totals = _unpriced(table, book, month)
    for u in unpriced:
        u["suggestions"] = suggestions(u["model"], book)
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "pricing-coverage",
        "book": book.describe(),
        "month": month,
        "timezone": zone_name,
        "ok": not unpriced,
        "events": totals["events"],
        "tokens": totals["tokens"],
        "priced_tokens": totals["priced_tokens"],
        "unpriced_tokens": totals["tokens"] - totals["priced_tokens"],
        "coverage": round(totals["priced_tokens"] / totals["tokens"], 6) if totals["tokens"] else 1.0,
        "unpriced": unpriced,
    }


def patch_from_coverage(coverage: dict) -> dict:
    """Aliases for confident suggestions; everything else listed under ``todo``."""
    aliases: dict[str, str] = {}
    todo = []
    for u in coverage["unpriced"]:
        best = u["suggestions"][0] if u["suggestions"] else None
        name = u["model"].lower()
        if best and best["score"] >= PATCH_MIN_SCORE and aliases.get(name, best["target"]) == best["target"]:
            aliases[name] = best["target"]
        else:
            todo.append({"provider": u["provider"], "model": u["model"], "tokens": u["tokens"], "suggestions": u["suggestions"]})
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "kind": "pricing-patch",
        "created_by": "price coverage",
        "book": coverage["book"],
        "aliases": dict(sorted(aliases.items())),
        "models": {},
        "providers": {},
        "todo": todo,
    }


# ------------------------------------------------------------------ apply
def check_patch(patch, where: str) -> None:
    if not isinstance(patch, dict) or patch.get("schema_version") != 1:
        raise DataError("not a pricing patch (a JSON object with schema_version 1)", where=where)
    for section in ("aliases", "models", "providers", "provider_aliases"):
        if section in patch and not isinstance(patch[section], dict):
            raise DataError("must be an object", where=f"{where}: {section}")
    for name, entry in (patch.get("models") or {}).items():
        if not isinstance(entry, dict):
            raise DataError("must be an object", where=f"{where}: models.{name}")


def apply_patch(doc: dict, patch: dict, *, overwrite: bool = False) -> tuple[dict, list[dict], list[dict]]:
    """(new book document, changes, conflicts). A conflict is a value the patch would
    change; with ``overwrite`` it becomes a ``replace`` change instead."""
    import copy

    new = copy.deepcopy(doc)
    changes: list[dict] = []
    conflicts: list[dict] = []

    def put(container: dict, key, value, path: str) -> bool:
        """Set container[key] = value under the rules; True when the book changed."""
        if key not in container:
            container[key] = copy.deepcopy(value)
            changes.append({"op": "add", "path": path, "new": value})
            return True
        if container[key] == value:
            return False
        if overwrite:
            changes.append({"op": "replace", "path": path, "old": container[key], "new": value})
            container[key] = copy.deepcopy(value)
            return True
        conflicts.append({"path": path, "old": container[key], "new": value, "message": "exists with another value; kept (use --overwrite to replace it)"})
        return False

    models = new.setdefault("models", {})
    lower = {n.lower(): n for n in models}
    for name, entry in sorted((patch.get("models") or {}).items()):
        existing = lower.get(name.lower())
        if existing is None:
            put(models, name.lower(), entry, f"models.{name.lower()}")
            lower[name.lower()] = name.lower()
            continue
        target = models[existing]
        changed = False
        for field in RATE_FIELDS + ("tiers",):
            if field in entry:
                changed |= put(target, field, entry[field], f"models.{existing}.{field}")
        if changed:  # the numbers changed, so their provenance and notes do too
            for field in ("provenance", "notes"):
                if field in entry and target.get(field) != entry[field]:
                    changes.append({"op": "replace" if field in target else "add", "path": f"models.{existing}.{field}", "old": target.get(field), "new": entry[field]})
                    target[field] = copy.deepcopy(entry[field])
    aliases = new.setdefault("aliases", {})
    for alias, target in sorted((patch.get("aliases") or {}).items()):
        if alias.lower() in lower:
            conflicts.append({"path": f"aliases.{alias}", "old": None, "new": target, "message": "is a model name; an alias cannot replace a model"})
            continue
        put(aliases, alias.lower(), target, f"aliases.{alias.lower()}")
    for section in ("providers", "provider_aliases"):
        for name, value in sorted((patch.get(section) or {}).items()):
            table = new.setdefault(section, {})
            if section == "providers" and isinstance(value, dict):
                entry = table.setdefault(name, {})
                for field, v in sorted(value.items()):
                    put(entry, field, v, f"providers.{name}.{field}")
            else:
                put(table, name, value, f"{section}.{name}")
    for section in ("aliases", "models", "providers", "provider_aliases"):
        if isinstance(new.get(section), dict):
            new[section] = dict(sorted(new[section].items()))
    return new, changes, conflicts
