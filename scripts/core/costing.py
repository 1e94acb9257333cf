"""Money for aggregate tables: variable cost, subscription share, cache savings, blended rate.

- Variable cost: each (period, provider, model) row priced from the book, long-context
  portions at their tier. A model the book does not know is *unpriced*: its row has
  ``cost_usd: null`` and its tokens are listed under ``unpriced``; it is never $0.
- Subscription: a provider's monthly fee is spread over that provider's tokens in that
  month (all of them, whatever the report's filters), so a row gets
  ``fee x row tokens in month / provider tokens in month``; a day gets its share,
  never the whole fee.
- Cache savings: what the cache reads would have cost at the plain input rate, minus
  what they cost.
- Rounding: micro-dollars, rounded once per row (half to even); every aggregate
  (period, provider, model, totals) is the exact sum of its rows.
"""
from __future__ import annotations

from scripts.core.event import USAGE_KEYS
from scripts.core.pricing_book import Book, micro_to_usd

REPORT_SCHEMA_VERSION = 1


def _row_money(row: dict, book: Book, basis: dict) -> dict:
    price = book.resolve(row["model"])
    fee = book.subscription(row["provider"])
    sub = 0.0
    if fee:
        for month, tokens in row.get("month_tokens", {}).items():
            total = basis.get(month, {}).get(row["provider"], 0)
            if total:
                sub += fee * 1_000_000 * tokens / total
    money = {"priced_as": None, "variable_micro": None, "subscription_micro": int(round(sub)), "savings_micro": 0, "unpriced_tokens": 0}
    if price is None:
        money["unpriced_tokens"] = row["total_tokens"]
        return money
    base_usage = {k: row[k] for k in USAGE_KEYS}
    cost = 0.0
    savings = 0.0
    for ctx, part in (row.get("long_context") or {}).items():
        rates = price.rates_for_class(int(ctx))
        cost += rates.micro_usd(part)
        savings += part.get("cache_read_tokens", 0) * (rates.input - rates.cache_read)
        for k in USAGE_KEYS:
            base_usage[k] -= part.get(k, 0)
    cost += price.base.micro_usd(base_usage)
    savings += base_usage["cache_read_tokens"] * (price.base.input - price.base.cache_read)
    money.update(priced_as=price.name, variable_micro=int(round(cost)), savings_micro=int(round(savings)))
    return money


def _apply(target: dict, micro: dict) -> dict:
    """Write money fields (USD) onto a report row from summed micro-dollar amounts."""
    out = {k: v for k, v in target.items() if k not in ("month_tokens", "long_context")}
    variable = micro["variable_micro"]
    sub = micro["subscription_micro"]
    priced_tokens = out["total_tokens"] - micro["unpriced_tokens"]
    # variable is None only when nothing in this row could be priced
    out["cost_usd"] = micro_to_usd(variable)
    out["subscription_usd"] = micro_to_usd(sub)
    total = (variable or 0) + sub
    out["total_cost_usd"] = micro_to_usd(total) if variable is not None or sub else None
    out["cache_savings_usd"] = micro_to_usd(micro["savings_micro"])
    out["unpriced_tokens"] = micro["unpriced_tokens"]
    out["priced"] = micro["unpriced_tokens"] == 0
    out["blended_usd_per_mtok"] = round(total / priced_tokens, 6) if priced_tokens > 0 and out["cost_usd"] is not None else None
    return out


def _sum(a: dict | None, b: dict) -> dict:
    if a is None:
        return dict(b)
    return {
        "priced_as": None,
        "variable_micro": (a["variable_micro"] or 0) + (b["variable_micro"] or 0)
        if (a["variable_micro"] is not None or b["variable_micro"] is not None)
        else None,
        "subscription_micro": a["subscription_micro"] + b["subscription_micro"],
        "savings_micro": a["savings_micro"] + b["savings_micro"],
        "unpriced_tokens": a["unpriced_tokens"] + b["unpriced_tokens"],
    }


def price_table(table: dict, book: Book, basis: dict) -> dict:
    """Price one aggregate table (rows, periods, by_provider, by_model, totals)."""
    rows_out = []
    per_period: dict = {}
    per_period_provider: dict = {}
    per_provider: dict = {}
    per_model: dict = {}
    grand = None
    unpriced: dict[tuple, dict] = {}
    period_key = _period_key(table)
    for row in table["rows"]:
        money = _row_money(row, book, basis)
        priced = _apply(row, money)
        priced["priced_as"] = money["priced_as"]
        rows_out.append(priced)
        pk = period_key(row)
        per_period[pk] = _sum(per_period.get(pk), money)
        ppk = (row["period"], row["provider"])
        per_period_provider[ppk] = _sum(per_period_provider.get(ppk), money)
        per_provider[row["provider"]] = _sum(per_provider.get(row["provider"]), money)
        mk = (row["provider"], row["model"])
        per_model[mk] = _sum(per_model.get(mk), money)
        grand = _sum(grand, money)
        if money["priced_as"] is None:
            u = unpriced.setdefault(mk, {"provider": row["provider"], "model": row["model"], "tokens": 0, "events": 0})
            u["tokens"] += row["total_tokens"]
            u["events"] += row["events"]
    empty = {"priced_as": None, "variable_micro": 0, "subscription_micro": 0, "savings_micro": 0, "unpriced_tokens": 0}
    out = {
        "rows": rows_out,
        "periods": [_apply(p, per_period.get(period_key(p), empty)) for p in table["periods"]],
        "period_providers": [
            _apply(p, per_period_provider.get((p["period"], p["provider"]), empty)) for p in table.get("period_providers", [])
        ],
        "by_provider": [_apply(p, per_provider.get(p["provider"], empty)) for p in table["by_provider"]],
        "by_model": [_apply(p, per_model.get((p["provider"], p["model"]), empty)) for p in table["by_model"]],
        "totals": _apply(table["totals"], grand or empty),
        "unpriced": [unpriced[k] for k in sorted(unpriced)],
    }
    for p in out["by_model"]:
        price = book.resolve(p["model"])
        p["priced_as"] = price.name if price else None
    return out


def _period_key(table: dict):
    # blocks are identified by (period, provider); every other table by period
    if table["periods"] and "start" in table["periods"][0]:
        return lambda r: (r["period"], r["provider"])
    return lambda r: r["period"]


def price_aggregates(agg: dict, book: Book) -> dict[str, dict]:
    """Every report of an aggregates document, priced."""
    basis = agg.get("allocation_basis") or {}
    reports = {}
    for kind, table in agg["reports"].items():
        priced = price_table(table, book, basis)
        reports[kind] = {
            "schema_version": REPORT_SCHEMA_VERSION,
            "kind": kind,
            "timezone": agg["timezone"],
            "filters": agg["filters"],
            "currency": "USD",
            "pricing": book.describe(),
            **priced,
        }
    return reports


def price_event(ev: dict, book: Book) -> dict:
    """One event with its cost (micro-dollar exact, USD in ``cost_usd``; null if unpriced)."""
    from scripts.core.event import context_class

    price = book.resolve(ev.get("model", ""), ev.get("raw_model"))
    out = dict(ev)
    if price is None:
        out["cost_usd"] = None
        out["priced_as"] = None
        return out
    rates = price.rates_for_class(context_class({k: ev["usage"].get(k, 0) for k in USAGE_KEYS}))
    out["cost_usd"] = micro_to_usd(int(round(rates.micro_usd(ev["usage"]))))
    out["priced_as"] = price.name
    return out
