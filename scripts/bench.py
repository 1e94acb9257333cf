"""bench: time whole `make all` processes against ccusage on generated logs.

Scenarios, each the median of --runs whole-process runs (wall time and peak RSS of the
process tree):

\b
  cold         make all into an empty ARTIFACTS
  warm         make all again, nothing changed
  incremental  make all after appending 1% more calls (half appended to existing
               Claude sessions, half as new session files), once per run
  reference    ccusage daily --json --offline on the same logs when ccusage is
               installed, else a plain single-process Python loop (substring
               pre-filter + json.loads) over the same files

Before each timed run the file system's dirty pages are flushed (``os.sync``, outside
the timing): a run's files are written back by the kernel in the background after it
ends, and back-to-back runs would otherwise pay for the previous run's writeback (the
incremental rounds after five cold runs grew from 0.24 to 0.38 s without it), which no
run a user starts a while after the last one does.

Results go to $ARTIFACTS/bench/<run-id>.json and bench/latest.json with the ratios
ours/reference. ``--gate`` compares the ratios with the median of earlier runs of the same
size (and the committed baseline bench/baseline.json) and fails on a regression beyond
the tolerance.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import click

from scripts.cli import stage_command
from scripts.core.sample_logs import ROOT, generate, pipeline_env
from scripts.shared_io import AtomicFile, DataError, dumps_doc

BENCH_SCHEMA_VERSION = 1
TOLERANCE = 0.5  # a ratio may grow 50% over the baseline median before the gate fails
GATED = ("cold_vs_reference", "warm_vs_reference", "incremental_vs_reference")
TARGETS = {"cold_vs_reference": 1.0, "warm_vs_reference": 0.1, "incremental_vs_reference": 0.2}


def find_ccusage() -> str | None:
    cands = [os.environ.get("CCUSAGE", "")]
    for prefix in (os.environ.get("PEERS", ""), "/tmp/peers", os.path.join(ROOT, ".peers")):
        if prefix:
            cands.append(os.path.join(prefix, "node_modules", "@ccusage", "ccusage-linux-x64", "bin", "ccusage"))
    for c in cands:
        if c and os.path.isfile(c):
            try:
                os.chmod(c, 0o755)
            except OSError:
                pass
            return c
    return shutil.which("ccusage")


def run_measured(argv, env, cwd=ROOT) -> tuple[float, float, int]:
    """Run argv; return (wall seconds, peak RSS MB of the process tree, exit code)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise DataError(f"{' '.join(argv[:3])} exited {proc.returncode}: {err.strip()[-400:]}")
    return wall, usage.ru_maxrss / 1024.0, proc.returncode


def append_one_percent(live_home: str, delta_dir: str, round_no: int) -> None:
    """Add a generated 1% batch: half of its Claude sessions appended to existing session
    files (a log that grew), the rest and all Codex sessions as new files."""
    src_home = os.path.join(delta_dir, "home")
    claude_dst = sorted(
        os.path.join(d, f) for d, _, fs in os.walk(os.path.join(live_home, ".claude", "projects")) for f in fs if f.endswith(".jsonl")
    )
    i = 0
    for d, _, fs in sorted(os.walk(src_home)):
        for f in sorted(fs):
            src = os.path.join(d, f)
            rel = os.path.relpath(src, src_home)
            with open(src, "rb") as fh:
                data = fh.read()
            if rel.startswith(".claude") and i % 2 == 0 and claude_dst:
                target = claude_dst[(i * 7919 + round_no) % len(claude_dst)]
            else:
                base, ext = os.path.splitext(rel)
                target = os.path.join(live_home, f"{base}-r{round_no}{ext}")
                os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "ab") as fh:
                fh.write(data)
            i += 1


def python_reference(home: str) -> list[str]:
    """argv of the plain-Python reference loop (substring filter + json.loads, one process)."""
    code = (
        "import json,os,sys\n"
        "n=0\n"
        "for root,_,fs in os.walk(sys.argv[1]):\n"
        "  for f in fs:\n"
        "    if f.endswith('.jsonl'):\n"
        "      for l in open(os.path.join(root,f),'rb'):\n"
        "        if b'\"usage\"' in l or b'\"token_count\"' in l: json.loads(l); n+=1\n"
        "print(n)\n"
    )
    return [sys.executable, "-c", code, home]


