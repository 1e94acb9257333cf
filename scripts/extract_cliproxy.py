"""extract-cliproxy: poll CLIProxyAPI's management API and archive its usage records.

CLIProxyAPI keeps usage only in memory (lost on restart). This command fetches it and
appends it to ``$CLIPROXY_USAGE_DIR`` (default ``~/.local/share/tokentally/cliproxy/``),
where ``normalize --source cliproxy`` reads it:

\b
  v7  GET /v0/management/usage-queue?count=N  pops per-request records
      -> usage-YYYY-MM-DD.jsonl (by the record's UTC date), appended
  v6  GET /v0/management/usage/export          the whole in-memory snapshot
      -> export-<exported_at>.json holding only details not archived before

A popped batch is first written to ``.spool/`` (fsynced) and only then parsed and
appended, so a crash or a malformed response never loses records the proxy already
dropped: the next run finishes the spooled batch first. Re-appending a batch after a
crash is harmless (the same request id is one event).
"""
from __future__ import annotations

import datetime as dt
import os
import time

import click
import orjson

from scripts.cli import stage_command
from scripts.shared_io import DataError

DEFAULT_URL = "http://127.0.0.1:8317"
QUEUE_PATH = "/v0/management/usage-queue"
EXPORT_PATH = "/v0/management/usage/export"


class NotFound(Exception):
    pass


