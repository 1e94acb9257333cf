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
- Blended $/MTok: (variable + subscription) / priced tokens x 1e6, over the priced tokens
  only (null when nothing in the entry is priced).

Speed: the book is resolved once per model name, row money is a tuple of integers, and
the summaries (periods, providers, models, totals) add those tuples up; entries are
copied once (C-level ``dict``) and given their money fields.
"""
from __future__ import annotations

from scripts.core.event import USAGE_KEYS
from scripts.core.pricing_book import Book

REPORT_SCHEMA_VERSION = 1
_DROP = ("month_tokens", "long_context")


class Pricer:
    """Row money with per-model and per-provider lookups memoized."""

    def __init__(self, book: Book, basis: dict):
        self.book = book
        self.basis = basis
        self._price: dict[str, object] = {}
        self._fee: dict[str, float] = {}
        self._rates: dict[tuple, object] = {}

    def price(self, model: str):
        try:
            return self._price[model]
        except KeyError:
            p = self._price[model] = self.book.resolve(model)
            return p

    def fee(self, provider: str) -> float:
        try:
            return self._fee[provider]
        except KeyError:
            f = self._fee[provider] = self.book.subscription(provider)
            return f

    def rates(self, price, ctx: str):
        key = (price.name, ctx)
        try:
            return self._rates[key]
        except KeyError:
            r = self._rates[key] = price.rates_for_class(int(ctx))
            return r

    def money(self, row: dict):
        """``(variable_micro | None, subscription_micro, savings_micro, unpriced_tokens, priced_as)``."""
        provider = row["provider"]
        fee = self.fee(provider)
        sub = 0
        if fee:
            s = 0.0
            basis = self.basis
            for month, tokens in row.get("month_tokens", {}).items():
                total = basis.get(month, {}).get(provider, 0)
                if total:
                    s += fee * 1_000_000 * tokens / total
            sub = int(round(s))
        price = self.price(row["model"])
        if price is None:
            return None, sub, 0, row["total_tokens"], None
        base = price.base
        inp = row["input_tokens"]
        out = row["output_tokens"]
        cw = row["cache_write_tokens"]
        cr = row["cache_read_tokens"]
        ti = row["tool_input_tokens"]
        to = row["tool_output_tokens"]
        cw1h = row["cache_write_1h_tokens"]
        cost = 0.0
        savings = 0.0
        lcs = row.get("long_context")
        if lcs:
            for ctx, part in lcs.items():
                if isinstance(part, dict):  # written by an older aggregate
                    part = [part.get(k, 0) for k in USAGE_KEYS]
                rates = self.rates(price, ctx)
                # Rates.micro_usd, inlined: this is the hot loop
                cost += (
                    part[0] * rates.input
                    + part[1] * rates.output
                    + (part[2] - part[7]) * rates.cache_write_5m
                    + part[7] * rates.cache_write_1h
                    + part[3] * rates.cache_read
                    + part[4] * rates.tool_input
                    + part[5] * rates.tool_output
                )
                savings += part[3] * (rates.input - rates.cache_read)
                inp -= part[0]
                out -= part[1]
                cw -= part[2]
                cr -= part[3]
                ti -= part[4]
                to -= part[5]
                cw1h -= part[7]
        cost += (
            inp * base.input
            + out * base.output
            + (cw - cw1h) * base.cache_write_5m
            + cw1h * base.cache_write_1h
            + cr * base.cache_read
            + ti * base.tool_input
            + to * base.tool_output
        )
        savings += cr * (base.input - base.cache_read)
        return int(round(cost)), sub, int(round(savings)), 0, price.name


def _with_money(entry: dict, var: int, has_var: bool, sub: int, sav: int, unpriced: int) -> dict:
    """A copy of ``entry`` (without the per-row pricing inputs) with its money fields."""
    out = dict(entry)
    if "month_tokens" in out:
        del out["month_tokens"]
        del out["long_context"]
    return _set_money(out, var, has_var, sub, sav, unpriced)


def _set_money(out: dict, var: int, has_var: bool, sub: int, sav: int, unpriced: int) -> dict:
    """Money fields from summed micro-USD (``has_var``: something in it was priced).
    ``micro / 1e6`` is already the double nearest the 6-decimal dollar amount, so no
    rounding is needed there."""
    if not has_var and not unpriced:
        has_var = True  # nothing to price (no tokens): $0, not "unpriced"
    total = var + sub
    priced_tokens = out["total_tokens"] - unpriced
    out["cache_savings_usd"] = sav / 1_000_000
    out["cost_usd"] = var / 1_000_000 if has_var else None
    out["blended_usd_per_mtok"] = round(total / priced_tokens, 6) if has_var and priced_tokens > 0 else None
    out["priced"] = unpriced == 0
    out["subscription_usd"] = sub / 1_000_000
    out["total_cost_usd"] = total / 1_000_000 if has_var or sub else None
    out["unpriced_tokens"] = unpriced
    return out


_TOKEN_KEYS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens",
               "tool_input_tokens", "tool_output_tokens", "reasoning_tokens", "cache_write_1h_tokens")


def _summary(entry: dict, a: list | None) -> dict:
    """A period (or period-provider) entry: its own fields (key, distinct sessions,
    kind-specific ones), plus the sums of its rows in ``a``:
    ``[events, first, last, 8 usage counts, var, has_var, sub, savings, unpriced]``."""
    if a is None:
        a = [0, None, None, 0, 0, 0, 0, 0, 0, 0, 0, 0, False, 0, 0, 0]
    d = {
        "cache_read_tokens": a[6],
        "cache_write_1h_tokens": a[10],
        "cache_write_tokens": a[5],
        "events": a[0],
        "first_timestamp": a[1],
        "input_tokens": a[3],
        "last_timestamp": a[2],
        "output_tokens": a[4],
        "reasoning_tokens": a[9],
        "tool_input_tokens": a[7],
        "tool_output_tokens": a[8],
        "total_tokens": a[3] + a[4] + a[5] + a[6] + a[7] + a[8],
    }
    d.update(entry)
    return _set_money(d, a[11], a[12], a[13], a[14], a[15])


def _fold(a: list, b: list) -> None:
    a[0] += b[0]
    if b[1] < a[1]:
        a[1] = b[1]
    if b[2] > a[2]:
        a[2] = b[2]
    for i in range(3, 12):
        a[i] += b[i]
    a[12] = a[12] or b[12]
    a[13] += b[13]
    a[14] += b[14]
    a[15] += b[15]


def _add_money(acc: dict, key, var, sub: int, sav: int, unpriced: int) -> None:
    """Add money into ``acc[key]``: ``[variable, how many of the parts had a variable cost
    (only its truth is shown), subscription, savings, unpriced tokens]``. A count, not a
    flag, so that sums kept per period add up to the table's (incremental price)."""
    a = acc.get(key)
    if a is None:
        acc[key] = [var or 0, int(var is not None), sub, sav, unpriced]
        return
    if var is not None:
        a[0] += var
        a[1] += 1
    a[2] += sub
    a[3] += sav
    a[4] += unpriced


