"""docs/integrations/: each example runs against a directory that holds only
ui-snapshot.json (they read nothing else) with the machine's node, python3 and bash."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PYTHON, ROOT, load_json, run_cmd
from ui_bundle import build_bundle

INTEGRATIONS = ROOT / "docs" / "integrations"
NODE = shutil.which("node") or ("/usr/bin/node" if os.path.exists("/usr/bin/node") else None)
needs_node = pytest.mark.skipif(NODE is None and not os.environ.get("CI"), reason="node is not installed")


@pytest.fixture(scope="module")
def lone_snapshot(sample_logs, tmp_path_factory) -> Path:
    """A directory with the bundle's ui-snapshot.json and nothing else."""
    bundle = build_bundle(sample_logs(2000), tmp_path_factory.mktemp("ui-int"), month="2026-08", mode="compact")
    lone = tmp_path_factory.mktemp("lone")
    shutil.copy(bundle / "ui-snapshot.json", lone / "ui-snapshot.json")
    return lone / "ui-snapshot.json"


def money(v):
    return f"${v:,.2f}"


# ---------------------------------------------------------------- Node


@needs_node
def test_node_reader_once(lone_snapshot):
    doc = load_json(lone_snapshot)
    proc = run_cmd([NODE, str(INTEGRATIONS / "node" / "tokentally-snapshot.mjs"), "--once", str(lone_snapshot)])
    top = doc["top_providers"][0]
    n = len(doc["suggestions"])
    hint = f" · {n} suggestion{'s' if n != 1 else ''}" if n else ""
    assert proc.stdout.decode() == (
        f"2026-08 {money(doc['totals']['cost_usd'])} · today {money(doc['today']['cost_usd'])} · "
        f"top {top['name']} {money(top['total_cost_usd'])}{hint}\n"
    )
    proc = run_cmd([NODE, str(INTEGRATIONS / "node" / "tokentally-snapshot.mjs"), "--once", str(lone_snapshot.parent / "nope.json")], check=False)
    assert proc.returncode == 1 and b"missing" in proc.stderr


