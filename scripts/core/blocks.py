"""The active 5-hour block and its burn rate, read from a priced blocks report.

Reports carry no clock; whoever shows a block decides, at read time, whether it is
active: ``now`` is before the block's end and within 5 hours of its last call (as
ccusage ``blocks`` does). The burn rate is the block's tokens and cost per hour between
its first and last call; the projection assumes that rate holds until the block ends.
"""
from __future__ import annotations

from scripts.core.event import epoch_ms

BLOCK_MS = 5 * 3600 * 1000
MIN_RATE_WINDOW_MS = 60 * 1000  # a block with one call has no duration; rate over 1 minute


def is_active(block: dict, now_ms: int) -> bool:
    """ccusage's rule (before the block's end, within 5 hours of its last call), and not
    before the block started: a clock set back, or a report read "as of" an earlier
    moment, must not call a later block active."""
    end = epoch_ms(block["end"])
    last = epoch_ms(block["last_timestamp"])
    return epoch_ms(block["start"]) <= now_ms < end and now_ms - last < BLOCK_MS


def burn(block: dict, now_ms: int | None = None) -> dict:
    """Burn rate and projection of one block (a ``periods`` row of reports/blocks.json)."""
    first = epoch_ms(block["first_timestamp"])
    last = epoch_ms(block["last_timestamp"])
    end = epoch_ms(block["end"])
    window_h = max(last - first, MIN_RATE_WINDOW_MS) / 3_600_000
    tokens_h = block["total_tokens"] / window_h
    cost = block.get("cost_usd")
    cost_h = cost / window_h if cost is not None else None
    remaining_h = max(0, end - (now_ms if now_ms is not None else last)) / 3_600_000
    return {
        "provider": block.get("provider"),
        "start": block["start"],
        "end": block["end"],
        "first_timestamp": block["first_timestamp"],
        "last_timestamp": block["last_timestamp"],
        "tokens": block["total_tokens"],
        "cost_usd": cost,
        "burn_rate_tokens_per_hour": round(tokens_h, 1),
        "burn_rate_usd_per_hour": round(cost_h, 6) if cost_h is not None else None,
        "remaining_minutes": round(remaining_h * 60, 1),
        "projected_tokens": int(block["total_tokens"] + tokens_h * remaining_h),
        "projected_cost_usd": round(cost + cost_h * remaining_h, 6) if cost_h is not None else None,
    }


def active_blocks(blocks_report: dict, now_ms: int) -> list[dict]:
    """Every provider's active block with its burn rate, most expensive first."""
    out = [burn(b, now_ms) for b in blocks_report.get("periods", []) if is_active(b, now_ms)]
    out.sort(key=lambda b: (-(b["cost_usd"] or 0), -b["tokens"], b["provider"] or ""))
    return out
