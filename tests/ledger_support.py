"""Inputs for the ledger tests: a pricing book built from the shared LiteLLM copy, a
CLIProxyAPI archive in both real shapes (v6 export, v7 records), normalized events."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import shared_path

# Every priced model a Claude, GPT or Gemini column of ../shared/data/models.csv can map
# to (gemini-3-pro-preview only under vertex_ai/ in LiteLLM, which is why it is listed
# with its route), plus models the events use.
BOOK_MODELS = {
    "claude-sonnet-4-5": "claude-sonnet-4-5",
    "claude-sonnet-4-6": "claude-sonnet-4-6",
    "claude-opus-4-5": "claude-opus-4-5",
    "claude-opus-4-6": "claude-opus-4-6",
    "claude-haiku-4-5": "claude-haiku-4-5",
    "gpt-5.2": "gpt-5.2",
    "gpt-5.2-codex": "gpt-5.2-codex",
    "gpt-5.3-codex": "gpt-5.3-codex",
    "gpt-5-codex": "gpt-5-codex",
    "gpt-5-mini": "gpt-5-mini",
    "gpt-4.1": "gpt-4.1",
    "gemini-3.1-pro-preview": "gemini-3.1-pro-preview",
    "gemini-3-pro-preview": "vertex_ai/gemini-3-pro-preview",
    "gemini-3-flash-preview": "gemini-3-flash-preview",
    "gemini-2.5-pro": "gemini-2.5-pro",
    "gemini-2.5-flash": "gemini-2.5-flash",
    "xai/grok-4-1-fast-reasoning": "azure_ai/grok-4-1-fast-reasoning",
}


def litellm_rates(entry: dict) -> dict:
    def mtok(key):
        v = entry.get(key)
        return round(v * 1_000_000, 9) if isinstance(v, (int, float)) else None

    out = {
        "input_usd_per_mtok": mtok("input_cost_per_token"),
        "output_usd_per_mtok": mtok("output_cost_per_token"),
        "cache_write_5m_usd_per_mtok": mtok("cache_creation_input_token_cost"),
        "cache_write_1h_usd_per_mtok": mtok("cache_creation_input_token_cost_above_1hr"),
        "cache_read_usd_per_mtok": mtok("cache_read_input_token_cost"),
    }
    out = {k: v for k, v in out.items() if v is not None}
    tier = {
        "input_usd_per_mtok": mtok("input_cost_per_token_above_200k_tokens"),
        "output_usd_per_mtok": mtok("output_cost_per_token_above_200k_tokens"),
    }
    if tier["input_usd_per_mtok"] is not None and tier["output_usd_per_mtok"] is not None:
        out["tiers"] = [{"above_prompt_tokens": 200_000, **tier}]
    return out


def write_book(path: Path, models: dict[str, str] = BOOK_MODELS, *, subscriptions: dict | None = None) -> Path:
    """A version-1 pricing book with ``models`` (book name -> LiteLLM key), rates from
    the shared LiteLLM copy."""
    litellm = json.loads(shared_path("data", "litellm-model-prices.json").read_text())
    doc = {
        "schema_version": 1,
        "meta": {"source": "litellm 1.110.2 (test copy)", "updated_at": "2026-11-01"},
        "aliases": {"sonnet-latest": "claude-sonnet-4-5"} if "claude-sonnet-4-5" in models else {},
        "providers": {p: {"subscription_usd_month": fee} for p, fee in (subscriptions or {"claude": 100}).items()},
        "models": {},
    }
    for name, key in models.items():
        entry = litellm_rates(litellm[key])
        entry["provenance"] = {"source": f"litellm:{key}", "updated_at": "2026-11-01"}
        doc["models"][name] = entry
    path.write_text(json.dumps(doc, indent=1, sort_keys=True))
    return path


def v7_record(i: int, provider: str, model: str, latency: int, *, failed: bool = False, request_id: str | None = None, ttft: int = 400) -> dict:
    return {
        "timestamp": f"2026-08-{10 + i % 5:02d}T10:{i % 60:02d}:00.000Z",
        "latency_ms": latency,
        "ttft_ms": ttft,
        "source": "dev@example.com",
        "auth_index": "0",
        "client_ip": "203.0.113.7",
        "user_agent": "claude-cli/2.0.37",
        "tokens": {"input_tokens": 1000, "output_tokens": 200, "reasoning_tokens": 0, "cached_tokens": 300, "total_tokens": 1200},
        "failed": failed,
        "fail": {"status_code": 429, "body": "rate limited"} if failed else {"status_code": 0, "body": ""},
        "accounting_version": 2,
        "token_breakdown": {"schema_version": 2, "quality": "complete", "total_tokens": 1200},
        "provider": provider,
        "executor_type": provider,
        "model": model,
        "alias": "",
        "endpoint": "/v1/messages",
        "auth_type": "oauth",
        "api_key": "sk-test-SECRET-KEY-123",
        "request_id": request_id or f"req-{provider}-{i:04d}",
        "reasoning_effort": "",
        "service_tier": "",
    }


# (provider, model, latencies, failures) of the v7 file; latencies of the successes
V7_SERIES = (
    ("claude", "claude-sonnet-4-5-20250929", [1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000], 2),
    ("codex", "gpt-5.2-codex", [500, 700, 900], 1),
    ("openai-compatibility", "kimi-k2-thinking", [1500, 2500], 0),
)


def write_archive(directory: Path) -> Path:
    """A CLIProxyAPI archive: a v7 JSONL file (with one duplicate), a v6 export."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    i = 0
    for provider, model, latencies, failures in V7_SERIES:
        for lat in latencies:
            lines.append(v7_record(i, provider, model, lat))
            i += 1
        for _ in range(failures):
            lines.append(v7_record(i, provider, model, 90, failed=True))
            i += 1
    lines.append(lines[0])  # the same request archived twice
    (directory / "usage-2026-08.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    detail = lambda ts, lat, failed: {  # noqa: E731
        "timestamp": ts,
        "latency_ms": lat,
        "source": "dev@example.com",
        "auth_index": "0",
        "tokens": {"input_tokens": 1000, "output_tokens": 200, "reasoning_tokens": 0, "cached_tokens": 300, "total_tokens": 1200},
        "failed": failed,
    }
    v6 = {
        "version": 1,
        "exported_at": "2026-04-02T00:00:00Z",
        "usage": {
            "total_requests": 3,
            "success_count": 2,
            "failure_count": 1,
            "total_tokens": 3600,
            "apis": {
                "sk-client-SECRET-v6": {
                    "total_requests": 3,
                    "total_tokens": 3600,
                    "models": {
                        "claude-sonnet-4-5": {
                            "total_requests": 3,
                            "total_tokens": 3600,
                            "details": [
                                detail("2026-04-01T10:00:00.123Z", 2100, False),
                                detail("2026-04-01T10:05:00.000Z", 3300, False),
                                detail("2026-04-01T10:06:00.000Z", 150, True),
                            ],
                        }
                    },
                }
            },
            "requests_by_day": {"2026-04-01": 3},
            "requests_by_hour": {"10": 3},
            "tokens_by_day": {"2026-04-01": 3600},
            "tokens_by_hour": {"10": 3600},
        },
    }
    (directory / "export-2026-04-02.json").write_text(json.dumps(v6))
    return directory


