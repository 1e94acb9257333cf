"""Building a pricing book: from LiteLLM's price list, hand-kept overrides, or the older book format.

``import_litellm`` is deterministic: the same LiteLLM copy, overrides and source date give
byte-identical books, whatever the order of the copy's keys, and no clock is read.

Which LiteLLM entries become models (see docs/pricing.md, "Where the rates come from"):

- chat/responses entries of the model families the seven sources log (``FAMILIES``),
  from the vendor's own API first and a cloud reseller's list price only when the vendor's
  is missing (``PROVIDER_PRIORITY``: e.g. Claude Opus 4.1 is only on Bedrock in recent
  copies); regional Bedrock ids (``us.``, ``eu.``, ...) carry a premium and are never used;
- names are what events carry after ``event.canonical_model``: lower-case, no vendor
  prefix, no ``-YYYYMMDD`` (``anthropic.claude-opus-4-1-20250805-v1:0`` -> ``claude-opus-4-1``);
- an entry without input and output prices, or with a zero one (free tiers, placeholders),
  is left out and counted: a model missing from the book is reported as unpriced, never $0.
"""
from __future__ import annotations

import hashlib
import os
import re

from scripts.core.event import LONG_CONTEXT_THRESHOLDS, canonical_model
from scripts.core.pricing_book import RATE_FIELDS, book_problems, is_number
from scripts.shared_io import DataError

# LiteLLM per-token field -> book per-MTok field
LITELLM_RATES = {
    "input_cost_per_token": "input_usd_per_mtok",
    "output_cost_per_token": "output_usd_per_mtok",
    "cache_creation_input_token_cost": "cache_write_5m_usd_per_mtok",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h_usd_per_mtok",
    "cache_read_input_token_cost": "cache_read_usd_per_mtok",
}
TIER_SUFFIX = re.compile(r"^(.*)_above_(\d+)k_tokens$")
CHAT_MODES = ("chat", "responses")

# (family, name pattern after canonicalization, LiteLLM providers in order of preference)
FAMILIES = (
    ("anthropic", re.compile(r"^claude-(\d-\d-[a-z]+|\d-[a-z]+|[a-z]+-\d+(-\d+)?)$"), ("anthropic", "bedrock_converse", "bedrock", "vertex_ai-anthropic_models")),
    ("openai", re.compile(r"^(gpt-(4\.1|4o|[5-9])(\.\d+)?|o[1-9])(-[a-z0-9]+)*$"), ("openai",)),
    ("google", re.compile(r"^gemini-(\d+(\.\d+)?-(pro|flash)(-[a-z0-9.]+)*|(pro|flash|flash-lite)-latest)$"), ("gemini", "vertex_ai-language-models")),
    ("xai", re.compile(r"^grok-[a-z0-9.-]+$"), ("xai",)),
    ("deepseek", re.compile(r"^deepseek-[a-z0-9.-]+$"), ("deepseek",)),
    ("moonshot", re.compile(r"^kimi-[a-z0-9.-]+$"), ("moonshot",)),
    ("zhipu", re.compile(r"^glm-[a-z0-9.-]+$"), ("zai",)),
    ("alibaba", re.compile(r"^(qwen|qwq)[a-z0-9.-]*$"), ("dashscope",)),
    ("minimax", re.compile(r"^minimax-[a-z0-9.-]+$"), ("minimax",)),
    ("mistral", re.compile(r"^(devstral|codestral)[a-z0-9.-]*$"), ("mistral",)),
)
# Not a coding chat model, whatever the family pattern says.
EXCLUDE = re.compile(r"(audio|realtime|tts|transcribe|image|search|embedding|-live|computer-use|robotics|moderation|deep-research|vision|omni)")
# Key prefixes (before the first '/') whose `alias_of` entries become book aliases.
ALIAS_PREFIXES = ("", "anthropic", "openai", "gemini", "vertex_ai", "xai", "deepseek", "moonshot", "zai", "dashscope", "minimax", "mistral", "bedrock")
_BEDROCK_OK = re.compile(r"^(anthropic\.)?claude-[^/]*$")
_DATED = re.compile(r"^(.+?)-(\d{4}-\d{2}-\d{2}|\d{4}|latest)$")
_CLAUDE_NEW = re.compile(r"^claude-([a-z]+)-(\d+)(?:-(\d+))?$")
_CLAUDE_OLD = re.compile(r"^claude-(\d)-(\d)-([a-z]+)$")


def litellm_name(key: str) -> str:
    """The name an event carries for a LiteLLM key: ``vertex_ai/claude-opus-4-5@20251101``,
    ``anthropic.claude-opus-4-5-20251101-v1:0`` and ``claude-opus-4-5`` are one model."""
    name = key.rsplit("/", 1)[-1].strip().lower()
    name = re.sub(r"^(?:[a-z-]+\.)?anthropic\.", "", name)
    name = re.sub(r"-v\d+(?::\d+)?$", "", name)
    name = re.sub(r"@(default|latest)$", "", name)
    return canonical_model(name)


