"""The fault suite (issue 9): kill -9, concurrency, appends during a run, a locked Cursor
database, fuzzing, privacy and numbers.

Heavier than the unit tests, so ``pytest tests`` (``make test``) leaves it out; it runs when
asked for: ``make faults-fast`` (part of ``make check``), ``make faults`` (the long profile),
or ``pytest tests/faults``. ``TOKENTALLY_FAULTS=fast|long`` picks the profile. The suite's
figures are printed at the end of the run (and written to ``$TOKENTALLY_FAULTS_REPORT`` as
JSON when set).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _asked_for(config) -> bool:
    if os.environ.get("TOKENTALLY_FAULTS"):
        return True
    for arg in config.args:
        path = Path(arg.split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    if collection_path.suffix == ".py" and collection_path.name.startswith("test_") and not _asked_for(config):
        return True
    return None


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from .harness import FIGURES, PROFILE

    if not FIGURES:
        return
    tr = terminalreporter
    tr.section(f"fault suite figures ({PROFILE} profile)")
    for name in sorted(FIGURES):
        value = FIGURES[name]
        if isinstance(value, (dict, list)):
            tr.write_line(f"{name}:")
            text = json.dumps(value, indent=1, sort_keys=True)
            for line in text.splitlines()[1:-1] if isinstance(value, dict) else text.splitlines():
                tr.write_line("  " + line.strip())
        else:
            tr.write_line(f"{name}: {value}")
    out = os.environ.get("TOKENTALLY_FAULTS_REPORT")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps({"schema_version": 1, "profile": PROFILE, "figures": FIGURES}, indent=1, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def tree(tmp_path_factory):
    """All seven fixture sources plus generated Claude/Codex logs (read-only for tests)."""
    from .harness import LONG, build_tree

    return build_tree(tmp_path_factory.mktemp("tree"), events=6000 if LONG else 3000, seed=7)


@pytest.fixture(scope="session")
def reference(tree, tmp_path_factory):
    """An uninterrupted cold ``make all`` of the tree."""
    from .harness import make

    art = tmp_path_factory.mktemp("reference") / "art"
    make(tree.env(art), "all")
    return art