def measure(events: int, runs: int, seed: int, workdir: str, artifacts: str, use_ccusage: bool, log) -> dict:
    import compileall

    # Byte-compile the code being measured first: where PYTHONDONTWRITEBYTECODE is set,
    # every run would otherwise compile each module edited since its last .pyc again
    # (~1 ms per module), which no user's second run pays.
    compileall.compile_dir(os.path.join(ROOT, "scripts"), quiet=1)
    # and bring .venv up to date (the compiled parser after fastparse.c changed): the
    # first timed run would otherwise include the C compiler (~1 s, its ~65 MB peak)
    run_measured(["make", "--no-print-directory", "-s", ".venv/.installed"], dict(os.environ))
    logs = generate(workdir, events, seed)
    live = os.path.join(workdir, f"live-{events}-{seed}")
    shutil.rmtree(live, ignore_errors=True)
    shutil.copytree(os.path.join(logs, "home"), os.path.join(live, "home"))
    bundle = os.path.join(workdir, f"bundle-{events}-{seed}")
    env = pipeline_env(os.path.join(live, "home"), bundle, os.path.join(workdir, "empty-home"))
    make = ["make", "--no-print-directory", "-s", "all"]
    res: dict[str, dict] = {}

    def scenario(name, argv, before=None, envv=env):
        walls, rss = [], []
        for i in range(runs):
            if before:
                before(i)
            os.sync()  # not the previous run's writeback (see the module docstring)
            w, r, _ = run_measured(argv, envv)
            walls.append(w)
            rss.append(r)
            log(f"  {name} run {i + 1}: {w:.3f} s, {r:.0f} MB")
        res[name] = {"runs_s": [round(w, 4) for w in walls], "median_s": round(statistics.median(walls), 4), "peak_rss_mb": round(max(rss), 1)}

    scenario("cold", make, before=lambda i: shutil.rmtree(bundle, ignore_errors=True))
    scenario("warm", make)
    delta_events = max(1, events // 100)
    deltas = [generate(workdir, delta_events, seed + 1000 + i, start="2026-09-30", days=1) for i in range(runs)]
    scenario("incremental", make, before=lambda i: append_one_percent(os.path.join(live, "home"), deltas[i], i))
    # correctness after all the rounds: the tokens equal base + every appended batch
    expected, got = tokens([logs] + deltas, bundle)
    ccusage = find_ccusage() if use_ccusage else None
    if ccusage:
        cc_env = dict(env, HOME=os.path.join(workdir, "ccusage-home"), CLAUDE_CONFIG_DIR=os.path.join(logs, "home", ".claude"),
                      CODEX_HOME=os.path.join(logs, "home", ".codex"), NO_COLOR="1", LOG_LEVEL="0")
        os.makedirs(cc_env["HOME"], exist_ok=True)
        scenario("reference", [ccusage, "daily", "--json", "--offline"], envv=cc_env)
        reference = "ccusage " + subprocess.run([ccusage, "--version"], capture_output=True, text=True, env=cc_env).stdout.strip()
    else:
        scenario("reference", python_reference(os.path.join(logs, "home")))
        reference = "python-loop"
    ref = res["reference"]["median_s"]
    size_bytes = log_bytes(logs)
    return {
        "events": events,
        "seed": seed,
        "log_bytes": size_bytes,
        "reference": reference,
        "scenarios": res,
        "ratios": {
            "cold_vs_reference": round(res["cold"]["median_s"] / ref, 4),
            "warm_vs_reference": round(res["warm"]["median_s"] / ref, 4),
            "incremental_vs_reference": round(res["incremental"]["median_s"] / ref, 4),
            "warm_vs_cold": round(res["warm"]["median_s"] / res["cold"]["median_s"], 4),
            "incremental_vs_cold": round(res["incremental"]["median_s"] / res["cold"]["median_s"], 4),
        },
        "correct": got == expected,
        "tokens": {"expected": expected, "got": got},
    }


def tokens(generated: list[str], bundle: str) -> tuple[int, int]:
    """``(expected, got)``: the generator's total tokens over ``generated`` (the base logs
    and each appended batch) and the bundle's."""
    expected = 0
    for d in generated:
        with open(os.path.join(d, "expected.json")) as fh:
            expected += json.load(fh)["totals"]["totalTokens"]
    with open(os.path.join(bundle, "reports", "monthly.json")) as fh:
        return expected, json.load(fh)["totals"]["total_tokens"]


def log_bytes(logs: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(logs, "home")) for f in fs)