# ------------------------------------------------------------------ files
def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def durable_write(path: str, data: bytes) -> None:
    """Write ``path`` via a temp file, fsynced and renamed into place: a reader sees the
    old content or the new, never half of it, and a crash after return loses nothing."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(directory)


def durable_append(path: str, data: bytes) -> None:
    try:
        with open(path, "rb") as fh:
            old = fh.read()
    except FileNotFoundError:
        old = b""
    if old and not old.endswith(b"\n"):
        old += b"\n"  # a line someone cut short stays a (rejected) line of its own
    durable_write(path, old + data)


# ------------------------------------------------------------------ pure parts
def queue_items(body: bytes) -> list:
    """The records of a usage-queue response: a JSON array (v7), or ``{"items": [...]}``
    (some forks). Raises ValueError when the body is not that."""
    doc = orjson.loads(body)
    if isinstance(doc, dict):
        doc = doc.get("items", doc.get("records"))
    if not isinstance(doc, list):
        raise ValueError("usage-queue response is not a JSON array")
    return doc


def record_day(rec, fallback: str) -> str:
    from scripts.core.event import normalize_timestamp

    if isinstance(rec, dict):
        try:
            return normalize_timestamp(rec.get("timestamp"))[:10]
        except ValueError:
            pass
    return fallback


def archive_records(out_dir: str, items: list, today: str) -> dict[str, int]:
    """Append records to ``usage-<day>.jsonl`` files; return records per file."""
    by_day: dict[str, list[bytes]] = {}
    for rec in items:
        by_day.setdefault(record_day(rec, today), []).append(orjson.dumps(rec) + b"\n")
    written = {}
    for day in sorted(by_day):
        path = os.path.join(out_dir, f"usage-{day}.jsonl")
        durable_append(path, b"".join(by_day[day]))
        written[os.path.basename(path)] = len(by_day[day])
    return written


def archived_v6_ids(out_dir: str) -> set[str]:
    from scripts.adapters.cliproxy import request_hash

    seen: set[str] = set()
    for name in sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else ():
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            with open(os.path.join(out_dir, name), "rb") as fh:
                doc = orjson.loads(fh.read())
        except (OSError, orjson.JSONDecodeError):
            continue
        for api_key, model, detail in _details(doc):
            seen.add(request_hash(api_key, model, detail))
    return seen


def _details(doc):
    usage = doc.get("usage") if isinstance(doc, dict) and isinstance(doc.get("usage"), dict) else doc
    apis = usage.get("apis") if isinstance(usage, dict) else None
    if not isinstance(apis, dict):
        return
    for api_key, entry in apis.items():
        models = entry.get("models") if isinstance(entry, dict) else None
        if not isinstance(models, dict):
            continue
        for model, m in models.items():
            details = m.get("details") if isinstance(m, dict) else None
            for detail in details if isinstance(details, list) else ():
                if isinstance(detail, dict):
                    yield api_key, model, detail


def trim_export(doc: dict, seen: set[str]) -> tuple[dict, int]:
    """The export with only the details not archived yet (same shape); and their count."""
    from scripts.adapters.cliproxy import request_hash

    apis: dict = {}
    n = 0
    for api_key, model, detail in _details(doc):
        h = request_hash(api_key, model, detail)
        if h in seen:
            continue
        seen.add(h)
        apis.setdefault(api_key, {"models": {}})["models"].setdefault(model, {"details": []})["details"].append(detail)
        n += 1
    out = {k: v for k, v in doc.items() if k != "usage"}
    out["usage"] = {"apis": apis}
    out["tokentally_trimmed"] = True  # totals dropped: only the new details are kept
    return out, n


# ------------------------------------------------------------------ HTTP
def _get(url: str, key: str, timeout: float) -> bytes:
    import urllib.error
    import urllib.request

    headers = {"Accept": "application/json", "User-Agent": "tokentally-extract-cliproxy"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
        headers["X-Management-Key"] = key
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise NotFound(url) from None
        if exc.code in (401, 403):
            raise DataError(f"management key rejected (HTTP {exc.code}); set CLIPROXY_KEY", where=url) from None
        raise DataError(f"HTTP {exc.code} {exc.reason}", where=url) from None
    except urllib.error.URLError as exc:
        raise DataError(f"cannot reach CLIProxyAPI ({getattr(exc.reason, 'strerror', None) or exc.reason})", where=url) from None
    except (TimeoutError, OSError) as exc:
        raise DataError(f"cannot reach CLIProxyAPI ({exc})", where=url) from None


# ------------------------------------------------------------------ the poll
def _spool_dir(out_dir: str) -> str:
    return os.path.join(out_dir, ".spool")


def _finish_spooled(out_dir: str, today: str, log) -> int:
    """Archive batches a previous run spooled but did not finish."""
    spool = _spool_dir(out_dir)
    n = 0
    for name in sorted(os.listdir(spool)) if os.path.isdir(spool) else ():
        if not name.endswith(".body"):
            continue
        path = os.path.join(spool, name)
        with open(path, "rb") as fh:
            body = fh.read()
        try:
            items = queue_items(body)
        except ValueError:
            os.replace(path, path[: -len(".body")] + ".unparsed")
            log(f"{path}: not a usage-queue response; kept as .unparsed for inspection")
            continue
        archive_records(out_dir, items, today)
        os.unlink(path)
        n += len(items)
    return n


def poll_v7(base: str, key: str, out_dir: str, count: int, max_batches: int, timeout: float, today: str, log) -> dict:
    spool = _spool_dir(out_dir)
    stats = {"records": 0, "batches": 0, "files": {}}
    for _ in range(max_batches):
        body = _get(f"{base}{QUEUE_PATH}?count={count}", key, timeout)
        # the proxy has dropped these records now: persist the raw body before anything else
        spooled = os.path.join(spool, f"{time.time_ns()}-{os.getpid()}.body")
        durable_write(spooled, body)
        try:
            items = queue_items(body)
        except ValueError as exc:
            os.replace(spooled, spooled[: -len(".body")] + ".unparsed")
            raise DataError(f"{exc}; the response is kept in {spool}", where=base) from None
        for name, n in archive_records(out_dir, items, today).items():
            stats["files"][name] = stats["files"].get(name, 0) + n
        os.unlink(spooled)
        stats["records"] += len(items)
        stats["batches"] += 1
        if len(items) < count:
            break
    return stats


def poll_v6(base: str, key: str, out_dir: str, timeout: float, log) -> dict:
    body = _get(f"{base}{EXPORT_PATH}", key, timeout)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise DataError("usage export is not JSON", where=base) from None
    if not isinstance(doc, dict):
        raise DataError("usage export is not a JSON object", where=base)
    trimmed, n = trim_export(doc, archived_v6_ids(out_dir))
    stats = {"records": n, "files": {}}
    if n:
        stamp = str(doc.get("exported_at") or dt.datetime.now(dt.timezone.utc).isoformat())
        safe = "".join(ch if ch.isalnum() else "-" for ch in stamp)[:40]
        name = f"export-{safe}.json"
        durable_write(os.path.join(out_dir, name), orjson.dumps(trimmed, option=orjson.OPT_INDENT_2) + b"\n")
        stats["files"][name] = n
    return stats


def default_out_dir() -> str:
    from scripts.adapters import cliproxy

    return cliproxy.default_roots()[0]


@stage_command("extract-cliproxy")
@click.option("--url", envvar="CLIPROXY_URL", default=DEFAULT_URL, show_default=True, help="CLIProxyAPI base URL (env CLIPROXY_URL).")
@click.option("--key", envvar="CLIPROXY_KEY", default="", help="Management key (env CLIPROXY_KEY).")
@click.option("--out-dir", envvar="CLIPROXY_USAGE_DIR", default="", help="Archive directory (env CLIPROXY_USAGE_DIR; default ~/.local/share/tokentally/cliproxy).")
@click.option("--api", type=click.Choice(["auto", "v7", "v6"]), default="auto", show_default=True, help="v7 usage queue, v6 export, or v7 falling back to v6.")
@click.option("--count", type=click.IntRange(1, 100000), default=500, show_default=True, help="Records popped per v7 request.")
@click.option("--max-batches", type=click.IntRange(1), default=200, show_default=True, help="v7: stop after this many full batches.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per HTTP request.")
@click.option("--quiet", is_flag=True, help="Print nothing when all went well.")
def cli(url, key, out_dir, api, count, max_batches, timeout, quiet):
    """Poll CLIProxyAPI once and append its usage to the archive normalize reads.

    Run it every minute (cron or a systemd timer, see docs/sources.md): v7 keeps
    queued records only for redis-usage-queue-retention-seconds (default 60).

    Example:

    \b
        CLIPROXY_URL=http://127.0.0.1:8317 CLIPROXY_KEY=... extract-cliproxy
        * * * * * extract-cliproxy --quiet   # crontab
    """
    out_dir = os.path.expanduser(out_dir) if out_dir else default_out_dir()
    os.makedirs(out_dir, exist_ok=True)
    base = url.rstrip("/")
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")

    def log(msg: str) -> None:
        click.echo(msg, err=True)

    recovered = _finish_spooled(out_dir, today, log)
    used = api
    try:
        if api in ("auto", "v7"):
            stats = poll_v7(base, key, out_dir, count, max_batches, timeout, today, log)
            used = "v7"
        else:
            raise NotFound(base)
    except NotFound:
        if api == "v7":
            raise DataError("no usage queue (HTTP 404): is this CLIProxyAPI v7 with a management key set?", where=base) from None
        try:
            stats = poll_v6(base, key, out_dir, timeout, log)
            used = "v6"
        except NotFound:
            raise DataError("no usage endpoint (HTTP 404): enable usage-statistics-enabled and remote management", where=base) from None
    if not quiet or recovered:
        files = ", ".join(f"{n} in {name}" for name, n in sorted(stats["files"].items())) or "nothing new"
        extra = f"; {recovered} finished from an interrupted run" if recovered else ""
        log(f"extract-cliproxy: {stats['records']} {used} record(s) archived in {out_dir} ({files}){extra}")


main = cli

if __name__ == "__main__":
    cli()
