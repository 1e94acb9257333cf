"""Suggestions: rules over one month of the priced monthly report, each with the numbers
that triggered it and the threshold it crossed (docs/suggestions.md says why each rule
and threshold is what it is).

Pure and clock-free: the month is given (``MONTH``) or is the latest month present in
the data; every month present is evaluated too (``by_month``), so a reader can show any
month without re-running anything.
"""
from __future__ import annotations

SUGGESTIONS_SCHEMA_VERSION = 1
SEVERITY_ORDER = {"warn": 0, "info": 1}

# Every threshold lives here, and docs/suggestions.md mirrors this table.
RULES: dict[str, dict] = {
    "high-tool-share": {
        "title": "High tool-token share",
        "threshold": {"min_tool_share": 0.25, "warn_tool_share": 0.5, "min_total_tokens": 1_000_000},
    },
    "low-cache-read-share": {
        "title": "Low cache-read share",
        "threshold": {"max_cache_read_share": 0.5, "warn_cache_read_share": 0.2, "min_prompt_tokens": 1_000_000},
    },
    "high-blended-rate": {
        "title": "High blended $/MTok",
        "threshold": {"min_usd_per_mtok": 3.0, "warn_usd_per_mtok": 10.0, "min_cost_usd": 1.0},
    },
    "subscription-dominated": {
        "title": "Subscription-dominated spend",
        "threshold": {"min_subscription_share": 0.5, "warn_subscription_share": 0.8},
    },
    "expensive-model": {
        "title": "A model far costlier per output token than another you run",
        "threshold": {"min_ratio": 3.0, "warn_ratio": 5.0, "min_output_tokens": 50_000, "min_events": 20},
    },
}


def _r(x: float, n: int = 4) -> float:
    return round(x, n)


def _suggestion(rule: str, subject: str, severity: str, title: str, detail: str, evidence: dict, **who) -> dict:
    s = {
        "id": f"{rule}:{subject}",
        "rule": rule,
        "severity": severity,
        "title": title,
        "detail": detail,
        "evidence": evidence,
        "threshold": dict(RULES[rule]["threshold"]),
    }
    s.update({k: v for k, v in who.items() if v is not None})
    s["evidence"] = {k: v for k, v in evidence.items() if v is not None}  # numbers only
    return s