def _family(name: str):
    for family, pattern, providers in FAMILIES:
        if pattern.match(name) and not EXCLUDE.search(name):
            return family, providers
    return None, ()


def per_mtok(per_token: float) -> float | int:
    """USD per token -> USD per million tokens, without float noise (3e-06 -> 3)."""
    value = round(per_token * 1_000_000, 9)
    return int(value) if value == int(value) else value


def _rates(entry: dict, suffix: str = "") -> dict:
    out = {}
    for src, dst in LITELLM_RATES.items():
        v = entry.get(src + suffix)
        if is_number(v):
            out[dst] = per_mtok(v)
    return out


def _convert(key: str, entry: dict, family: str, source_date: str) -> tuple[dict | None, str]:
    """One LiteLLM entry as a book model entry, or (None, why it is left out)."""
    rates = _rates(entry)
    if "input_usd_per_mtok" not in rates or "output_usd_per_mtok" not in rates:
        return None, "no input/output price"
    if rates["input_usd_per_mtok"] <= 0 or rates["output_usd_per_mtok"] <= 0:
        return None, "zero input or output price (free tier or placeholder)"
    derived = []
    for field in ("cache_write_5m_usd_per_mtok", "cache_write_1h_usd_per_mtok", "cache_read_usd_per_mtok"):
        if rates.get(field) == 0:
            del rates[field]
            derived.append(f"{field}: LiteLLM lists 0; the book's default applies")
    inp = rates["input_usd_per_mtok"]
    if family == "anthropic":
        # Anthropic bills cache writes at 1.25x (5 min) / 2x (1 h) input, reads at 0.1x.
        for field, k in (("cache_write_5m_usd_per_mtok", 1.25), ("cache_write_1h_usd_per_mtok", 2), ("cache_read_usd_per_mtok", 0.1)):
            if field not in rates:
                rates[field] = per_mtok(inp * k / 1_000_000)
                derived.append(f"{field} = {k} x input (Anthropic's cache pricing; not in LiteLLM)")
    tiers = {}
    ignored = set()
    for field in entry:
        m = TIER_SUFFIX.match(field)
        if not m or m.group(1) not in LITELLM_RATES or not is_number(entry[field]):
            continue
        threshold = int(m.group(2)) * 1000
        if threshold not in LONG_CONTEXT_THRESHOLDS:
            ignored.add(threshold)
            continue
        tiers.setdefault(threshold, {})[LITELLM_RATES[m.group(1)]] = per_mtok(entry[field])
    for threshold in sorted(ignored):
        derived.append(f"ignored: LiteLLM's tier above {threshold // 1000}k prompt tokens (tiers must be at {', '.join(str(t // 1000) + 'k' for t in LONG_CONTEXT_THRESHOLDS)})")
    model = dict(rates)
    tier_list = [dict(above_prompt_tokens=t, **r) for t, r in sorted(tiers.items()) if "input_usd_per_mtok" in r or "output_usd_per_mtok" in r]
    if tier_list:
        model["tiers"] = tier_list
    model["provenance"] = {"source": f"litellm:{key}", "updated_at": source_date}
    if derived:
        model["provenance"]["derived"] = derived
    return model, ""


def _same_rates(a: dict, b: dict) -> bool:
    return all(a.get(f) == b.get(f) for f in RATE_FIELDS) and a.get("tiers") == b.get("tiers")