@needs_node
def test_node_poller_keeps_the_last_good_state(lone_snapshot, tmp_path):
    """Updates are reported; a torn, missing or future-version file is an error and the
    last good snapshot is kept; the poller then picks up the next good one."""
    good = load_json(lone_snapshot)
    path = tmp_path / "ui-snapshot.json"

    def write(doc_or_text):
        data = doc_or_text if isinstance(doc_or_text, str) else json.dumps(doc_or_text)
        tmp = tmp_path / ".tmp"
        tmp.write_text(data)
        os.replace(tmp, path)
        time.sleep(0.4)

    write(good)
    proc = subprocess.Popen([NODE, str(INTEGRATIONS / "node" / "tokentally-snapshot.mjs"), "--interval", "40", "--count", "3", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.6)
        write('{"schema_version": 1, "tot')  # torn
        path.unlink()  # missing
        time.sleep(0.4)
        write(dict(good, totals=dict(good["totals"], cost_usd=1.5)))
        write(dict(good, schema_version=2))  # a future version: not understood, keep the last
        write(dict(good, totals=dict(good["totals"], cost_usd=2.25), unknown_key={"ignored": True}))
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = out.decode().splitlines()
    assert [line.split(" · ")[0] for line in lines] == [f"2026-08 {money(good['totals']['cost_usd'])}", "2026-08 $1.50", "2026-08 $2.25"]
    err = err.decode()
    assert "not valid JSON" in err and "missing" in err and "schema_version 2 is not supported" in err
    assert f"keeping the snapshot of {good['generated_at']}" in err


@needs_node
def test_typescript_definitions_name_every_field_of_the_schema():
    schema = load_json(ROOT / "schemas" / "ui-snapshot.v1.schema.json")
    dts = (INTEGRATIONS / "node" / "tokentally-snapshot.d.ts").read_text()
    for key in schema["properties"]:
        assert f"{key}" in dts, key
    for key in schema["properties"]["totals"]["properties"]:
        assert key in dts, key


# ---------------------------------------------------------------- OpenCode


@needs_node
def test_opencode_plugin_toasts_on_idle(lone_snapshot, tmp_path):
    doc = load_json(lone_snapshot)
    script = f"""
import {{ TokentallyPlugin }} from {json.dumps((INTEGRATIONS / "opencode" / "tokentally.js").as_uri())};
const toasts = [];
const client = {{ tui: {{ showToast: async (req) => {{ toasts.push(req); return {{ data: true }}; }} }} }};
const hooks = await TokentallyPlugin({{ client, directory: "/tmp", worktree: "/tmp", project: {{}}, $: null }});
await hooks.event({{ event: {{ type: "message.updated", properties: {{}} }} }});
await hooks.event({{ event: {{ type: "session.idle", properties: {{ sessionID: "s1" }} }} }});
process.env.TOKENTALLY_SNAPSHOT = {json.dumps(str(tmp_path / "gone.json"))};
await hooks.event({{ event: {{ type: "session.idle", properties: {{ sessionID: "s1" }} }} }});
console.log(JSON.stringify(toasts));
"""
    proc = run_cmd([NODE, "--input-type=module", "-e", script], env={"TOKENTALLY_SNAPSHOT": str(lone_snapshot)})
    toasts = json.loads(proc.stdout)
    top = doc["top_models"][0]
    message = f"2026-08: {money(doc['totals']['cost_usd'])} · today {money(doc['today']['cost_usd'])} · top model {top['name']} {money(top['total_cost_usd'])}"
    # one toast per idle session; the second one (file gone) repeats the last good state
    assert toasts == [{"body": {"title": "tokentally", "message": message, "variant": "info"}}] * 2


# ---------------------------------------------------------------- xbar / SwiftBar


def test_xbar_plugin_menu_and_last_good_state(lone_snapshot, tmp_path):
    doc = load_json(lone_snapshot)
    script = str(INTEGRATIONS / "xbar" / "tokentally.5m.py")
    cache = tmp_path / "xbar-cache.json"
    path = tmp_path / "ui-snapshot.json"
    shutil.copy(lone_snapshot, path)
    env = {"TOKENTALLY_SNAPSHOT": str(path), "TOKENTALLY_XBAR_CACHE": str(cache)}
    out = run_cmd(["python3", script], env=env).stdout.decode().splitlines()
    assert out[0] == money(doc["totals"]["cost_usd"])
    assert out[1] == "---" and "Refresh | refresh=true" in out
    for row in doc["top_providers"]:
        assert any(line.startswith(f"--{row['name']}: {money(row['total_cost_usd'])}") for line in out)
    assert cache.exists()
    path.write_text("{ torn")
    out = run_cmd(["python3", script], env=env).stdout.decode().splitlines()
    assert out[0] == money(doc["totals"]["cost_usd"]) + " ⚠"
    assert out[2].startswith("Showing the last good snapshot: snapshot unreadable")
    cache.unlink()
    path.unlink()
    out = run_cmd(["python3", script], env=env).stdout.decode().splitlines()
    assert out[:3] == ["tokentally ?", "---", "tokentally: no snapshot yet (run make all)"]


# ---------------------------------------------------------------- shell prompt


def test_shell_prompt_snippet(lone_snapshot, tmp_path):
    # the snippet calls the statusline command; point it at this checkout's
    wrapper = tmp_path / "snapshot"
    wrapper.write_text(f"#!/bin/sh\ncd {ROOT} && exec {PYTHON} -m scripts.snapshot \"$@\"\n")
    wrapper.chmod(0o755)
    expected = run_cmd([PYTHON, "-m", "scripts.snapshot", "--statusline", "--artifacts", str(lone_snapshot.parent)]).stdout.decode().strip()
    script = f"""
set -u
. {INTEGRATIONS / 'shell' / 'tokentally-prompt.sh'}
PS1='[$TOKENTALLY_SEGMENT] \\w \\$ '
false
tokentally_precmd
echo "status=$?"
echo "segment=$TOKENTALLY_SEGMENT"
echo "prompt=${{PS1@P}}"
"""
    env = {"TOKENTALLY_BIN": str(wrapper), "TOKENTALLY_ARTIFACTS": str(lone_snapshot.parent), "HOME": str(tmp_path)}
    out = run_cmd(["bash", "--norc", "--noprofile", "-c", script], env=env, cwd=tmp_path).stdout.decode().splitlines()
    assert out[0] == "status=1", "the prompt hook keeps the last exit status"
    assert out[1] == f"segment={expected}"
    assert out[2].startswith(f"prompt=[{expected}] ")
    # no tokentally installed: an empty segment, no error
    env["TOKENTALLY_BIN"] = str(tmp_path / "absent")
    out = run_cmd(["bash", "--norc", "--noprofile", "-c", script], env=env, cwd=tmp_path)
    assert b"segment=\n" in out.stdout and out.stderr == b""
