"""Numbers: tokens are integers end to end; money totals are the sums of their rows.

The rounding rule (scripts/core/costing.py, docs/contracts/reports.md, docs/faults.md):
money is integer micro-dollars until output; each report row's cost is rounded to the
micro-dollar once (half to even), from that row's tokens and the book's rates; every other
entry (periods, period-providers, providers, models, totals) is the exact sum of its rows.
So a total equals the sum of its rows to the micro-dollar, hence to the cent; only the sum
of *displayed* cents can differ from a displayed total.

Checked on the fixtures of all seven sources plus generated logs, with a book that charges
subscriptions (so the fee split is rounded per row too), in UTC and in Los Angeles.
"""
from __future__ import annotations

import json
from fractions import Fraction

import pytest

from conftest import ROOT
from scripts.core.event import USAGE_KEYS
from scripts.core.pricing_book import load_book

from .harness import figure, make

MONEY = ("cost_usd", "subscription_usd", "total_cost_usd", "cache_savings_usd")
KINDS = ("daily", "weekly", "monthly", "sessions", "projects", "blocks")
CHECKED: dict[str, int] = {}


@pytest.fixture(scope="module", params=["UTC", "America/Los_Angeles"])
def bundle(request, tree, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("numbers")
    doc = json.loads((ROOT / "pricing.json").read_text())
    for provider, fee in (("claude", 200), ("codex", 20), ("cursor", 60), ("gemini", 19.99)):
        doc["providers"][provider]["subscription_usd_month"] = fee
    book = tmp / "book.json"
    book.write_text(json.dumps(doc, indent=2) + "\n")
    art = tmp / "art"
    make(tree.env(art, PRICING=book, TIMEZONE=request.param), "all")
    return art, book, request.param


def _is_int(v) -> bool:
    return type(v) is int


def _token_values(obj, key=None, under_tokens=False):
    """Every number stored under a token or count key (recursively)."""
    tokenish = under_tokens or (key is not None and (key.endswith("tokens") or key in ("events", "allocation_basis", "long_context")))
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _token_values(v, k, tokenish)
    elif isinstance(obj, list):
        for v in obj:
            yield from _token_values(v, key, tokenish)
    elif tokenish and isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield key, obj


def test_tokens_are_integers_end_to_end(bundle):
    art, _book, tz = bundle
    seen = 0
    for p in sorted((art / "events").glob("*/*.jsonl")):
        for line in p.read_bytes().splitlines():
            ev = json.loads(line)
            assert all(_is_int(ev["usage"][k]) for k in USAGE_KEYS) and _is_int(ev["total_tokens"]), ev
            seen += 9
    for p in sorted((art / "rollups").glob("*.json")):
        doc = json.loads(p.read_text())
        numeric = [i for i, c in enumerate(doc["columns"]) if c.endswith("tokens") or c in ("events", "slot_ms", "first_ms", "last_ms", "ctx_class")]
        for row in doc["rows"]:
            assert all(_is_int(row[i]) for i in numeric), row
            seen += len(numeric)
    docs = [art / "aggregates" / "aggregates.json", art / "ui-snapshot.json", art / "runs" / "latest.json"]
    docs += [art / "reports" / f"{k}.json" for k in KINDS]
    for p in docs:
        for key, v in _token_values(json.loads(p.read_text())):
            assert _is_int(v), f"{p.name}: {key} = {v!r}"
            seen += 1
    snap = json.loads((art / "ui-snapshot.json").read_text())
    for entry in [snap["totals"], snap["today"], *snap["top_models"], *snap["top_providers"], *snap["latest_blocks"]]:
        for k in ("tokens", "total_tokens", "session_count"):
            if k in entry:
                assert _is_int(entry[k]), (k, entry)
                seen += 1
    CHECKED[f"token values checked ({tz})"] = seen
    figure("numbers.checked", dict(sorted(CHECKED.items())))


def micro(x) -> int | None:
    if x is None:
        return None
    m = Fraction(repr(x)) * 1_000_000
    assert m.denominator == 1, f"{x!r} is not a whole number of micro-dollars"
    return int(m)


def _sum(rows, field):
    vals = [micro(r[field]) for r in rows]
    return None if all(v is None for v in vals) else sum(v or 0 for v in vals)


def _check_entry(entry, rows, what):
    assert rows, f"{what}: no rows"
    for field in MONEY:
        got = micro(entry[field])
        want = _sum(rows, field)
        if got is None:
            assert want is None, f"{what}: {field} is null, its rows sum to {want}"
        else:
            assert got == (want or 0), f"{what}: {field} {got} micro-USD != sum of its rows {want}"
    tot = micro(entry["total_cost_usd"])
    if tot is not None:
        assert tot == (micro(entry["cost_usd"]) or 0) + micro(entry["subscription_usd"]), what
    for k in ("total_tokens", "events", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "unpriced_tokens"):
        assert entry[k] == sum(r[k] for r in rows), f"{what}: {k}"


def test_every_total_is_the_sum_of_its_rows(bundle):
    art, _book, tz = bundle
    entries = 0
    for kind in KINDS:
        rep = json.loads((art / "reports" / f"{kind}.json").read_text())
        rows = rep["rows"]
        _check_entry(rep["totals"], rows, f"{kind} totals")
        for p in rep["by_provider"]:
            _check_entry(p, [r for r in rows if r["provider"] == p["provider"]], f"{kind} by_provider {p['provider']}")
        for m in rep["by_model"]:
            _check_entry(m, [r for r in rows if (r["provider"], r["model"]) == (m["provider"], m["model"])], f"{kind} by_model {m['model']}")
        for pp in rep["period_providers"]:
            _check_entry(pp, [r for r in rows if (r["period"], r["provider"]) == (pp["period"], pp["provider"])], f"{kind} {pp['period']}/{pp['provider']}")
        for pe in rep["periods"]:
            sel = [r for r in rows if r["period"] == pe["period"] and ("provider" not in pe or r["provider"] == pe["provider"])]
            _check_entry(pe, sel, f"{kind} period {pe['period']}")
        entries += 1 + len(rep["by_provider"]) + len(rep["by_model"]) + len(rep["period_providers"]) + len(rep["periods"])
        # to the cent, as shown: the total's cents are the rounded sum of its rows' micro-dollars
        assert round(micro(rep["totals"]["total_cost_usd"]) / 1e6, 2) == round(_sum(rows, "total_cost_usd") / 1e6, 2)
    # the snapshot shows the month's monthly-report numbers
    snap = json.loads((art / "ui-snapshot.json").read_text())
    monthly = json.loads((art / "reports" / "monthly.json").read_text())
    month = next(p for p in monthly["periods"] if p["period"] == snap["month"])
    assert micro(snap["totals"]["cost_usd"]) in (micro(month["total_cost_usd"]), micro(month["cost_usd"]))
    assert snap["totals"]["tokens"] == month["total_tokens"]
    CHECKED[f"report entries = sums of rows ({tz})"] = entries
    figure("numbers.checked", dict(sorted(CHECKED.items())))


def _exact_row_micro(row, book, basis):
    """The rule, computed exactly (rates as the book writes them, Fractions, half to even)."""
    price = book.resolve(row["model"])
    fee = Fraction(repr(book.subscription(row["provider"])))
    sub = Fraction(0)
    if fee:
        for month, tokens in row.get("month_tokens", {}).items():
            total = basis.get(month, {}).get(row["provider"], 0)
            if total:
                sub += fee * 1_000_000 * tokens / total
    if price is None:
        return None, round(sub)
    remaining = [row[k] for k in USAGE_KEYS]
    cost = Fraction(0)

    def add(part, rates):
        inp, out, cw, cr, ti, to, _r, cw1h = part
        r = {k: Fraction(repr(getattr(rates, k))) for k in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read", "tool_input", "tool_output")}
        return (inp * r["input"] + out * r["output"] + (cw - cw1h) * r["cache_write_5m"] + cw1h * r["cache_write_1h"]
                + cr * r["cache_read"] + ti * r["tool_input"] + to * r["tool_output"])

    for ctx, part in (row.get("long_context") or {}).items():
        part = [part.get(k, 0) for k in USAGE_KEYS] if isinstance(part, dict) else list(part)
        cost += add(part, price.rates_for_class(int(ctx)))
        remaining = [a - b for a, b in zip(remaining, part)]
    cost += add(remaining, price.base)
    return round(cost), round(sub)  # Fraction.__round__: half to even


def test_each_row_is_rounded_once_from_its_own_tokens(bundle):
    art, book_path, tz = bundle
    book = load_book(str(book_path))
    agg = json.loads((art / "aggregates" / "aggregates.json").read_text())
    basis = agg.get("allocation_basis") or {}
    rows = 0
    for kind in KINDS:
        rep = json.loads((art / "reports" / f"{kind}.json").read_text())
        for a, r in zip(agg["reports"][kind]["rows"], rep["rows"], strict=True):
            assert (a["period"], a["provider"], a["model"]) == (r["period"], r["provider"], r["model"])
            var, sub = _exact_row_micro(a, book, basis)
            assert micro(r["cost_usd"]) == var, f"{kind} {r['period']} {r['model']}: {micro(r['cost_usd'])} != exact {var}"
            assert micro(r["subscription_usd"]) == sub, f"{kind} {r['period']} {r['provider']}: subscription {micro(r['subscription_usd'])} != exact {sub}"
            rows += 1
    assert rows > 100
    CHECKED[f"rows priced exactly as the rule says ({tz})"] = rows
    figure("numbers.checked", dict(sorted(CHECKED.items())))