GROWTH_END = dt.date(2026, 9, 30)  # a growth series' histories end the day before the appended calls'


def growth(days_list: list[int], per_day: int, rounds: int, seed: int, workdir: str, log) -> dict:
    """Peak RSS (and wall time) as the history grows: for each number of days, logs of
    ``per_day`` calls a day ending on GROWTH_END, a cold ``make all``, then ``rounds``
    runs after appending 1% more calls each (the later runs). Flat means the largest
    process of a run is the same size whatever the number of days."""
    import compileall

    compileall.compile_dir(os.path.join(ROOT, "scripts"), quiet=1)  # see measure
    run_measured(["make", "--no-print-directory", "-s", ".venv/.installed"], dict(os.environ))
    make = ["make", "--no-print-directory", "-s", "all"]
    series = []
    for days in days_list:
        events = per_day * days
        logs = generate(workdir, events, seed, start=(GROWTH_END - dt.timedelta(days=days)).isoformat(), days=days)
        # a copy the later runs append to (the generated logs are reused by later benches)
        live = os.path.join(workdir, f"growth-live-{days}")
        bundle = os.path.join(workdir, f"growth-bundle-{days}")
        for d in (live, bundle):
            shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(os.path.join(logs, "home"), os.path.join(live, "home"))
        env = pipeline_env(os.path.join(live, "home"), bundle, os.path.join(workdir, "empty-home"))
        os.sync()
        cold_s, cold_mb, _ = run_measured(make, env)
        later = []
        deltas = [generate(workdir, max(1, events // 100), seed + 1000 + i, start=GROWTH_END.isoformat(), days=1) for i in range(rounds)]
        for i, delta in enumerate(deltas):
            append_one_percent(os.path.join(live, "home"), delta, i)
            os.sync()
            later.append(run_measured(make, env)[:2])
        expected, got = tokens([logs] + deltas, bundle)
        point = {"days": days, "events": events, "log_bytes": log_bytes(logs),
                 "cold": {"s": round(cold_s, 4), "peak_rss_mb": round(cold_mb, 1)},
                 "later": {"runs_s": [round(w, 4) for w, _ in later], "peak_rss_mb": round(max(r for _, r in later), 1)},
                 "correct": got == expected}
        log(f"  {days} days, {events:,} calls: cold {cold_s:.2f} s, {cold_mb:.1f} MB; later runs "
            f"{', '.join(f'{w:.2f} s' for w, _ in later)}, {point['later']['peak_rss_mb']:.1f} MB; tokens {'exact' if point['correct'] else 'MISMATCH'}")
        series.append(point)
        for d in (live, bundle):
            shutil.rmtree(d, ignore_errors=True)
    spread = {k: round(max(p[k]["peak_rss_mb"] for p in series) - min(p[k]["peak_rss_mb"] for p in series), 1) for k in ("cold", "later")}
    return {"per_day": per_day, "rounds": rounds, "seed": seed, "series": series, "spread_mb": spread,
            "correct": all(p["correct"] for p in series)}


def history(bench_dir: str) -> list[dict]:
    out = []
    try:
        names = sorted(os.listdir(bench_dir))
    except OSError:
        return out
    for name in names:
        if name.endswith(".json") and name not in ("latest.json",):
            try:
                with open(os.path.join(bench_dir, name)) as fh:
                    out.append(json.load(fh))
            except (OSError, ValueError):
                continue
    return out


def gate(result: dict, past: list[dict], baseline: dict | None) -> dict:
    """Compare ratios with the median of earlier runs of the same size and reference
    kind (and the committed baseline); one noisy run neither fails nor hides a regression."""
    kind = result["reference"].split(" ")[0]
    same = [r for r in past if r.get("events") == result["events"] and r.get("reference", "").split(" ")[0] == kind]
    base_ratios = {}
    entries = [
        e for e in (baseline or {}).get("entries", []) if e.get("events") == result["events"] and e.get("reference", "").split(" ")[0] == kind
    ]
    for key in GATED:
        values = [r["ratios"][key] for r in same[-5:] if key in r.get("ratios", {})]
        values += [e["ratios"][key] for e in entries if key in e.get("ratios", {})]
        if values:
            base_ratios[key] = statistics.median(values)
    checks = []
    for key, base in sorted(base_ratios.items()):
        limit = base * (1 + TOLERANCE)
        checks.append({"ratio": key, "value": result["ratios"][key], "baseline_median": round(base, 4), "limit": round(limit, 4),
                       "ok": result["ratios"][key] <= limit})
    return {"tolerance": TOLERANCE, "compared_with": len(same[-5:]) + len(entries), "checks": checks,
            "missing_baseline": not base_ratios, "ok": all(c["ok"] for c in checks)}


def trend(past: list[dict]) -> dict:
    """Per size and scenario: latest, median and p95 of the recorded medians."""
    out: dict[str, dict] = {}
    for r in past:
        size = str(r.get("events"))
        for name, sc in r.get("scenarios", {}).items():
            out.setdefault(size, {}).setdefault(name, []).append(sc["median_s"])
    table = {}
    for size, scs in sorted(out.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0):
        table[size] = {}
        for name, values in sorted(scs.items()):
            ordered = sorted(values)
            p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
            table[size][name] = {"runs": len(values), "latest_s": values[-1], "median_s": round(statistics.median(values), 4), "p95_s": p95}
    return table


@stage_command("bench")
@click.option("--events", type=int, default=200_000, show_default=True, help="Calls in the generated logs.")
@click.option("--runs", type=int, default=5, show_default=True, help="Whole-process runs per scenario (median).")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--workdir", default=None, help="Where logs and the bundle go (default: a temp dir, logs reused).")
@click.option("--artifacts", envvar="ARTIFACTS", default="artifacts", show_default=True, help="Results go to ARTIFACTS/bench/.")
@click.option("--ccusage/--no-ccusage", default=True, help="Use ccusage as the reference when installed.")
@click.option("--gate", "do_gate", is_flag=True, help="Fail on a ratio regression beyond the tolerance.")
@click.option("--baseline", default=os.path.join(ROOT, "bench", "baseline.json"), show_default=True, help="Committed baseline ratios.")
@click.option("--strict-baseline", is_flag=True, envvar="PERF_STRICT", help="A missing baseline fails the gate (env PERF_STRICT=1).")
@click.option("--trend", "show_trend", is_flag=True, help="Only summarize the recorded history (latest, median, p95).")
@click.option("--record-baseline", is_flag=True, help="Add this run's ratios to the baseline file (replacing the same size and reference).")
@click.option("--growth", default=None, metavar="DAYS,...", help="Instead: peak RSS as the history grows, for each number of days (e.g. 20,100,200,400) at --per-day calls a day -> ARTIFACTS/bench/growth/.")
@click.option("--per-day", type=int, default=1000, show_default=True, help="Calls a day in a --growth series.")
def cli(events, runs, seed, workdir, artifacts, ccusage, do_gate, baseline, strict_baseline, show_trend, record_baseline, growth, per_day):
    """Benchmark make all (cold, warm, +1% incremental) against ccusage on generated logs.

    With --growth, measure instead how the largest process of a run grows with the
    history: the same calls a day over more and more days, a cold run and two later
    runs (+1% calls each) per history.

    Example:

    \b
        bench --events 200000 --runs 5          # what `make bench` runs
        bench --events 20000 --runs 3 --gate     # the perf gate in `make check`
        bench --trend
        bench --growth 20,100,200,400            # what `make bench-growth` runs
    """
    bench_dir = os.path.join(artifacts, "bench")
    if growth:
        _growth_command(growth, per_day, seed, workdir, bench_dir)
        return
    past = history(bench_dir)
    if show_trend:
        click.echo(json.dumps(trend(past), indent=2))
        return
    workdir = _workdir(workdir)
    _log(f"bench: {events:,} calls, {runs} runs per scenario, work in {workdir}")
    result = measure(events, runs, seed, workdir, artifacts, ccusage, _log)
    doc = {**_head(f"-{events}"), "targets": TARGETS, **result}
    run_id = doc["run_id"]
    base_doc = None
    if os.path.exists(baseline):
        with open(baseline) as fh:
            base_doc = json.load(fh)
    doc["gate"] = gate(doc, past, base_doc)
    with AtomicFile(os.path.join(bench_dir, f"{run_id}.json")) as fh:
        fh.write(dumps_doc(doc))
    with AtomicFile(os.path.join(bench_dir, "latest.json")) as fh:
        fh.write(dumps_doc(doc))
    sc, r = doc["scenarios"], doc["ratios"]
    _log(
        f"cold {sc['cold']['median_s']:.3f} s, warm {sc['warm']['median_s']:.3f} s, incremental {sc['incremental']['median_s']:.3f} s, "
        f"{doc['reference']} {sc['reference']['median_s']:.3f} s; peak RSS {max(s['peak_rss_mb'] for k, s in sc.items() if k != 'reference'):.0f} MB"
    )
    _log("ratios vs reference: " + ", ".join(f"{k.split('_vs')[0]} {v:.3f} (target {TARGETS[k]})" for k, v in r.items() if k in TARGETS))
    _log(f"tokens after incremental rounds: {'exact' if doc['correct'] else 'MISMATCH'} ({doc['tokens']['got']:,})")
    if not doc["correct"]:
        raise DataError("incremental bundle does not equal the generator's totals")
    if record_baseline:
        kind = doc["reference"].split(" ")[0]
        entries = [e for e in (base_doc or {}).get("entries", []) if not (e["events"] == events and e["reference"].split(" ")[0] == kind)]
        entries.append({"events": events, "reference": doc["reference"], "ratios": doc["ratios"], "run_id": run_id, "machine": doc["machine"]})
        entries.sort(key=lambda e: (e["events"], e["reference"]))
        with AtomicFile(baseline) as fh:
            fh.write(dumps_doc({"schema_version": 1, "tolerance": TOLERANCE, "entries": entries}))
        _log(f"baseline: recorded {events} calls vs {kind} in {baseline}")
    if do_gate:
        g = doc["gate"]
        if g["missing_baseline"]:
            _log(f"perf gate: no baseline for {events} calls with this reference ({baseline}); nothing to compare")
            if strict_baseline:
                raise SystemExit(1)
        for c in g["checks"]:
            _log(f"perf gate: {c['ratio']} {c['value']:.3f} vs median {c['baseline_median']:.3f} (limit {c['limit']:.3f}): {'ok' if c['ok'] else 'REGRESSION'}")
        if not g["ok"]:
            raise SystemExit(1)


def _workdir(workdir: str | None) -> str:
    """Where logs and bundles go (default: a temp dir, the generated logs reused)."""
    workdir = workdir or os.path.join(os.environ.get("TMPDIR", "/tmp"), "tokentally-bench")
    os.makedirs(workdir, exist_ok=True)
    return workdir


def _log(msg: str) -> None:
    click.echo(msg, err=True)


def _head(suffix: str) -> dict:
    """A result document's first keys: its version, run id (the time and ``suffix``),
    when and where it ran."""
    now = dt.datetime.now(dt.timezone.utc)
    return {"schema_version": BENCH_SCHEMA_VERSION, "run_id": now.strftime("%Y%m%dT%H%M%SZ") + suffix,
            "generated_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform}}


def _growth_command(days_arg: str, per_day: int, seed: int, workdir: str | None, bench_dir: str) -> None:
    try:
        days_list = [int(d) for d in days_arg.split(",")]
    except ValueError:
        raise click.BadParameter(f"{days_arg!r} is not a comma-separated list of days", param_hint="--growth") from None
    if not days_list or min(days_list) < 1 or per_day < 1:
        raise click.BadParameter("days and calls a day must be at least 1", param_hint="--growth")
    workdir = _workdir(workdir)
    _log(f"bench --growth: {per_day:,} calls a day over {', '.join(map(str, days_list))} days, work in {workdir}")
    result = growth(days_list, per_day, 2, seed, workdir, _log)
    doc = {**_head(f"-growth-{per_day}"), **result}
    run_id = doc["run_id"]
    out_dir = os.path.join(bench_dir, "growth")
    for name in (f"{run_id}.json", "latest.json"):
        with AtomicFile(os.path.join(out_dir, name)) as fh:
            fh.write(dumps_doc(doc))
    def peaks(kind: str) -> str:
        return ", ".join("%.1f" % p[kind]["peak_rss_mb"] for p in result["series"])

    _log(f"largest process, cold: {peaks('cold')} MB (spread {result['spread_mb']['cold']:.1f}); "
        f"later runs: {peaks('later')} MB (spread {result['spread_mb']['later']:.1f}) -> {os.path.join(out_dir, run_id + '.json')}")
    if not result["correct"]:
        raise DataError("a growth series' bundle does not equal the generator's totals")


main = cli

if __name__ == "__main__":
    cli()
