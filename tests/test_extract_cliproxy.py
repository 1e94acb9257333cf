"""extract-cliproxy against a local HTTP server that serves CLIProxyAPI's documented shapes."""
from __future__ import annotations

import http.server
import json
import os
import threading
import urllib.parse

import orjson
import pytest

from conftest import PYTHON, make, run_cmd

KEY = "mgmt-secret"


def rec(i, day="2026-08-20", failed=False, rid=True):
    r = {
        "timestamp": f"{day}T10:{i:02d}:00.000Z", "latency_ms": 900, "source": "dev@example.com", "auth_index": "0",
        "tokens": {"input_tokens": 1000 + i, "output_tokens": 50, "reasoning_tokens": 0, "cached_tokens": 0, "total_tokens": 1050 + i},
        "failed": failed, "accounting_version": 2,
        "token_breakdown": {"schema_version": 2, "quality": "complete", "total_tokens": 1050 + i,
                            "input": {"total_tokens": 1000 + i, "uncached_tokens": 1000 + i, "cache_read_tokens": 0, "cache_write_tokens": 0},
                            "output": {"total_tokens": 50, "non_reasoning_tokens": 50, "reasoning_tokens": 0}, "unclassified_tokens": 0},
        "provider": "claude", "model": "claude-sonnet-4-5-20250929", "api_key": "sk-client", "request_id": f"req-{day}-{i}",
    }
    if not rid:
        del r["request_id"]
    return r


class Proxy:
    """A fake CLIProxyAPI: a v7 usage queue (popped on GET) and/or a v6 export."""

    def __init__(self, queue=None, export=None, garbage=False):
        self.queue = list(queue or [])
        self.export = export
        self.garbage = garbage
        self.requests: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                proxy.requests.append(self.path)
                auth = self.headers.get("Authorization", "") == f"Bearer {KEY}" or self.headers.get("X-Management-Key") == KEY
                url = urllib.parse.urlparse(self.path)
                if not auth:
                    return self._send(401, {"error": "invalid management key"})
                if url.path == "/v0/management/usage-queue" and proxy.queue is not None and proxy.export is None:
                    count = int(urllib.parse.parse_qs(url.query).get("count", ["1"])[0])
                    popped, proxy.queue[:] = proxy.queue[:count], proxy.queue[count:]
                    if proxy.garbage:
                        return self._send_raw(200, b"[{not json")
                    return self._send(200, popped)
                if url.path == "/v0/management/usage/export" and proxy.export is not None:
                    return self._send(200, proxy.export)
                return self._send(404, {"error": "not found"})

            def _send(self, code, obj):
                self._send_raw(code, json.dumps(obj).encode())

            def _send_raw(self, code, body):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy_factory():
    made = []

    def factory(**kw):
        p = Proxy(**kw)
        made.append(p)
        return p

    yield factory
    for p in made:
        p.close()


def poll(proxy, out, *args, key=KEY, check=True):
    env = {"CLIPROXY_URL": proxy.url, "CLIPROXY_KEY": key, "CLIPROXY_USAGE_DIR": str(out), "HOME": str(out.parent / "home")}
    return run_cmd([PYTHON, "-m", "scripts.extract_cliproxy", *args], env=env, check=check)


def lines(path):
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def normalized(out):
    proc = run_cmd([PYTHON, "-m", "scripts.normalize", "--source", "cliproxy", *sorted(str(p) for p in out.iterdir() if p.is_file())])
    return [orjson.loads(x) for x in proc.stdout.splitlines()]


def test_v7_pops_in_batches_and_appends_by_day(proxy_factory, tmp_path):
    proxy = proxy_factory(queue=[rec(i) for i in range(5)] + [rec(i, day="2026-08-21") for i in range(2)])
    out = tmp_path / "archive"
    proc = poll(proxy, out, "--count", "3")
    assert proxy.queue == []
    assert [p for p in proxy.requests if "usage-queue" in p] == ["/v0/management/usage-queue?count=3"] * 3
    assert len(lines(out / "usage-2026-08-20.jsonl")) == 5 and len(lines(out / "usage-2026-08-21.jsonl")) == 2
    assert "7 v7 record(s) archived" in proc.stderr.decode()
    # a later poll appends; what was archived stays as it was
    before = (out / "usage-2026-08-20.jsonl").read_bytes()
    proxy.queue.extend([rec(10), rec(11, failed=True)])
    poll(proxy, out, "--count", "3")
    after = (out / "usage-2026-08-20.jsonl").read_bytes()
    assert after.startswith(before) and len(lines(out / "usage-2026-08-20.jsonl")) == 7
    events = normalized(out)
    assert len(events) == 8  # 9 records, the failed one is not a call
    assert not (out / ".spool").exists() or not os.listdir(out / ".spool")