def make_events() -> dict[str, list[dict]]:
    """Normalized events per source: priced Claude and Codex calls, an unpriced model,
    one event id that two files share."""
    from scripts.core.event import make_event, usage

    def ev(provider, i, raw_model, session, day, **counts):
        return make_event(
            provider=provider,
            event_id=f"{provider}:call-{i}",
            raw_model=raw_model,
            session_id=session,
            timestamp=f"2026-08-{day:02d}T12:{i % 60:02d}:00.000Z",
            usage_counts=usage(**counts),
            project="alpha" if i % 2 else "beta",
            source_file=f"/logs/{provider}/{session}.jsonl",
            source_line=i + 1,
            adapter_version="1",
            source_version="1.0",
            device="test",
        )

    claude = [
        ev("claude", i, "claude-sonnet-4-5-20250929", f"s{i % 3}", 1 + i % 4, input_tokens=100 + i, output_tokens=50, cache_write_tokens=1000, cache_read_tokens=20000, cache_write_1h_tokens=200 if i % 2 else 0)
        for i in range(12)
    ]
    claude.append(ev("claude", 99, "claude-opus-4-5-20251101", "s9", 3, input_tokens=10, output_tokens=500, cache_read_tokens=300000))
    codex = [
        ev("codex", i, "gpt-5.2-codex", f"c{i % 2}", 2 + i % 3, input_tokens=5000, output_tokens=800, cache_read_tokens=12000, reasoning_tokens=300)
        for i in range(8)
    ]
    codex.append(ev("codex", 50, "o9-experimental", "c7", 4, input_tokens=1234, output_tokens=56))
    cursor = [ev("cursor", 7, "claude-4.5-sonnet-thinking", "u1", 5, input_tokens=700, output_tokens=70)]
    # the same call seen by a second source file: kept once
    cursor.append(dict(claude[0]))
    return {"claude": claude, "codex": codex, "cursor": cursor}


def write_events(events_dir: Path, events: dict[str, list[dict]] | None = None) -> Path:
    """A bundle's events/ as normalize writes it: events/<source>/<UTC day>.jsonl."""
    events_dir.mkdir(parents=True, exist_ok=True)
    for source, evs in (events or make_events()).items():
        by_day: dict[str, list[dict]] = {}
        for e in evs:
            by_day.setdefault(e["timestamp"][:10], []).append(e)
        (events_dir / source).mkdir(exist_ok=True)
        for day, day_evs in by_day.items():
            (events_dir / source / f"{day}.jsonl").write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in day_evs))
    return events_dir
