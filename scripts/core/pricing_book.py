"""The pricing book (``pricing.json``): loading, lookup and the cost of a usage.

Rates are USD per million tokens, so ``tokens x rate`` is a cost in micro-dollars:
money is kept as integer micro-USD from the first multiplication on, rounded once per
report row (half to even), and every total is the sum of its rows.

Long-context tiers follow the vendors' rule: when a request's prompt (input + cache
write + cache read) exceeds a tier's ``above_prompt_tokens``, the whole request is
billed at that tier's rates. Thresholds must be among
``event.LONG_CONTEXT_THRESHOLDS`` because events are classified against those.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import orjson

from scripts.core.event import LONG_CONTEXT_THRESHOLDS, USAGE_KEYS, canonical_model
from scripts.shared_io import DataError

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
        def get(field, default):
            v = entry.get(field)
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default

        inp = get("input_usd_per_mtok", base.input if base else None)
        out = get("output_usd_per_mtok", base.output if base else None)
        if inp is None or out is None:
            raise ValueError("input and output rates are required")
        cw5 = get("cache_write_5m_usd_per_mtok", base.cache_write_5m if base else inp)
        return cls(
            input=inp,
            output=out,
            cache_write_5m=cw5,
            cache_write_1h=get("cache_write_1h_usd_per_mtok", base.cache_write_1h if base else cw5),
            cache_read=get("cache_read_usd_per_mtok", base.cache_read if base else inp * 0.1),
            tool_input=get("tool_input_usd_per_mtok", base.tool_input if base else inp),
            tool_output=get("tool_output_usd_per_mtok", base.tool_output if base else out),
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
        self.doc = doc
        self.path = path
        self.hash = digest
        self.meta = doc.get("meta") or {}
        self.aliases: dict[str, str] = {k.lower(): v for k, v in (doc.get("aliases") or {}).items()}
        self.provider_aliases: dict[str, str] = dict(doc.get("provider_aliases") or {})
        self.providers: dict[str, dict] = doc.get("providers") or {}
        self.models: dict[str, ModelPrice] = {}
        for name, entry in (doc.get("models") or {}).items():
            where = f"{path}: models.{name}"
            if not isinstance(entry, dict):
                raise DataError("must be an object", where=where)
            try:
                base = Rates.from_entry(entry)
                tiers = []
                for i, tier in enumerate(entry.get("tiers") or []):
                    threshold = tier.get("above_prompt_tokens")
                    if threshold not in LONG_CONTEXT_THRESHOLDS:
                        raise ValueError(f"tiers[{i}].above_prompt_tokens must be one of {list(LONG_CONTEXT_THRESHOLDS)}")
                    tiers.append((threshold, Rates.from_entry(tier, base)))
            except ValueError as exc:
                raise DataError(str(exc), where=where) from None
            self.models[name.lower()] = ModelPrice(name, base, sorted(tiers, key=lambda t: t[0]), entry.get("provenance") or {})
        for alias, target in self.aliases.items():
            if target.lower() not in self.models:
                raise DataError(f"alias points to unknown model {target!r}", where=f"{path}: aliases.{alias}")

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

    def provider(self, name: str) -> str:
        return self.provider_aliases.get(name, name)

    def subscription(self, provider: str) -> float:
        entry = self.providers.get(self.provider(provider)) or {}
        fee = entry.get("subscription_usd_month") or 0
        return float(fee) if isinstance(fee, (int, float)) and not isinstance(fee, bool) else 0.0

    def describe(self) -> dict:
        return {
            "path": self.path,
            "hash": self.hash,
            "source": self.meta.get("source"),
            "updated_at": self.meta.get("updated_at"),
            "schema_version": self.doc.get("schema_version"),
        }


def load_book(path: str) -> Book:
    """Load and check a book; any problem is one line naming the key path."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise DataError(exc.strerror or str(exc), where=path) from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc})", where=path) from None
    if not isinstance(doc, dict):
        raise DataError("a pricing book is a JSON object", where=path)
    if doc.get("schema_version") != BOOK_SCHEMA_VERSION:
        if "providers" in doc and "schema_version" not in doc:
            raise DataError("this is the older pricing format; convert it with `price import-book` first", where=path)
        raise DataError(f"schema_version must be {BOOK_SCHEMA_VERSION}", where=f"{path}: schema_version")
    if not isinstance(doc.get("models"), dict):
        raise DataError("missing or not an object", where=f"{path}: models")
    return Book(doc, path, hashlib.blake2b(data, digest_size=16).hexdigest())


def micro_to_usd(micro: int | None) -> float | None:
    return None if micro is None else round(micro / 1_000_000, 6)


def round_micro(value: float) -> int:
    return int(round(value))


def book_path_default() -> str:
    return os.environ.get("PRICING") or "pricing.json"