def test_a_malformed_response_is_kept_not_lost(proxy_factory, tmp_path):
    proxy = proxy_factory(queue=[rec(1)], garbage=True)
    out = tmp_path / "archive"
    proc = poll(proxy, out, check=False)
    err = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 1 and len(err) == 1 and "kept in" in err[0] and "Traceback" not in err[0]
    kept = list((out / ".spool").iterdir())
    assert len(kept) == 1 and kept[0].read_bytes() == b"[{not json"
    assert not list(out.glob("*.jsonl"))


def test_a_crash_after_popping_is_finished_by_the_next_run(proxy_factory, tmp_path, monkeypatch):
    """The batch is spooled (fsynced) before it is parsed and archived: a crash in between
    loses nothing, the next run archives the spooled batch first."""
    from click.testing import CliRunner

    from scripts import extract_cliproxy

    proxy = proxy_factory(queue=[rec(1), rec(2)])
    out = tmp_path / "archive"

    def crash(*a, **k):
        raise KeyboardInterrupt  # e.g. the machine going down mid-poll

    monkeypatch.setattr(extract_cliproxy, "archive_records", crash)
    result = CliRunner().invoke(extract_cliproxy.cli, ["--url", proxy.url, "--key", KEY, "--out-dir", str(out)])
    assert result.exit_code != 0
    assert proxy.queue == [] and len(list((out / ".spool").glob("*.body"))) == 1
    monkeypatch.undo()
    proc = poll(proxy, out)
    assert "2 finished from an interrupted run" in proc.stderr.decode()
    assert [r["request_id"] for r in lines(out / "usage-2026-08-20.jsonl")] == ["req-2026-08-20-1", "req-2026-08-20-2"]
    assert not list((out / ".spool").glob("*.body"))


def test_v6_export_is_archived_without_repeats(proxy_factory, tmp_path):
    def detail(i, failed=False):
        return {"timestamp": f"2026-08-19T09:{i:02d}:00Z", "latency_ms": 100, "source": "s", "auth_index": "0",
                "tokens": {"input_tokens": 500, "output_tokens": 20, "reasoning_tokens": 5, "cached_tokens": 100, "total_tokens": 525}, "failed": failed}

    def export(details, at):
        return {"version": 1, "exported_at": at, "usage": {"total_requests": len(details), "apis": {"sk-a": {"models": {"gpt-5": {"details": details}}}}}}

    proxy = proxy_factory(export=export([detail(1), detail(2, failed=True)], "2026-08-19T10:00:00Z"))
    out = tmp_path / "archive"
    proc = poll(proxy, out)
    assert "2 v6 record(s)" in proc.stderr.decode()
    proxy.export = export([detail(1), detail(2, failed=True), detail(3)], "2026-08-19T11:00:00Z")
    poll(proxy, out)
    poll(proxy, out)  # nothing new: no file
    files = sorted(p.name for p in out.glob("*.json"))
    assert files == ["export-2026-08-19T10-00-00Z.json", "export-2026-08-19T11-00-00Z.json"]
    second = json.loads((out / files[1]).read_text())
    assert len(second["usage"]["apis"]["sk-a"]["models"]["gpt-5"]["details"]) == 1
    events = normalized(out)
    assert len(events) == 2
    assert all(e["usage"]["input_tokens"] == 400 and e["usage"]["output_tokens"] == 25 for e in events)
    assert all("sk-a" not in json.dumps(e) for e in events)


def test_wrong_key_and_unreachable_proxy_are_one_line(proxy_factory, tmp_path):
    proxy = proxy_factory(queue=[rec(1)])
    proc = poll(proxy, tmp_path / "a", key="wrong", check=False)
    assert proc.returncode == 1 and proc.stderr.decode().strip().endswith("management key rejected (HTTP 401); set CLIPROXY_KEY")
    assert proxy.queue  # nothing popped
    proxy.close()
    proc = poll(proxy, tmp_path / "a", check=False)
    err = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 1 and len(err) == 1 and "cannot reach CLIProxyAPI" in err[0]


def test_make_cliproxy_poll(proxy_factory, tmp_path):
    proxy = proxy_factory(queue=[rec(1), rec(2, rid=False)])
    out = tmp_path / "archive"
    make("cliproxy-poll", env={"CLIPROXY_URL": proxy.url, "CLIPROXY_KEY": KEY, "CLIPROXY_USAGE_DIR": str(out)})
    assert len(lines(out / "usage-2026-08-20.jsonl")) == 2
    assert len(normalized(out)) == 2


@pytest.mark.parametrize("command", ["extract_cliproxy", "extract_cursor"])
def test_help_has_an_example(command):
    proc = run_cmd([PYTHON, "-m", f"scripts.{command}", "--help"])
    assert b"Example:" in proc.stdout and proc.stdout.count(b"\n") > 8
