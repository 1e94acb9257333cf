"""Mapping rules of the ledger, loaded from a rules file (``ledger-rules.json``).

Three kinds of names meet in the ledger and each is mapped to a pricing-book model by
data, never by scattered ifs:

- benchmark columns (display names such as ``GPT-5.2 Codex (High)``): the ``never``
  rules, then ``variants`` stripped one at a time (least stripped first), each stage
  slugged and rewritten by the ``names`` rules, each candidate also tried with the
  ``fallbacks`` and the vendor's routes (``xai/...``); the first candidate the book
  prices wins. The mapping keeps the whole rule chain; its confidence is the lowest
  confidence in the chain and its ``rule`` is the link that set it.
- model names of events and CLIProxyAPI records: exactly the book's own lookup (name,
  alias, name without snapshot date), so the ledger's money agrees with the reports.
- vendors (the company behind a model): book fields, then name patterns, then the
  CLIProxyAPI provider or the tool that logged it.

Anything no rule maps is returned unmapped with the reason, never guessed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from scripts.core.event import canonical_model
from scripts.shared_io import DataError, read_json_file

RULES_SCHEMA_VERSION = 1
# The coding scores the ledger carries; the rules file says which benchmark rows feed them.
SCORE_COLUMNS = (
    "swe_bench_verified",
    "swe_bench_pro",
    "swe_bench_multilingual",
    "multi_swe_bench",
    "terminal_bench",
    "livecodebench",
)
MAPPING_KINDS = ("benchmark", "usage", "runtime")


@dataclass(frozen=True)
class Mapping:
    """How one external name maps to a book model (``model`` None: unmapped)."""

    kind: str
    name: str
    model: str | None
    rule: str
    rule_chain: str
    confidence: int
    reason: str | None = None
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class VendorMapping:
    vendor: str | None
    rule: str
    confidence: int
    reason: str | None = None


@dataclass
class _Step:
    rule: str
    pattern: re.Pattern
    confidence: int
    replace: str = ""
    note: str = ""
    reason: str = ""


@dataclass
class _VendorPattern:
    rule: str
    vendor: str
    pattern: re.Pattern
    confidence: int
    routes: tuple[str, ...]


@dataclass
class _NameTable:
    rule: str
    confidence: int
    names: dict[str, str | None]
    fields: tuple[str, ...] = ()


def slugify(text: str) -> str:
    """A display name as a model id: lower case, brackets and punctuation to dashes."""
    s = text.strip().lower()
    s = re.sub(r"[()\[\]{},;:]+", " ", s)
    s = re.sub(r"\s+", "-", s.strip())
    s = re.sub(r"-{2,}", "-", s)
    return s.strip("-")


def _weakest(chain: list[tuple[str, int]]) -> tuple[str, int]:
    """The deciding link: the lowest confidence; on a tie the later link (it is the one
    closer to the book)."""
    rule, conf = chain[0]
    for r, c in chain[1:]:
        if c <= conf:
            rule, conf = r, c
    return rule, conf


@dataclass
class Rules:
    path: str
    digest: str
    doc: dict
    never: list[_Step] = field(default_factory=list)
    variants: list[_Step] = field(default_factory=list)
    names: list[_Step] = field(default_factory=list)
    fallbacks: list[_Step] = field(default_factory=list)
    route_rule: str = "vendor-route"
    route_confidence: int = 85
    vendor_patterns: list[_VendorPattern] = field(default_factory=list)
    book_fields: _NameTable | None = None
    cliproxy_providers: _NameTable | None = None
    source_tools: _NameTable | None = None
    price_rows: dict[str, re.Pattern] = field(default_factory=dict)
    scores: list[tuple[str, re.Pattern]] = field(default_factory=list)

    # ------------------------------------------------------------------ vendors
    def vendor_of_name(self, name: str) -> VendorMapping:
        low = name.lower()
        for vp in self.vendor_patterns:
            if vp.pattern.search(low):
                return VendorMapping(vp.vendor, vp.rule, vp.confidence)
        return VendorMapping(None, "unmapped", 0, f"no vendor rule matches {name!r}")

    def routes_of(self, vendor: str | None) -> tuple[str, ...]:
        for vp in self.vendor_patterns:
            if vp.vendor == vendor:
                return vp.routes
        return ()

    def vendor_of_model(self, model: str, book_entry: dict | None = None, *, tools=(), cliproxy=()) -> VendorMapping:
        """The vendor of a ledger model: book field, name pattern, CLIProxyAPI provider,
        then the tool that logged it (only when those agree on one vendor)."""
        if book_entry and self.book_fields:
            for fld in self.book_fields.fields:
                value = book_entry.get(fld)
                if isinstance(value, str) and self.book_fields.names.get(value.lower()):
                    return VendorMapping(self.book_fields.names[value.lower()], self.book_fields.rule, self.book_fields.confidence)
        by_name = self.vendor_of_name(model)
        if by_name.vendor:
            return by_name
        for table, names in ((self.cliproxy_providers, cliproxy), (self.source_tools, tools)):
            if table is None:
                continue
            found = {table.names.get(n) for n in names} - {None}
            if len(found) == 1:
                return VendorMapping(found.pop(), table.rule, table.confidence)
        seen = ", ".join(sorted(set(tools) | set(cliproxy)))
        why = f"no vendor rule matches {model!r}" + (f" and its sources ({seen}) name no single vendor" if seen else "")
        return VendorMapping(None, "unmapped", 0, why)

    def vendor_of_cliproxy_provider(self, provider: str) -> str | None:
        return (self.cliproxy_providers.names.get(provider.lower()) if self.cliproxy_providers else None) or None

    # ------------------------------------------------------------------ benchmark rows
    def score_column(self, benchmark: str) -> str | None:
        for column, pattern in self.scores:
            if pattern.search(benchmark):
                return column
        return None

    def price_row(self, benchmark: str) -> str | None:
        for kind, pattern in self.price_rows.items():
            if pattern.search(benchmark):
                return kind
        return None

    # ------------------------------------------------------------------ model names
    def map_display_name(self, name: str, book, kind: str = "benchmark") -> Mapping:
        """Map a display name (a benchmark column) to a priced book model."""
        for step in self.never:
            if step.pattern.search(name):
                return Mapping(kind, name, None, step.rule, step.rule, 100, step.reason)
        text, applied = name.strip(), []
        stages: list[tuple[str, list[tuple[str, int]]]] = [(text, [])]
        used: set[str] = set()
        progressed = True
        while progressed:
            progressed = False
            for step in self.variants:
                if step.rule in used:
                    continue
                if not step.pattern.search(text):
                    continue
                stripped = step.pattern.sub(step.replace, text, count=1).strip()
                if stripped and stripped != text:
                    text, applied = stripped, applied + [(step.rule, step.confidence)]
                    used.add(step.rule)
                    stages.append((text, applied))
                    progressed = True
                    break
        tried: list[str] = []
        seen: set[str] = set()
        for stage_text, stage_chain in stages:
            slug = slugify(stage_text)
            routes = self.routes_of(self.vendor_of_name(slug).vendor)
            for rule in self.names:
                if not rule.pattern.search(slug):
                    continue
                base = rule.pattern.sub(rule.replace, slug, count=1)
                for candidate, chain in self._candidates(base, stage_chain + [(rule.rule, rule.confidence)], routes):
                    if candidate in seen:
                        continue
                    seen.add(candidate)
                    tried.append(candidate)
                    price = book.resolve(candidate)
                    if price is not None:
                        how = self.map_logged_name(candidate, None, book)
                        if how.rule != "book-exact":  # the book's alias table did part of the work
                            chain = chain + [(how.rule_chain, how.confidence)]
                        weakest, conf = _weakest(chain)
                        return Mapping(kind, name, price.name, weakest, ">".join(r for r, _ in chain), conf, None, tuple(tried))
        direct = [c for c in tried if "/" not in c]
        shown = ", ".join(direct[:6]) + (f" and {len(tried) - min(len(direct), 6)} more" if len(tried) > 6 else "")
        return Mapping(kind, name, None, "unmapped", "unmapped", 0, f"no priced model among {shown}", tuple(tried))

    def _candidates(self, base: str, chain: list[tuple[str, int]], routes: tuple[str, ...]):
        plain = [(base, chain)]
        for fb in self.fallbacks:
            alt = fb.pattern.sub(fb.replace, base)
            if alt != base:
                plain.append((alt, chain + [(fb.rule, fb.confidence)]))
        yield from plain
        for route in routes:
            for cand, ch in plain:
                yield route + cand, ch + [(self.route_rule, self.route_confidence)]

    @staticmethod
    def map_logged_name(model: str, raw_model: str | None, book, kind: str = "usage") -> Mapping:
        """Map a logged model name with exactly the book's lookup (``Book.resolve``),
        labelling which step found it."""
        for name in (model, raw_model):
            if not name:
                continue
            key = name.lower()
            if key in book.models:
                return Mapping(kind, model, book.models[key].name, "book-exact", "book-exact", 100)
            if key in book.aliases:
                return Mapping(kind, model, book.models[book.aliases[key].lower()].name, "book-alias", "book-alias", 95)
            canon = canonical_model(name)
            if canon in book.models:
                return Mapping(kind, model, book.models[canon].name, "book-canonical", "book-canonical", 95)
            if canon in book.aliases:
                return Mapping(kind, model, book.models[book.aliases[canon].lower()].name, "book-alias", "book-canonical>book-alias", 90)
        return Mapping(kind, model, None, "unpriced", "unpriced", 0, "not in the pricing book (see `price coverage`)")


def load_rules(path: str) -> Rules:
    """Load and check a rules file; a problem is one line naming the key path."""
    import hashlib

    doc, data = read_json_file(path)
    _validate(doc, path)
    rules = Rules(path=path, digest=hashlib.sha256(data).hexdigest(), doc=doc)

    def rx(value: str, where: str) -> re.Pattern:
        try:
            return re.compile(value)
        except re.error as exc:
            raise DataError(f"bad regular expression ({exc})", where=f"{path}: {where}") from None

    vendors = doc["vendors"]
    for i, vp in enumerate(vendors["name_patterns"]):
        rules.vendor_patterns.append(
            _VendorPattern(vp["rule"], vp["vendor"], rx(vp["pattern"], f"vendors.name_patterns[{i}].pattern"), vp["confidence"], tuple(vp.get("routes", ())))
        )
    for key in ("book_fields", "cliproxy_providers", "source_tools"):
        t = vendors.get(key)
        if t:
            names = {k.lower(): v for k, v in t["names"].items()}
            setattr(rules, key, _NameTable(t["rule"], t["confidence"], names, tuple(t.get("fields", ()))))
    dn = doc["display_names"]
    for i, s in enumerate(dn.get("never", [])):
        rules.never.append(_Step(s["rule"], rx(s["pattern"], f"display_names.never[{i}].pattern"), 100, reason=s["reason"]))
    for key in ("variants", "names", "fallbacks"):
        for i, s in enumerate(dn.get(key, [])):
            getattr(rules, key).append(
                _Step(s["rule"], rx(s["pattern"], f"display_names.{key}[{i}].pattern"), s["confidence"], s.get("replace", ""), s.get("note", ""))
            )
    for key in ("variants", "names", "fallbacks"):
        for i, step in enumerate(getattr(rules, key)):
            for num, grp in re.findall(r"\\(\d+)|\\g<(\w+)>", step.replace):
                ref = num or grp
                ok = int(ref) <= step.pattern.groups if ref.isdigit() else ref in step.pattern.groupindex
                if not ok:
                    raise DataError(f"replacement refers to group {ref!r} the pattern does not have", where=f"{path}: display_names.{key}[{i}].replace")
    route = dn.get("vendor_route") or {}
    rules.route_rule = route.get("rule", rules.route_rule)
    rules.route_confidence = route.get("confidence", rules.route_confidence)
    bench = doc.get("benchmarks") or {}
    for kind, pattern in (bench.get("price_rows") or {}).items():
        rules.price_rows[kind] = rx(pattern, f"benchmarks.price_rows.{kind}")
    for i, s in enumerate(bench.get("scores") or []):
        rules.scores.append((s["column"], rx(s["pattern"], f"benchmarks.scores[{i}].pattern")))
    return rules


def _validate(doc, path: str) -> None:
    import jsonschema

    from scripts.core.ledger_sql import load_schema

    schema = load_schema("ledger-rules.v1.schema.json")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        err = errors[0]
        where = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in err.absolute_path).replace(".[", "[")
        raise DataError(err.message, where=f"{path}: {where or '(top level)'}")
