"""Privacy: prompts, code, file contents and message text never reach an artifact; artifacts
respect the user's umask.

Every string of every source's fixture that is not structure (ids, types and roles,
timestamps, model and provider names, versions, working-directory paths: what an artifact may
hold) is replaced with a unique marker: message content, prompts, tool inputs and outputs,
thinking, file contents, titles, summaries, e-mail addresses, API keys, client addresses,
user agents. The SQLite fixtures are rebuilt from their marked specs (Cursor's damaged
raw rows are marked inside their bytes). Then the whole bundle, the ledger and the dashboard
are built, and no byte sequence of the marker may appear in any file under ARTIFACTS
(SQLite included). A text that looks like Droid's model marker (``Model: ...``) is planted
too, since the Droid adapter reads the model from the transcript's text.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import uuid

import pytest

from conftest import ROOT, run_cmd
from .harness import Tree, clean_env, figure

MARKER = "PRIVMARK" + uuid.uuid4().hex[:10].upper()

# keys whose string values are structure an artifact may hold (or the parse needs)
STRUCTURAL = {
    # identities
    "id", "uuid", "parentUuid", "leafUuid", "sessionId", "session_id", "sessionID", "requestId", "request_id", "agentId",
    "tool_use_id", "call_id", "bubbleId", "composerId", "conversationId", "serverBubbleId", "messageID", "message_id",
    "parentID", "parent_id", "projectID", "project_id", "projectHash", "parentSessionId", "forked_from_id", "$rewindTo",
    "key", "table", "auth_index",
    # kinds and settings
    "type", "role", "kind", "status", "mode", "agent", "finish", "stop_reason", "service_tier", "userType", "unifiedMode",
    "forceMode", "scheme", "auth_type", "executor_type", "quality", "originator", "approval_policy", "effort",
    "reasoning_effort", "sessionTitleAutoStage", "autonomyLevel", "autonomyMode", "interactionMode", "reasoningEffort",
    "apiProviderLock", "providerLock", "providerID", "model_provider", "provider", "vcs", "endpoint", "alias",
    # times
    "timestamp", "createdAt", "lastUpdated", "lastUpdatedAt", "startTime", "exported_at", "providerLockTimestamp",
    # models and versions
    "model", "modelName", "modelID", "version", "cli_version",
    # where: a project is the last part of a working directory
    "cwd", "fsPath", "path", "external", "root", "directory", "directories", "worktree", "workspaceUris",
    # the OpenCode spec's SQL
    "schema",
}
# text fields inside Cursor's damaged raw rows (marked inside the bytes)
RAW_TEXT_KEYS = ("text", "richText", "content", "name", "title", "summary", "description")


class Planter:
    def __init__(self):
        self.n = 0

    def mark(self, plain: bool = False) -> str:
        self.n += 1
        if plain:
            return f"{MARKER}{self.n:05d}"
        # a second copy after a fake model marker: Droid reads "Model: <name>" from text
        return f"{MARKER}{self.n:05d} Model: {MARKER}{self.n:05d}x"

    def value(self, v, key=None):
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if key == "apis":  # CLIProxyAPI exports are keyed by the client's API key
                    out[self.mark()] = self.value(x, k)
                else:
                    out[k] = self.value(x, k)
            return out
        if isinstance(v, list):
            return [self.value(x, key) for x in v]
        if isinstance(v, str):
            if key in STRUCTURAL:
                return v
            if "<system-reminder>" in v:
                # Droid's own reminder: keep its Model line (structure), mark the rest
                return "\n".join(line if line.startswith(("Model:", "<system-reminder>", "</system-reminder>")) else self.mark(plain=True)
                                 for line in v.split("\n"))
            return self.mark()
        return v

    def raw(self, s: str) -> str:
        """Mark the text fields inside a damaged JSON-ish string (cut short, garbage after)."""
        pattern = re.compile(r'"(' + "|".join(RAW_TEXT_KEYS) + r')"\s*:\s*"((?:[^"\\]|\\.)*)')
        out = pattern.sub(lambda m: f'"{m.group(1)}":"{self.mark()}', s)
        if out == s and not s.lstrip().startswith("{"):
            return self.mark()  # a plain text value (an e-mail, a plan name)
        return out


def plant(src_root, dst_root) -> int:
    """Copy fixtures/ to ``dst_root`` with every text marked; return how many were planted."""
    p = Planter()
    shutil.copytree(src_root, dst_root, ignore=shutil.ignore_patterns("build", "__pycache__", "expected"))
    for dirpath, _dirs, files in os.walk(dst_root):
        for fn in files:
            path = os.path.join(dirpath, fn)
            if fn in ("mtimes.json",) or fn.endswith(".py"):
                continue
            data = open(path, "rb").read()
            if fn == "state.vscdb.json":
                doc = json.loads(data)
                for row in doc["rows"]:
                    for k in list(row):
                        if k in ("value", "blob"):
                            row[k] = p.value(row[k])
                        elif k == "text":
                            row[k] = p.raw(row[k])
                        elif k == "hex":
                            row[k] = p.raw(bytes.fromhex(row[k]).decode("latin-1")).encode("latin-1").hex()
                        elif k not in ("table", "key", "in_wal"):
                            row[k] = p.value(row[k], k)
                out = json.dumps(doc, ensure_ascii=False, indent=1).encode()
            elif fn.endswith(".jsonl"):
                lines = []
                for line in data.split(b"\n"):
                    try:
                        lines.append(json.dumps(p.value(json.loads(line)), ensure_ascii=False).encode())
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        lines.append(line if not line.strip() else p.raw(line.decode("utf-8", "replace")).encode())
                out = b"\n".join(lines)
            elif fn.endswith(".json"):
                try:
                    out = json.dumps(p.value(json.loads(data)), ensure_ascii=False, indent=1).encode()
                except (json.JSONDecodeError, UnicodeDecodeError):
                    out = p.raw(data.decode("utf-8", "replace")).encode()
            else:
                continue
            st = os.stat(path)
            with open(path, "wb") as fh:
                fh.write(out)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return p.n


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    base = tmp_path_factory.mktemp("marked")
    fx = base / "fixtures"
    planted = plant(ROOT / "fixtures", fx)
    run_cmd(["python3", str(fx / "build_fixtures.py"), "--root", str(fx), "--force", "--quiet"])
    home = base / "home"
    home.mkdir()
    logs = base / "no-generated-logs"
    (logs / "home" / ".claude").mkdir(parents=True)
    (logs / "home" / ".codex").mkdir(parents=True)
    return Tree(fixtures=fx, logs=logs, home=home), planted


def _build(tree, art, umask=None):
    env = tree.env(art)
    for target in ("all", "ledger", "dashboard"):
        args = ["make", "--no-print-directory", target]
        if umask is not None:
            args = ["sh", "-c", f"umask {umask:03o} && exec make --no-print-directory {target}"]
        proc = subprocess.run(args, cwd=ROOT, env=clean_env(env), capture_output=True, timeout=600)
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]


def test_no_marker_reaches_any_artifact(marked, tmp_path):
    tree, planted = marked
    # the marked sources still parse: the same calls as the plain fixtures
    assert MARKER.encode() in (tree.fixtures / "cursor" / "build" / "state.vscdb").read_bytes() + (
        tree.fixtures / "cursor" / "build" / "state.vscdb-wal").read_bytes()
    art = tmp_path / "art"
    _build(tree, art)
    summary = json.loads((art / "runs" / "latest.json").read_text())
    present = {s: v["events"] for s, v in summary["sources"].items()}
    assert all(n > 0 for n in present.values()), present
    files = scanned = 0
    needle = MARKER.encode()
    leaks = []
    for p in sorted(art.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            files += 1
            scanned += len(data)
            if needle in data or needle.lower() in data.lower():
                i = data.lower().find(needle.lower())
                leaks.append(f"{p.relative_to(art)}: ...{data[max(0, i - 80):i + 40]!r}")
    assert (art / "ledger" / "tokentally.db").exists() and (art / "dashboard.html").exists()
    assert not leaks, leaks[:10]
    figure("privacy.markers_planted", planted)
    figure("privacy.events_from_marked_fixtures", present)
    figure("privacy.files_scanned", f"{files} files, {scanned} bytes (bundle, ledger incl. SQLite, dashboard): no marker")


@pytest.mark.parametrize("umask", [0o077, 0o022])
def test_artifacts_respect_the_umask(marked, tmp_path, umask):
    tree, _ = marked
    art = tmp_path / "art"
    _build(tree, art, umask)
    wrong = []
    n = 0
    for p in [art, *art.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        want = (0o777 if p.is_dir() else 0o666) & ~umask
        n += 1
        if mode != want:
            wrong.append(f"{p.relative_to(art)}: {mode:o}, want {want:o}")
    assert not wrong, wrong[:10]
    figure(f"privacy.umask_{umask:03o}", f"{n} files and directories, all {0o666 & ~umask:o} / {0o777 & ~umask:o}")