def import_litellm(prices: dict, *, source_date: str, source_label: str = "litellm") -> tuple[dict, dict]:
    """(book, report) from a parsed LiteLLM price list. Unknown fields and non-model
    entries (``sample_spec``, rule tables) are ignored; nothing here reads a clock."""
    if not isinstance(prices, dict):
        raise DataError("not a LiteLLM price list (expected a JSON object of models)")
    candidates: dict[str, list] = {}
    skipped: dict[str, int] = {}
    raw_names: dict[str, set] = {}
    for key in sorted(prices):
        entry = prices[key]
        if not isinstance(entry, dict) or key == "sample_spec" or entry.get("mode") not in CHAT_MODES:
            continue
        provider = entry.get("litellm_provider")
        name = litellm_name(key)
        family, providers = _family(name)
        if family is None or provider not in providers:
            continue
        if provider.startswith("bedrock") and not _BEDROCK_OK.match(key.lower()):
            continue  # regional or commitment-priced Bedrock ids carry a premium
        model, why = _convert(key, entry, family, source_date)
        if model is None:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        rank = (providers.index(provider), key.rsplit("/", 1)[-1].lower() != name, len(key), key)
        candidates.setdefault(name, []).append((rank, key, model))
        raw = re.sub(r"-v\d+(?::\d+)?$", "", re.sub(r"^(?:[a-z-]+\.)?anthropic\.", "", key.rsplit("/", 1)[-1].lower()))
        if raw != name and re.search(r"-20\d{6}$", raw):
            raw_names.setdefault(name, set()).add((raw, model["input_usd_per_mtok"], model["output_usd_per_mtok"]))
    models = {name: min(cands)[2] for name, cands in candidates.items()}
    aliases: dict[str, str] = {}
    # A dated or -latest name with exactly the rates of its undated model is an alias of it.
    for name in sorted(models):
        m = _DATED.match(name)
        if m and m.group(1) in models and _same_rates(models[name], models[m.group(1)]):
            aliases[name] = m.group(1)
    for name in aliases:
        del models[name]
    # Dated snapshot names (already resolved by dropping the date, listed for the reader).
    for name, raws in raw_names.items():
        if name not in models:
            continue
        for raw, inp, out in sorted(raws):
            if (inp, out) == (models[name]["input_usd_per_mtok"], models[name]["output_usd_per_mtok"]):
                aliases.setdefault(raw, name)
    # LiteLLM's own `-latest` pointers, where both ends are models we import.
    for key in sorted(prices, key=lambda k: (k.count("/"), k)):
        entry = prices[key]
        if not isinstance(entry, dict) or not isinstance(entry.get("alias_of"), str):
            continue
        prefix = key.split("/", 1)[0] if "/" in key else ""
        alias, target = litellm_name(key), litellm_name(entry["alias_of"])
        target = aliases.get(target, target)
        if prefix in ALIAS_PREFIXES and target in models and alias not in models:
            aliases.setdefault(alias, target)
    # How Cursor, OpenCode and Droid spell Claude names: claude-4.5-sonnet, claude-sonnet-4.5.
    for name in sorted(models):
        for alias in claude_spellings(name):
            if alias not in models:
                aliases.setdefault(alias, name)
    book = {
        "schema_version": 1,
        "meta": {"source": source_label, "updated_at": source_date},
        "models": dict(sorted(models.items())),
        "aliases": dict(sorted(aliases.items())),
        "providers": {},
    }
    report = {
        "models": len(models),
        "aliases": len(aliases),
        "skipped": dict(sorted(skipped.items())),
        "chosen": {name: min(c)[1] for name, c in sorted(candidates.items()) if name in models},
    }
    return book, report


def claude_spellings(name: str) -> list[str]:
    """Other spellings of a Claude model name seen in Cursor, OpenCode and Droid logs."""
    m = _CLAUDE_NEW.match(name)
    if m:
        family, major, minor = m.groups()
        if family in ("instant",):
            return []
        version = f"{major}.{minor}" if minor else major
        out = [f"claude-{version}-{family}", f"claude-{version}-{family}-thinking"]
        if minor:
            out.insert(0, f"claude-{family}-{version}")
        return out
    m = _CLAUDE_OLD.match(name)
    if m:
        major, minor, family = m.groups()
        out = [f"claude-{major}.{minor}-{family}"]
        if (major, minor) == ("3", "7"):  # the first Claude with extended thinking
            out.append(f"claude-{major}.{minor}-{family}-thinking")
        return out
    return []


def merge_overrides(book: dict, overrides: dict, where: str) -> dict:
    """The book with hand-kept overrides applied: a model's fields replace the imported
    ones (``tiers`` as a whole), new models are added, aliases and providers are merged.
    Every overridden model must say where its numbers come from."""
    if not isinstance(overrides, dict) or overrides.get("schema_version") != 1:
        raise DataError("an overrides file is a JSON object with schema_version 1", where=where)
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in book.items()}
    models = out.setdefault("models", {})
    for name, entry in (overrides.get("models") or {}).items():
        key = f"{where}: models.{name}"
        if not isinstance(entry, dict):
            raise DataError("must be an object", where=key)
        prov = entry.get("provenance")
        if not isinstance(prov, dict) or not prov.get("source") or not prov.get("updated_at"):
            raise DataError("every override needs provenance.source and provenance.updated_at", where=key)
        name = name.lower()
        base = models.get(name)
        merged = dict(base or {})
        merged.update({k: v for k, v in entry.items() if k != "provenance"})
        merged["provenance"] = dict(prov)
        if base is not None and "based_on" not in prov:
            merged["provenance"]["based_on"] = base.get("provenance", {}).get("source", "import")
        models[name] = merged
    out["models"] = dict(sorted(models.items()))
    # a model added by the overrides wins over a generated alias of the same name
    aliases = {a: t for a, t in (out.get("aliases") or {}).items() if a not in models}
    for alias, target in (overrides.get("aliases") or {}).items():
        if alias.lower() in models:
            raise DataError("is a model name, so it cannot be an alias", where=f"{where}: aliases.{alias}")
        aliases[alias.lower()] = target.lower() if isinstance(target, str) else target
    out["aliases"] = dict(sorted(aliases.items()))
    providers = dict(out.get("providers") or {})
    for name, entry in (overrides.get("providers") or {}).items():
        providers[name] = {**providers.get(name, {}), **entry} if isinstance(entry, dict) else entry
    out["providers"] = dict(sorted(providers.items()))
    if overrides.get("provider_aliases"):
        out["provider_aliases"] = dict(sorted({**(out.get("provider_aliases") or {}), **overrides["provider_aliases"]}.items()))
    problems = book_problems(out)
    if problems:
        path, message = problems[0]
        raise DataError(message, where=f"{where}: {path}")
    return out