def month_suggestions(monthly: dict, month: str) -> list[dict]:
    """Every rule over ``month`` of a priced monthly report."""
    providers = [p for p in monthly.get("period_providers", []) if p["period"] == month]
    models = [r for r in monthly.get("rows", []) if r["period"] == month]
    month_total = next((p for p in monthly.get("periods", []) if p["period"] == month), None)
    out: list[dict] = []

    t = RULES["high-tool-share"]["threshold"]
    for p in providers:
        tool = p.get("tool_input_tokens", 0) + p.get("tool_output_tokens", 0)
        total = p["total_tokens"]
        if total >= t["min_total_tokens"] and tool / total >= t["min_tool_share"]:
            share = tool / total
            out.append(_suggestion(
                "high-tool-share", p["provider"], "warn" if share >= t["warn_tool_share"] else "info",
                f"Tool tokens are {share:.0%} of {p['provider']}'s tokens in {month}",
                "Tool definitions and tool results fill the context on every call. Fewer enabled tools "
                "(MCP servers) and shorter tool output make each call cheaper.",
                {"tool_tokens": tool, "total_tokens": total, "tool_share": _r(share)},
                provider=p["provider"],
            ))

    t = RULES["low-cache-read-share"]["threshold"]
    for p in providers:
        prompt = p["input_tokens"] + p["cache_write_tokens"] + p["cache_read_tokens"] + p.get("tool_input_tokens", 0)
        if prompt < t["min_prompt_tokens"]:
            continue
        share = p["cache_read_tokens"] / prompt
        if share < t["max_cache_read_share"]:
            out.append(_suggestion(
                "low-cache-read-share", p["provider"], "warn" if share < t["warn_cache_read_share"] else "info",
                f"Only {share:.0%} of {p['provider']}'s prompt tokens were cache reads in {month}",
                "Cache reads cost a tenth of fresh input. Long, stable prompts (keeping a session going "
                "instead of restarting it, not editing early context) let the cache do more.",
                {"cache_read_tokens": p["cache_read_tokens"], "prompt_tokens": prompt, "cache_read_share": _r(share),
                 "cache_savings_usd": p.get("cache_savings_usd")},
                provider=p["provider"],
            ))

    t = RULES["high-blended-rate"]["threshold"]
    for r in models:
        rate, cost = r.get("blended_usd_per_mtok"), r.get("total_cost_usd")
        if rate is None or cost is None or cost < t["min_cost_usd"] or rate < t["min_usd_per_mtok"]:
            continue
        out.append(_suggestion(
            "high-blended-rate", f"{r['provider']}/{r['model']}", "warn" if rate >= t["warn_usd_per_mtok"] else "info",
            f"{r['model']} cost ${rate:,.2f} per million tokens in {month}",
            "A high blended rate means most tokens were paid at full input or output price: little "
            "came from the cache, or the model is an expensive one for the volume it handles.",
            {"blended_usd_per_mtok": rate, "total_cost_usd": cost, "total_tokens": r["total_tokens"],
             "cache_read_tokens": r["cache_read_tokens"]},
            provider=r["provider"], model=r["model"],
        ))

    t = RULES["subscription-dominated"]["threshold"]
    for p in providers:
        sub, total = p.get("subscription_usd") or 0.0, p.get("total_cost_usd") or 0.0
        if sub <= 0 or total <= 0:
            continue
        share = sub / total
        if share >= t["min_subscription_share"]:
            out.append(_suggestion(
                "subscription-dominated", p["provider"], "warn" if share >= t["warn_subscription_share"] else "info",
                f"The {p['provider']} subscription is {share:.0%} of what {p['provider']} cost in {month}",
                "Most of this provider's spend is its fixed fee rather than usage at list prices: a smaller "
                "plan, or paying per use, may cost less for this much work.",
                {"subscription_usd": sub, "variable_cost_usd": p.get("cost_usd"), "total_cost_usd": total,
                 "subscription_share": _r(share), "total_tokens": p["total_tokens"]},
                provider=p["provider"],
            ))

    t = RULES["expensive-model"]["threshold"]
    by_provider: dict[str, list[dict]] = {}
    for r in models:
        if r.get("cost_usd") is None or r["output_tokens"] < t["min_output_tokens"] or r["events"] < t["min_events"]:
            continue
        by_provider.setdefault(r["provider"], []).append(r)
    for provider, rs in sorted(by_provider.items()):
        if len(rs) < 2:
            continue
        per_out = {r["model"]: r["cost_usd"] / r["output_tokens"] * 1_000_000 for r in rs}
        cheapest = min(rs, key=lambda r: (per_out[r["model"]], r["model"]))
        base = per_out[cheapest["model"]]
        for r in sorted(rs, key=lambda r: r["model"]):
            if r is cheapest or base <= 0:
                continue
            ratio = per_out[r["model"]] / base
            if ratio < t["min_ratio"]:
                continue
            savings = r["cost_usd"] - r["output_tokens"] * base / 1_000_000
            out.append(_suggestion(
                "expensive-model", f"{provider}/{r['model']}", "warn" if ratio >= t["warn_ratio"] else "info",
                f"{r['model']} cost {ratio:.1f}x more per output token than {cheapest['model']} in {month}",
                f"Both run in {provider}, so they do similar work. Moving routine tasks from {r['model']} to "
                f"{cheapest['model']} would have cost up to ${savings:,.2f} less this month.",
                {"model_usd_per_m_output": _r(per_out[r["model"]], 2),
                 "cheaper_usd_per_m_output": _r(base, 2), "ratio": _r(ratio, 2), "model_cost_usd": r["cost_usd"],
                 "model_output_tokens": r["output_tokens"], "cheaper_output_tokens": cheapest["output_tokens"],
                 "savings_usd_if_moved": _r(savings, 2)},
                provider=provider, model=r["model"], compared_with=cheapest["model"],
            ))

    if month_total is not None and month_total.get("total_cost_usd") is not None:
        for s in out:
            s["evidence"].setdefault("month_total_cost_usd", month_total["total_cost_usd"])
    out.sort(key=lambda s: (SEVERITY_ORDER[s["severity"]], list(RULES).index(s["rule"]), s["id"]))
    return out


def suggestions_document(monthly: dict, month: str | None = None) -> dict:
    """The suggestions document: ``month`` (given, else the latest month in the data),
    its suggestions, and every month's under ``by_month``."""
    months = sorted({p["period"] for p in monthly.get("periods", [])})
    by_month = {m: month_suggestions(monthly, m) for m in months}
    chosen = month or (months[-1] if months else None)
    return {
        "schema_version": SUGGESTIONS_SCHEMA_VERSION,
        "kind": "suggestions",
        "month": chosen,
        "month_source": "MONTH" if month else "latest month in the data",
        "timezone": monthly.get("timezone"),
        "pricing": monthly.get("pricing"),
        "rules": [{"id": k, "title": v["title"], "threshold": v["threshold"]} for k, v in RULES.items()],
        "suggestions": by_month.get(chosen, []) if chosen else [],
        "by_month": by_month,
    }
