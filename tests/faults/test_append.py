"""Logs appended to while ``make all`` reads them: no line lost, none counted twice.

A writer thread grows real Claude Code and Codex logs (and creates new session files) the
way the tools do: appends in chunks that cut lines anywhere, a few milliseconds apart,
while ``make all`` runs again and again. The parse cache resumes each file at the byte after
its last complete line (a cut-short last line waits for a later run). When the writer is
done, one more run; then every line of every file is a record of the run summary, the
events equal a from-scratch FORCE=1 build, and the totals equal the generator's truth.
"""
from __future__ import annotations

import json
import random
import threading
import time

from conftest import event_bytes

from .harness import LONG, diff_results, figure, make, results


def _lines_of(home, pattern):
    return sum(1 for p in home.rglob(pattern) for line in p.read_bytes().splitlines() if line.strip())


def _writer(full_home, live_home, seed, stop_after, done: threading.Event, log: list):
    """Append the rest of every file, in chunks cutting lines anywhere, files interleaved."""
    rng = random.Random(seed)
    pending = []
    for src in sorted(full_home.rglob("*.jsonl")):
        dst = live_home / src.relative_to(full_home)
        have = dst.stat().st_size if dst.exists() else 0
        data = src.read_bytes()
        pos = have
        while pos < len(data):
            n = rng.choice([1, 7, 60, 300, 1500, 4000])
            pending.append((dst, data[pos:pos + n]))
            pos += n
    # interleave: each file's chunks stay in order, files take turns at random
    by_file: dict = {}
    for dst, chunk in pending:
        by_file.setdefault(dst, []).append(chunk)
    queues = {dst: list(reversed(chunks)) for dst, chunks in by_file.items()}
    t_end = time.monotonic() + stop_after
    chunks = 0
    while queues:
        dst = rng.choice(sorted(queues))
        chunk = queues[dst].pop()
        if not queues[dst]:
            del queues[dst]
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(dst, "ab") as fh:
            fh.write(chunk)
        chunks += 1
        if time.monotonic() < t_end:
            time.sleep(rng.uniform(0, 0.003))
    log.append(chunks)
    done.set()


def _cut(full_home, live_home, fraction):
    for i, src in enumerate(sorted(full_home.rglob("*.jsonl"))):
        if i % 3 == 0:
            continue  # created by the writer during the runs
        data = src.read_bytes()
        dst = live_home / src.relative_to(full_home)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data[: int(len(data) * fraction)])  # cut anywhere, mid-line too


def test_logs_growing_during_runs_lose_and_double_nothing(tree, tmp_path):
    full = tree.logs / "home"
    live = tmp_path / "live"
    _cut(full, live, 0.3)
    art = tmp_path / "art"
    nowhere = tmp_path / "absent"
    env = dict(HOME=str(tree.home), ARTIFACTS=str(art), TIMEZONE="UTC", MONTH="2026-08", DEVICE="faultbox",
               CLAUDE_CONFIG_DIR=str(live / ".claude"), CODEX_HOME=str(live / ".codex"),
               CURSOR_STATE_DB=str(nowhere / "state.vscdb"), DROID_SESSIONS_DIR=str(nowhere), OPENCODE_DATA_DIR=str(nowhere),
               GEMINI_DATA_DIR=str(nowhere), CLIPROXY_USAGE_DIR=str(nowhere))
    make(env, "all")
    done = threading.Event()
    chunks: list = []
    writer = threading.Thread(target=_writer, args=(full, live, 3, 8.0 if LONG else 3.0, done, chunks))
    writer.start()
    runs = resumed = 0
    while not done.is_set():
        make(env, "all")
        runs += 1
        summary = json.loads((art / "runs" / "latest.json").read_text())
        assert summary["totals"]["balanced"]
        resumed += summary["caches"]["parsed_events"]["resumed"]
    writer.join()
    make(env, "all")  # the next run after the writer stopped
    summary = json.loads((art / "runs" / "latest.json").read_text())
    lines = {"claude": _lines_of(live / ".claude", "*.jsonl"), "codex": _lines_of(live / ".codex", "*.jsonl")}
    for source, n in lines.items():
        s = summary["sources"][source]
        assert s["records"] == n, f"{source}: {s['records']} records for {n} lines"
        assert s["events"] + s["duplicates"] + s["not_a_call"] + s["rejected"] == s["records"]
    fresh = tmp_path / "fresh"
    make(dict(env, ARTIFACTS=str(fresh), FORCE="1"), "all")
    assert not diff_results(results(art), results(fresh)), "appended-while-read differs from a fresh build"
    truth = json.loads((tree.logs / "expected.json").read_text())["bySource"]
    for source in ("claude", "codex"):
        evs = [json.loads(line) for line in event_bytes(art, source).splitlines()]
        assert len(evs) == truth[source]["events"]
        assert sum(e["usage"]["input_tokens"] for e in evs) == truth[source]["inputTokens"]
        assert sum(e["usage"]["output_tokens"] for e in evs) == truth[source]["outputTokens"]
        assert sum(e["usage"]["cache_read_tokens"] for e in evs) == truth[source]["cacheReadTokens"]
        assert sum(e["usage"]["cache_write_tokens"] for e in evs) == truth[source]["cacheCreationTokens"]
    assert runs >= 3, f"only {runs} runs overlapped the writer"
    assert resumed > 0, "no file was resumed at its offset"
    figure("append.runs_while_writing", runs)
    figure("append.chunks_appended", chunks[0])
    figure("append.files_resumed_across_runs", resumed)
    figure("append.lines_accounted", lines)
    figure("append.events_vs_generator_truth", {s: truth[s]["events"] for s in ("claude", "codex")})
