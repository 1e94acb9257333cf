"""Runtime metrics from a CLIProxyAPI usage archive: latency and failure rate per
(provider, model).

The archive is a directory (``CLIPROXY_USAGE_DIR``) of

- ``*.jsonl``: CLIProxyAPI v7 per-request records, one JSON object a line
  (``timestamp, latency_ms, ttft_ms, failed, provider, model, request_id, tokens, ...``);
- ``*.json``: CLIProxyAPI v6 usage exports (``{"version":1,"usage":{"apis":...}}``), the
  management response (``{"usage":{...},"failed_requests":N}``), a bare snapshot, or a
  JSON array of v7 records.

A request is counted once: v7 by ``request_id``, v6 by (api key, model, timestamp,
source, auth_index, tokens) as the adapters do. Latency percentiles are nearest-rank
over the successful requests that report a latency; failure rate is failed / all.
Nothing identifying is kept: no API keys, client IPs, sources or user agents.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field

import orjson

from scripts.core.event import canonical_model, normalize_timestamp
from scripts.shared_io import Diagnostics

UNKNOWN_PROVIDER = "unknown"  # v6 records do not say which upstream served them


@dataclass
class Series:
    """Every request of one (provider, model)."""

    requests: int = 0
    failures: int = 0
    latencies: list = field(default_factory=list)  # successful requests only
    ttfts: list = field(default_factory=list)
    first_seen: str | None = None
    last_seen: str | None = None
    total_tokens: int = 0

    def add(self, ts: str, failed: bool, latency, ttft, tokens: int) -> None:
        self.requests += 1
        if failed:
            self.failures += 1
        else:
            if _number(latency) is not None:
                self.latencies.append(_number(latency))
            if _number(ttft):
                self.ttfts.append(_number(ttft))
        self.total_tokens += tokens
        if self.first_seen is None or ts < self.first_seen:
            self.first_seen = ts
        if self.last_seen is None or ts > self.last_seen:
            self.last_seen = ts

    def merge(self, other: "Series") -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.latencies.extend(other.latencies)
        self.ttfts.extend(other.ttfts)
        self.total_tokens += other.total_tokens
        for ts in (other.first_seen, other.last_seen):
            if ts is not None:
                self.first_seen = ts if self.first_seen is None or ts < self.first_seen else self.first_seen
                self.last_seen = ts if self.last_seen is None or ts > self.last_seen else self.last_seen

    def metrics(self) -> dict:
        lat = sorted(self.latencies)
        ttft = sorted(self.ttfts)
        return {
            "requests": self.requests,
            "failures": self.failures,
            "failure_rate": round(self.failures / self.requests, 6) if self.requests else None,
            "latency_p50_ms": percentile(lat, 0.50),
            "latency_p95_ms": percentile(lat, 0.95),
            "latency_mean_ms": round(sum(lat) / len(lat), 3) if lat else None,
            "latency_samples": len(lat),
            "ttft_p50_ms": percentile(ttft, 0.50),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "total_tokens": self.total_tokens,
        }


@dataclass
class RuntimeArchive:
    directory: str | None
    files: int = 0
    records: int = 0
    duplicates: int = 0
    skipped: dict = field(default_factory=dict)  # reason -> count
    series: dict = field(default_factory=dict)  # (provider, model) -> Series
    raw_models: dict = field(default_factory=dict)  # (provider, model) -> set of raw names

    @property
    def used(self) -> int:
        return sum(s.requests for s in self.series.values())

    def summary(self) -> dict:
        return {
            "present": self.directory is not None and self.files > 0,
            "files": self.files,
            "records": self.records,
            "used": self.used,
            "duplicates": self.duplicates,
            "failed": sum(s.failures for s in self.series.values()),
            "skipped": dict(sorted(self.skipped.items())),
        }


def percentile(sorted_values: list, q: float):
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != value:
        return None
    return int(value) if float(value).is_integer() else float(value)


def _tokens(tokens) -> int:
    if not isinstance(tokens, dict):
        return 0
    total = tokens.get("total_tokens")
    if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
        return total
    return sum(v for k in ("input_tokens", "output_tokens", "reasoning_tokens") if isinstance(v := tokens.get(k), int) and v >= 0)


def _digest(*parts) -> bytes:
    return hashlib.blake2b(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def archive_files(directory: str) -> list[str]:
    out = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and (name.endswith(".jsonl") or name.endswith(".json")):
                out.append(os.path.join(root, name))
    return out


def read_archive(directories, diag: Diagnostics) -> RuntimeArchive:
    """Read every record of the archive directories (absent ones: no metrics). A request
    found in two directories is counted once."""
    if isinstance(directories, str):
        directories = [directories]
    directories = [d for d in (directories or []) if d]
    archive = RuntimeArchive(directory=",".join(directories) or None)
    seen: set[bytes] = set()
    paths = [p for d in directories if os.path.isdir(d) for p in archive_files(d)]
    for path in paths:
        archive.files += 1
        with open(path, "rb") as fh:
            data = fh.read()
        if path.endswith(".jsonl"):
            for lineno, line in enumerate(data.split(b"\n"), 1):
                if not line.strip():
                    continue
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError:
                    archive.records += 1
                    _skip(archive, "not valid JSON")
                    diag.bad_line(path, lineno, "not valid JSON")
                    continue
                _add_v7(archive, seen, rec, path, lineno, diag)
            continue
        try:
            doc = orjson.loads(data) if data.strip() else None
        except orjson.JSONDecodeError:
            _skip(archive, "not valid JSON")
            diag.bad_line(path, 1, "not valid JSON")
            continue
        if isinstance(doc, list):
            for i, rec in enumerate(doc, 1):
                _add_v7(archive, seen, rec, path, f"[{i}]", diag)
            continue
        snapshot = doc.get("usage") if isinstance(doc, dict) and isinstance(doc.get("usage"), dict) else doc
        if not isinstance(snapshot, dict) or not isinstance(snapshot.get("apis"), dict):
            _skip(archive, "not a CLIProxyAPI usage export")
            diag.bad_line(path, 1, "not a CLIProxyAPI usage export (no usage.apis)")
            continue
        _add_v6(archive, seen, snapshot, path, diag)
    return archive


def _skip(archive: RuntimeArchive, reason: str) -> None:
    archive.skipped[reason] = archive.skipped.get(reason, 0) + 1


def _record(archive: RuntimeArchive, seen: set, key: bytes, provider: str, raw_model: str, ts, failed, latency, ttft, tokens, where, diag) -> None:
    archive.records += 1
    try:
        ts = normalize_timestamp(ts)
    except ValueError as exc:
        _skip(archive, "bad timestamp")
        diag.bad_line(*where, str(exc))
        return
    if key in seen:
        archive.duplicates += 1
        return
    seen.add(key)
    model = canonical_model(raw_model)
    series = archive.series.setdefault((provider, model), Series())
    archive.raw_models.setdefault((provider, model), set()).add(raw_model)
    series.add(ts, failed is True, latency, ttft, _tokens(tokens))


def _add_v7(archive, seen, rec, path, lineno, diag) -> None:
    if not isinstance(rec, dict) or not isinstance(rec.get("model"), str) or not rec.get("model"):
        archive.records += 1
        _skip(archive, "not a usage record")
        diag.bad_line(path, lineno, "not a CLIProxyAPI usage record (no model)")
        return
    provider = rec.get("provider") if isinstance(rec.get("provider"), str) and rec.get("provider") else UNKNOWN_PROVIDER
    rid = rec.get("request_id")
    if isinstance(rid, str) and rid:
        key = _digest("v7", rid)
    else:
        key = _digest("v7", rec.get("timestamp"), provider, rec["model"], rec.get("auth_index"), rec.get("latency_ms"), rec.get("tokens"))
    tokens = rec.get("tokens")
    breakdown = rec.get("token_breakdown")
    if not isinstance(tokens, dict) and isinstance(breakdown, dict):
        tokens = {"total_tokens": breakdown.get("total_tokens")}
    _record(archive, seen, key, provider.lower(), rec["model"], rec.get("timestamp"), rec.get("failed"), rec.get("latency_ms"), rec.get("ttft_ms"), tokens, (path, lineno), diag)


def _add_v6(archive, seen, snapshot, path, diag) -> None:
    # api keys are secrets: they only feed the dedupe digest, never a message
    for api_index, api_key in enumerate(sorted(snapshot["apis"])):
        api = snapshot["apis"][api_key]
        models = api.get("models") if isinstance(api, dict) else None
        if not isinstance(models, dict):
            continue
        for model in sorted(models):
            details = models[model].get("details") if isinstance(models[model], dict) else None
            for i, d in enumerate(details if isinstance(details, list) else []):
                where = (path, f"apis[{api_index}].models.{model}.details[{i}]")
                if not isinstance(d, dict):
                    archive.records += 1
                    _skip(archive, "not a usage record")
                    diag.bad_line(*where, "not an object")
                    continue
                key = _digest("v6", api_key, model, d.get("timestamp"), d.get("source"), d.get("auth_index"), d.get("tokens"))
                _record(archive, seen, key, UNKNOWN_PROVIDER, model, d.get("timestamp"), d.get("failed"), d.get("latency_ms"), None, d.get("tokens"), where, diag)
