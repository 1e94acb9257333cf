"""The compiled fast path of the Claude Code and Codex line parsers (``fastparse.c``).

``make`` builds it into ``.venv`` (``python -m scripts.native.build``) when a C compiler
and Python's headers are there; without them every file is parsed by the Python
adapters, with the same results. ``module()`` is the build, or None: not built, built
from another version of ``fastparse.c``, or turned off with ``TOKENTALLY_NATIVE=0``.
"""
from __future__ import annotations

import functools
import hashlib
import os

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fastparse.c")
MODULE_NAME = "tokentally_fastparse"


def source_hash(source: str = SOURCE) -> str:
    with open(source, "rb") as fh:
        return hashlib.blake2b(fh.read(), digest_size=12).hexdigest()


@functools.cache
def module():
    if os.environ.get("TOKENTALLY_NATIVE") == "0":
        return None
    try:
        import tokentally_fastparse as m
    except ImportError:
        return None
    try:
        current = source_hash()
    except OSError:
        return None
    # a build of another version of the source would parse by other rules: not used
    return m if getattr(m, "SOURCE_HASH", None) == current else None


def call(name: str, *args):
    """``name(*args)`` of the built module, or None: not built, or the function left the
    work to the Python code (it returns None for input it does not take)."""
    m = module()
    return None if m is None else getattr(m, name)(*args)
