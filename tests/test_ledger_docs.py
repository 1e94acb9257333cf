"""The sqlite3, sqlite-utils and Python examples of docs/ledger.md run as written,
against a ledger built from test inputs, and print something."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, shared_path, stage
from ledger_support import write_archive, write_book, write_events

DOC = ROOT / "docs" / "ledger.md"
BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SQLITE3 = shutil.which("sqlite3") or ("/usr/bin/sqlite3" if os.path.exists("/usr/bin/sqlite3") else None)
pytestmark = pytest.mark.skipif(not shared_path("data", "models.csv").exists(), reason="../shared/data not present")


def blocks():
    return [(lang, code) for lang, code in BLOCK.findall(DOC.read_text())]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A directory with artifacts/ledger/ built from the test inputs, as in the docs."""
    base = tmp_path_factory.mktemp("docs")
    write_events(base / "artifacts" / "events")
    stage(
        "ledger", "build",
        "--artifacts", str(base / "artifacts"),
        "--pricing", str(write_book(base / "pricing.json")),
        "--benchmarks", str(shared_path("data", "models.csv")),
        "--cliproxy-dir", str(write_archive(base / "cliproxy")),
    )  # fmt: skip
    return base


def test_the_doc_has_query_examples():
    langs = [lang for lang, _ in blocks()]
    assert langs.count("sh") >= 7 and langs.count("python") >= 1
    text = " ".join(code for _, code in blocks())
    assert "sqlite3 " in text and "sqlite-utils " in text


@pytest.mark.parametrize("index", range(len(blocks())))
def test_doc_example_runs(workdir, index):
    lang, code = blocks()[index]
    env = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8"}
    if lang == "sh":
        if "sqlite3 " in code and SQLITE3 is None:
            pytest.skip("the sqlite3 command-line shell is not installed")
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], cwd=workdir, env=env, capture_output=True, timeout=120)
    else:
        proc = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b"", proc.stderr.decode()
    assert proc.stdout.strip(), f"example {index} printed nothing:\n{code}"
