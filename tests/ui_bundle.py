"""A priced bundle for the UI tests: sample logs (Aug-Sep 2026) through the real `make all`."""
from __future__ import annotations

from pathlib import Path

from conftest import make, sample_env

_BUILT: dict[tuple, Path] = {}


def build_bundle(logs: Path, root: Path, *, month: str = "2026-08", mode: str = "compact", **extra) -> Path:
    """`make all` over ``logs`` into ``root``/artifacts (once per arguments); returns the bundle."""
    key = (str(logs), str(root), month, mode, tuple(sorted(extra.items())))
    if key not in _BUILT:
        artifacts = root / "artifacts"
        make("all", env=sample_env(logs, artifacts, MONTH=month, SNAPSHOT_MODE=mode, **extra))
        _BUILT[key] = artifacts
    return _BUILT[key]
