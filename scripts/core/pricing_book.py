"""The pricing book (``pricing.json``): checking, loading, lookup and the cost of a usage.

Rates are USD per million tokens, so ``tokens x rate`` is a cost in micro-dollars:
money is kept as integer micro-USD from the first multiplication on, rounded once per
report row (half to even), and every total is the sum of its rows.

Long-context tiers follow the vendors' rule: when a request's prompt (input + cache
write + cache read + tool input) exceeds a tier's ``above_prompt_tokens``, the whole
request is billed at that tier's rates. Thresholds must be among
``event.LONG_CONTEXT_THRESHOLDS`` because events are classified against those. A rate a
tier leaves out is the base rate scaled like the tier's input (prompt-side rates) or
output (tool output) rate, which is how every vendor's long-context price list reads.

Defaults for a model's missing rates: cache write (5 min) = input, cache write (1 h) =
cache write (5 min), cache read = 0.1 x input, tool input = input, tool output = output.
See docs/pricing.md and docs/contracts/pricing-book.md.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from scripts.core.event import LONG_CONTEXT_THRESHOLDS, USAGE_KEYS, canonical_model
from scripts.shared_io import DataError, read_json_file

BOOK_SCHEMA_VERSION = 1
RATE_FIELDS = (
    "input_usd_per_mtok",
    "output_usd_per_mtok",
    "cache_write_5m_usd_per_mtok",
    "cache_write_1h_usd_per_mtok",
    "cache_read_usd_per_mtok",
    "tool_input_usd_per_mtok",
    "tool_output_usd_per_mtok",
)
TOP_FIELDS = ("schema_version", "meta", "models", "aliases", "providers", "provider_aliases", "notes")
META_FIELDS_REQUIRED_BY_AUDIT = ("source", "updated_at")
MODEL_FIELDS = RATE_FIELDS + ("tiers", "provenance", "notes")
TIER_FIELDS = ("above_prompt_tokens",) + RATE_FIELDS + ("notes",)
PROVENANCE_FIELDS = ("source", "updated_at", "based_on", "derived")
PROVIDER_FIELDS = ("subscription_usd_month", "notes")
DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$")
# Values a person leaves behind to fill in later; never a price.
PLACEHOLDER = re.compile(r"^\s*(|todo|tbd|fixme|xxx|\?+|n/?a|placeholder|unknown|changeme|<.*>)\s*$", re.IGNORECASE)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_placeholder(v) -> bool:
    return v is None or (isinstance(v, str) and bool(PLACEHOLDER.match(v)))


def _type_problem(v, what: str) -> str:
    if is_placeholder(v):
        return f"placeholder value {v!r}, not {what}"
    return f"must be {what}"


def _unknown_fields(obj: dict, allowed, where: str) -> list[tuple[str, str]]:
    """(key path, "unknown field") for each key of ``obj`` that is not ``allowed``."""
    return [(f"{where}.{key}" if where else key, "unknown field") for key in obj if key not in allowed]


def book_problems(doc) -> list[tuple[str, str]]:
    """Every structural problem of a book document as ``(key path, message)``.

    This is the schema (schemas/pricing-book.v1.schema.json) in code, with messages that
    name the key: ``load_book`` stops at the first, ``price lint`` lists them all.
    """
    out: list[tuple[str, str]] = []
    if not isinstance(doc, dict):
        return [("", "a pricing book is a JSON object")]
    if doc.get("schema_version") != BOOK_SCHEMA_VERSION:
        if "schema_version" not in doc and isinstance(doc.get("providers"), dict) and any(
            isinstance(p, dict) and "models" in p for p in doc["providers"].values()
        ):
            return [("", "this is the older pricing format; convert it with `price import-book` first")]
        out.append(("schema_version", f"must be {BOOK_SCHEMA_VERSION}"))
    out.extend(_unknown_fields(doc, TOP_FIELDS, ""))
    meta = doc.get("meta")
    if meta is not None:
        if not isinstance(meta, dict):
            out.append(("meta", "must be an object"))
        else:
            for key in ("source", "updated_at"):
                if key in meta and not isinstance(meta[key], str):
                    out.append((f"meta.{key}", _type_problem(meta[key], "a string")))
            if isinstance(meta.get("updated_at"), str) and not DATE_PREFIX.match(meta["updated_at"]):
                out.append(("meta.updated_at", "must be a date, YYYY-MM-DD"))
    models = doc.get("models")
    if not isinstance(models, dict):
        out.append(("models", "missing or not an object"))
        models = {}
    seen: dict[str, str] = {}
    for name, entry in models.items():
        where = f"models.{name}"
        if not name.strip():
            out.append((where, "a model name cannot be empty"))
        if name.lower() in seen:
            out.append((where, f"same name as models.{seen[name.lower()]} (names are case-insensitive)"))
        seen[name.lower()] = name
        if not isinstance(entry, dict):
            out.append((where, "must be an object"))
            continue
        out.extend(_unknown_fields(entry, MODEL_FIELDS, where))
        for key in ("input_usd_per_mtok", "output_usd_per_mtok"):
            if key not in entry:
                out.append((f"{where}.{key}", "missing (input and output rates are required)"))
        out.extend(_rate_problems(entry, where))
        tiers = entry.get("tiers")
        if tiers is not None:
            if not isinstance(tiers, list):
                out.append((f"{where}.tiers", "must be a list"))
            else:
                for i, tier in enumerate(tiers):
                    tw = f"{where}.tiers[{i}]"
                    if not isinstance(tier, dict):
                        out.append((tw, "must be an object"))
                        continue
                    out.extend(_unknown_fields(tier, TIER_FIELDS, tw))
                    threshold = tier.get("above_prompt_tokens")
                    if threshold not in LONG_CONTEXT_THRESHOLDS or isinstance(threshold, bool):
                        out.append((f"{tw}.above_prompt_tokens", f"must be one of {', '.join(map(str, LONG_CONTEXT_THRESHOLDS))}"))
                    out.extend(_rate_problems(tier, tw))
        prov = entry.get("provenance")
        if prov is not None:
            if not isinstance(prov, dict):
                out.append((f"{where}.provenance", "must be an object"))
            else:
                out.extend(_unknown_fields(prov, PROVENANCE_FIELDS, f"{where}.provenance"))
                for key in ("source", "updated_at", "based_on"):
                    if key in prov and not isinstance(prov[key], str):
                        out.append((f"{where}.provenance.{key}", _type_problem(prov[key], "a string")))
                if isinstance(prov.get("updated_at"), str) and not DATE_PREFIX.match(prov["updated_at"]):
                    out.append((f"{where}.provenance.updated_at", "must be a date, YYYY-MM-DD"))
                if "derived" in prov and not (isinstance(prov["derived"], list) and all(isinstance(x, str) for x in prov["derived"])):
                    out.append((f"{where}.provenance.derived", "must be a list of strings"))
    for section in ("aliases", "provider_aliases"):
        table = doc.get(section)
        if table is None:
            continue
        if not isinstance(table, dict):
            out.append((section, "must be an object"))
            continue
        for alias, target in table.items():
            if not isinstance(target, str) or not target.strip():
                out.append((f"{section}.{alias}", _type_problem(target, "a name")))
            elif section == "aliases" and target.lower() not in seen:
                out.append((f"aliases.{alias}", f"points to unknown model {target!r}"))
    providers = doc.get("providers")
    if providers is not None:
        if not isinstance(providers, dict):
            out.append(("providers", "must be an object"))
        else:
            for name, entry in providers.items():
                where = f"providers.{name}"
                if not isinstance(entry, dict):
                    out.append((where, "must be an object"))
                    continue
                out.extend(_unknown_fields(entry, PROVIDER_FIELDS, where))
                fee = entry.get("subscription_usd_month")
                if "subscription_usd_month" in entry:
                    if not is_number(fee):
                        out.append((f"{where}.subscription_usd_month", _type_problem(fee, "a number")))
                    elif fee < 0:
                        out.append((f"{where}.subscription_usd_month", "must not be negative"))
                if "notes" in entry and not isinstance(entry["notes"], str):
                    out.append((f"{where}.notes", "must be a string"))
    return out


def _rate_problems(entry: dict, where: str) -> list[tuple[str, str]]:
    out = []
    for key in RATE_FIELDS:
        if key not in entry:
            continue
        v = entry[key]
        if not is_number(v):
            out.append((f"{where}.{key}", _type_problem(v, "a number")))
        elif v < 0:
            out.append((f"{where}.{key}", "must not be negative"))
    if "notes" in entry and not isinstance(entry["notes"], str):
        out.append((f"{where}.notes", "must be a string"))
    return out


@dataclass(frozen=True)
class Rates:
    """Effective per-MTok rates for one model (defaults filled in)."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    tool_input: float
    tool_output: float

    @classmethod
    def from_entry(cls, entry: dict, base: "Rates | None" = None) -> "Rates":
        """A model's rates, or (with ``base``) a tier's: a tier's missing rate is the
        base rate scaled by the tier's input (prompt side) or output multiplier."""

        def get(field):
            v = entry.get(field)
            return float(v) if is_number(v) else None

        if base is None:
            inp, out = get("input_usd_per_mtok"), get("output_usd_per_mtok")
            if inp is None or out is None:
                raise ValueError("input and output rates are required")
            cw5 = _first(get("cache_write_5m_usd_per_mtok"), inp)
            return cls(
                input=inp,
                output=out,
                cache_write_5m=cw5,
                cache_write_1h=_first(get("cache_write_1h_usd_per_mtok"), cw5),
                cache_read=_first(get("cache_read_usd_per_mtok"), inp * 0.1),
                tool_input=_first(get("tool_input_usd_per_mtok"), inp),
                tool_output=_first(get("tool_output_usd_per_mtok"), out),
            )
        inp = _first(get("input_usd_per_mtok"), base.input)
        out = _first(get("output_usd_per_mtok"), base.output)
        k_in = inp / base.input if base.input else 1.0
        k_out = out / base.output if base.output else 1.0
        return cls(
            input=inp,
            output=out,
            cache_write_5m=_first(get("cache_write_5m_usd_per_mtok"), base.cache_write_5m * k_in),
            cache_write_1h=_first(get("cache_write_1h_usd_per_mtok"), base.cache_write_1h * k_in),
            cache_read=_first(get("cache_read_usd_per_mtok"), base.cache_read * k_in),
            tool_input=_first(get("tool_input_usd_per_mtok"), base.tool_input * k_in),
            tool_output=_first(get("tool_output_usd_per_mtok"), base.tool_output * k_out),
        )

    def micro_usd(self, u) -> float:
        """Cost of usage ``u`` (a dict of USAGE_KEYS or a list in that order), micro-USD."""
        if not isinstance(u, dict):
            u = dict(zip(USAGE_KEYS, u))
        cw1h = u.get("cache_write_1h_tokens", 0)
        return (
            u.get("input_tokens", 0) * self.input
            + u.get("output_tokens", 0) * self.output
            + (u.get("cache_write_tokens", 0) - cw1h) * self.cache_write_5m
            + cw1h * self.cache_write_1h
            + u.get("cache_read_tokens", 0) * self.cache_read
            + u.get("tool_input_tokens", 0) * self.tool_input
            + u.get("tool_output_tokens", 0) * self.tool_output
        )