_NOTHING = (0, False, 0, 0, 0)


def price_table(table: dict, book: Book, basis: dict, pricer: Pricer | None = None) -> dict:
    """Price one aggregate table (rows, periods, period_providers, by_provider, by_model, totals).

    Rows are priced; period and period-provider entries get the sums of their rows
    (tokens, calls, first/last call, money); the whole-range entries get the money of
    their rows."""
    pricer = pricer or Pricer(book, basis)
    rows_out, periods, pps, per_model, per_provider, grand, unpriced = price_entries(table, pricer)
    return whole_range(table, pricer, rows_out, periods, pps, per_model, per_provider, grand, unpriced)


def periods_mode(table: dict) -> str:
    """How a table's period entries are priced: ``pps`` (they are the period-provider
    entries: blocks, sessions in one tool), ``provider`` (one provider each) or ``period``."""
    if table["periods"] and "provider" in table["periods"][0]:
        # one provider per period (blocks; sessions): periods are period-provider entries
        if table["periods"] is table.get("period_providers") or table["periods"] == table.get("period_providers"):
            return "pps"
        return "provider"
    return "period"


def price_entries(table: dict, pricer: Pricer, mode: str | None = None, per_unit: dict | None = None):
    """The priced rows, periods and period-provider entries of a table (or of some of its
    periods: each period's entries depend on its own rows only), and the money sums the
    whole-range entries are made of: per (provider, model), per provider, in all, and the
    unpriced models. ``per_unit`` (if given) gets the same sums per period:
    ``period -> [per (provider, model), per provider, all, unpriced (events, tokens)]``
    (what the incremental price keeps)."""
    money = pricer.money
    rows_out = []
    per_pp: dict[tuple, list] = {}
    per_model: dict = {}
    unpriced: dict[tuple, dict] = {}
    for row in table["rows"]:
        var, sub, sav, unp, priced_as = money(row)
        has_var = var is not None
        var = var or 0
        out = _with_money(row, var, has_var, sub, sav, unp)
        out["priced_as"] = priced_as
        rows_out.append(out)
        provider = row["provider"]
        k = (row["period"], provider)
        a = per_pp.get(k)
        if a is None:
            per_pp[k] = [row["events"], row["first_timestamp"], row["last_timestamp"], row["input_tokens"],
                         row["output_tokens"], row["cache_write_tokens"], row["cache_read_tokens"],
                         row["tool_input_tokens"], row["tool_output_tokens"], row["reasoning_tokens"],
                         row["cache_write_1h_tokens"], var, has_var, sub, sav, unp]
        else:
            a[0] += row["events"]
            if row["first_timestamp"] < a[1]:
                a[1] = row["first_timestamp"]
            if row["last_timestamp"] > a[2]:
                a[2] = row["last_timestamp"]
            a[3] += row["input_tokens"]
            a[4] += row["output_tokens"]
            a[5] += row["cache_write_tokens"]
            a[6] += row["cache_read_tokens"]
            a[7] += row["tool_input_tokens"]
            a[8] += row["tool_output_tokens"]
            a[9] += row["reasoning_tokens"]
            a[10] += row["cache_write_1h_tokens"]
            a[11] += var
            a[12] = a[12] or has_var
            a[13] += sub
            a[14] += sav
            a[15] += unp
        mk = (provider, row["model"])
        _add_money(per_model, mk, var if has_var else None, sub, sav, unp)
        if priced_as is None:
            u = unpriced.get(mk)
            if u is None:
                u = unpriced[mk] = {"events": 0, "model": row["model"], "provider": provider, "tokens": 0}
            u["tokens"] += row["total_tokens"]
            u["events"] += row["events"]
        if per_unit is not None:
            pu = per_unit.get(k[0])
            if pu is None:
                pu = per_unit[k[0]] = [{}, {}, [0, 0, 0, 0, 0], {}]
            _add_money(pu[0], mk, var if has_var else None, sub, sav, unp)
            if priced_as is None:
                e = pu[3].get(mk, (0, 0))
                pu[3][mk] = (e[0] + row["events"], e[1] + row["total_tokens"])
    per_period: dict[str, list] = {}
    per_provider: dict[str, list] = {}
    grand = [0, 0, 0, 0, 0]
    for (period, provider), a in per_pp.items():
        p = per_period.get(period)
        if p is None:
            per_period[period] = list(a)
        else:
            _fold(p, a)
        m = a[11:]
        _add_money(per_provider, provider, m[0] if m[1] else None, m[2], m[3], m[4])
        grand[0] += m[0]
        grand[1] += 1 if m[1] else 0
        grand[2] += m[2]
        grand[3] += m[3]
        grand[4] += m[4]
        if per_unit is not None:
            pu = per_unit.get(period)
            if pu is None:
                pu = per_unit[period] = [{}, {}, [0, 0, 0, 0, 0], {}]
            _add_money(pu[1], provider, m[0] if m[1] else None, m[2], m[3], m[4])
            g = pu[2]
            g[0] += m[0]
            g[1] += 1 if m[1] else 0
            g[2] += m[2]
            g[3] += m[3]
            g[4] += m[4]
    pps = [_summary(p, per_pp.get((p["period"], p["provider"]))) for p in table.get("period_providers", [])]
    mode = mode or periods_mode(table)
    if mode == "pps":
        periods = pps
    elif mode == "provider":
        periods = [_summary(p, per_pp.get((p["period"], p["provider"]))) for p in table["periods"]]
    else:
        periods = [_summary(p, per_period.get(p["period"])) for p in table["periods"]]
    return rows_out, periods, pps, per_model, per_provider, grand, unpriced