def import_legacy(doc, where: str) -> dict:
    """A version-1 book from the older format (``providers.<p>.models``; see
    ../shared/data/README.md). Its defaults become explicit rates: cache write = input,
    cache read = 0.1 x input, tool input = input, tool output = output."""
    if not isinstance(doc, dict) or not isinstance(doc.get("providers"), dict):
        raise DataError("not the older pricing format (expected providers.<provider>.models)", where=where)
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    source = meta.get("source") or os.path.basename(where)
    updated = meta.get("updated_at")
    models: dict[str, dict] = {}
    origin: dict[str, str] = {}
    aliases: dict[str, str] = {}
    providers: dict[str, dict] = {}
    for pname in sorted(doc["providers"]):
        pentry = doc["providers"][pname]
        pwhere = f"{where}: providers.{pname}"
        if not isinstance(pentry, dict):
            raise DataError("must be an object", where=pwhere)
        fee = pentry.get("subscription_usd_month", 0)
        if fee is not None and (not is_number(fee) or fee < 0):
            raise DataError("must be a number, at least 0", where=f"{pwhere}.subscription_usd_month")
        providers[pname] = {"subscription_usd_month": fee or 0}
        for mname, m in sorted((pentry.get("models") or {}).items()):
            mwhere = f"{pwhere}.models.{mname}"
            if not isinstance(m, dict):
                raise DataError("must be an object", where=mwhere)
            for f in ("input_usd_per_mtok", "output_usd_per_mtok"):
                if not is_number(m.get(f)) or m[f] < 0:
                    raise DataError("must be a number, at least 0", where=f"{mwhere}.{f}")
            inp, out = m["input_usd_per_mtok"], m["output_usd_per_mtok"]

            def rate(field, default):
                v = m.get(field)
                if v is None:
                    return default
                if not is_number(v) or v < 0:
                    raise DataError("must be a number, at least 0", where=f"{mwhere}.{field}")
                return v

            cache_write = rate("cache_write_usd_per_mtok", inp)
            entry = {
                "input_usd_per_mtok": inp,
                "output_usd_per_mtok": out,
                "cache_write_5m_usd_per_mtok": cache_write,
                "cache_write_1h_usd_per_mtok": cache_write,
                "cache_read_usd_per_mtok": rate("cache_read_usd_per_mtok", round(inp * 0.1, 9)),
                "tool_input_usd_per_mtok": rate("tool_input_usd_per_mtok", inp),
                "tool_output_usd_per_mtok": rate("tool_output_usd_per_mtok", out),
                "provenance": {"source": f"{source} (providers.{pname}.models.{mname})", **({"updated_at": updated} if updated else {})},
            }
            key = mname.lower()
            if key in models and any(models[key][f] != entry[f] for f in RATE_FIELDS):
                raise DataError(f"priced differently in {origin[key]}; a version-1 book has one price per model", where=mwhere)
            models.setdefault(key, entry)
            origin.setdefault(key, f"providers.{pname}.models.{mname}")
        for alias, target in sorted((pentry.get("model_aliases") or {}).items()):
            if not isinstance(target, str):
                raise DataError("must be a model name", where=f"{pwhere}.model_aliases.{alias}")
            if aliases.get(alias.lower(), target.lower()) != target.lower():
                raise DataError(f"already an alias of {aliases[alias.lower()]!r}", where=f"{pwhere}.model_aliases.{alias}")
            aliases[alias.lower()] = target.lower()
    book = {
        "schema_version": 1,
        "meta": {"source": f"price import-book {os.path.basename(where)} (meta.source: {source})", **({"updated_at": updated} if updated else {})},
        "models": dict(sorted(models.items())),
        "aliases": dict(sorted(aliases.items())),
        "providers": providers,
    }
    if isinstance(doc.get("provider_aliases"), dict):
        book["provider_aliases"] = dict(sorted(doc["provider_aliases"].items()))
    problems = book_problems(book)
    if problems:
        path, message = problems[0]
        raise DataError(message, where=f"{where} (converted): {path}")
    return book


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