def _first(value, default):
    return default if value is None else value


@dataclass
class ModelPrice:
    name: str
    base: Rates
    tiers: list[tuple[int, Rates]]  # (above_prompt_tokens, rates), ascending
    provenance: dict

    def rates_for_class(self, ctx_class: int) -> Rates:
        """Rates for a request whose prompt exceeded ``ctx_class`` (0 = no threshold)."""
        chosen = self.base
        for threshold, rates in self.tiers:
            if threshold <= ctx_class:
                chosen = rates
        return chosen


class Book:
    def __init__(self, doc: dict, path: str = "pricing.json", digest: str = ""):
        problems = book_problems(doc)
        if problems:
            key, message = problems[0]
            raise DataError(message, where=f"{path}: {key}" if key else path)
        self.doc = doc
        self.path = path
        self.hash = digest
        self.meta = doc.get("meta") or {}
        self.aliases: dict[str, str] = {k.lower(): v for k, v in (doc.get("aliases") or {}).items()}
        # an alias also answers for its canonical spelling (the name events carry)
        for alias, target in list(self.aliases.items()):
            self.aliases.setdefault(canonical_model(alias), target)
        self.provider_aliases: dict[str, str] = dict(doc.get("provider_aliases") or {})
        self.providers: dict[str, dict] = doc.get("providers") or {}
        self.models: dict[str, ModelPrice] = {}
        for name, entry in doc["models"].items():
            base = Rates.from_entry(entry)
            tiers = [(t["above_prompt_tokens"], Rates.from_entry(t, base)) for t in entry.get("tiers") or []]
            self.models[name.lower()] = ModelPrice(name, base, sorted(tiers, key=lambda t: t[0]), entry.get("provenance") or {})

    def resolve(self, model: str, raw_model: str | None = None) -> ModelPrice | None:
        """The book's entry for a model: exact name, alias, then the name without its
        snapshot date. Never a fuzzy guess: anything else is unpriced."""
        for name in (model, raw_model):
            if not name:
                continue
            key = name.lower()
            if key in self.models:
                return self.models[key]
            if key in self.aliases:
                return self.models[self.aliases[key].lower()]
            canon = canonical_model(name)
            if canon in self.models:
                return self.models[canon]
            if canon in self.aliases:
                return self.models[self.aliases[canon].lower()]
        return None

    def names(self) -> list[str]:
        """Every name the book prices: model names and aliases (lower-case, sorted)."""
        return sorted(set(self.models) | set(self.aliases))

    def provider(self, name: str) -> str:
        return self.provider_aliases.get(name, name)

    def subscription(self, provider: str) -> float:
        entry = self.providers.get(self.provider(provider)) or {}
        fee = entry.get("subscription_usd_month") or 0
        return float(fee) if is_number(fee) else 0.0

    def describe(self) -> dict:
        return {
            "path": self.path,
            "hash": self.hash,
            "source": self.meta.get("source"),
            "updated_at": self.meta.get("updated_at"),
            "schema_version": self.doc.get("schema_version"),
        }


def read_book_doc(path: str) -> tuple[dict, bytes]:
    """The raw document of a book file; unreadable or not JSON is one line naming the file."""
    return read_json_file(path)


def book_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def load_book(path: str) -> Book:
    """Load and check a book; any problem is one line naming the key path."""
    doc, data = read_book_doc(path)
    return Book(doc, path, book_hash(data))


def micro_to_usd(micro: int | None) -> float | None:
    return None if micro is None else round(micro / 1_000_000, 6)
