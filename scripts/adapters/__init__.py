"""Source adapters, one module per source. ``load(name)`` imports one on demand, so a
command only pays for the adapters it uses."""
from __future__ import annotations

import importlib
from types import ModuleType

from scripts.core.event import PROVIDERS

SOURCES = PROVIDERS


def load(name: str) -> ModuleType:
    if name not in SOURCES:
        raise KeyError(name)
    return importlib.import_module(f"scripts.adapters.{name}")


def available() -> list[str]:
    """Sources whose adapter module exists in this checkout."""
    out = []
    for name in SOURCES:
        try:
            load(name)
        except ModuleNotFoundError:
            continue
        out.append(name)
    return out