def whole_range(table: dict, pricer: Pricer, rows_out, periods, pps, per_model, per_provider, grand, unpriced) -> dict:
    """The priced table: entries, and the whole-range entries with the money of their rows."""
    out = {
        "rows": rows_out,
        "periods": periods,
        "period_providers": pps,
        "by_provider": [_with_money(p, *per_provider.get(p["provider"], _NOTHING)) for p in table["by_provider"]],
        "by_model": [_with_money(p, *per_model.get((p["provider"], p["model"]), _NOTHING)) for p in table["by_model"]],
        "totals": _with_money(table["totals"], *grand),
        "unpriced": [unpriced[k] for k in sorted(unpriced)],
    }
    for p in out["by_model"]:
        price = pricer.price(p["model"])
        p["priced_as"] = price.name if price else None
    return out


def price_aggregates(agg: dict, book: Book) -> dict[str, dict]:
    """Every report of an aggregates document, priced."""
    basis = agg.get("allocation_basis") or {}
    pricer = Pricer(book, basis)
    described = book.describe()
    reports = {}
    for kind, table in agg["reports"].items():
        priced = price_table(table, book, basis, pricer)
        reports[kind] = {
            "schema_version": REPORT_SCHEMA_VERSION,
            "kind": kind,
            "timezone": agg["timezone"],
            "filters": agg["filters"],
            "currency": "USD",
            "pricing": described,
            **priced,
        }
    return reports


def price_event(ev: dict, book: Book) -> dict:
    """One event with its cost (micro-dollar exact, USD in ``cost_usd``; null if unpriced)."""
    from scripts.core.event import context_class
    from scripts.core.pricing_book import micro_to_usd

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
