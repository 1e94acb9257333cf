"""The entries of one array of a priced report, read a window of the file at a time.

A report (``reports/<kind>.json``, written by ``price``) is one JSON object whose arrays
(``period_providers``, ``periods``, ``rows``) hold flat objects: scalar values, lists of
strings at most. The snapshot needs a handful of them (today, the month's days, each
provider's last block); parsing a whole report to find them held every entry as objects
(blocks at 400k calls: 5 MB of them for a 1.5 MB file), and a report grows with the
history. So the array is found by its key and parsed a window of entries at a time.

Flat objects make the cut exact without a JSON scanner: inside a string a quote is
escaped, so ``},{"`` only ever separates two entries and ``}],"`` only ends the array.
"""
from __future__ import annotations

from typing import Iterator

import orjson

from scripts.shared_io import DataError

WINDOW = 1 << 14  # bytes read at a time (parsed, a window of entries is ~8x its JSON)


def array_entries(path: str, name: str, window: int = WINDOW) -> Iterator[dict]:
    """Each entry of the report's top-level array ``name``, in order."""
    key = b'"' + name.encode() + b'":['
    with open(path, "rb") as fh:
        buf = b""
        while True:
            chunk = fh.read(window)
            if not chunk:
                raise DataError(f"no {name} array", where=path)
            buf += chunk
            at = buf.find(key)
            if at >= 0:
                buf = buf[at + len(key):]
                break
            buf = buf[-len(key):]  # the key may straddle two windows
        while len(buf) < 2:
            chunk = fh.read(window)
            if not chunk:
                raise DataError(f"the {name} array is cut short", where=path)
            buf += chunk
        if buf.startswith(b"]"):
            return
        while True:
            end = buf.find(b'}],"')
            cut = end if end >= 0 else buf.rfind(b'},{"')
            if cut >= 0:
                yield from _entries(buf[:cut + 1], path, name)
                if end >= 0:
                    return
                buf = buf[cut + 2:]
            chunk = fh.read(window)
            if not chunk:
                raise DataError(f"the {name} array is cut short", where=path)
            buf += chunk


def _entries(piece: bytes, path: str, name: str) -> list:
    try:
        entries = orjson.loads(b"[" + piece + b"]")
    except orjson.JSONDecodeError:
        raise DataError(f"the {name} array is not a list of flat objects", where=path) from None
    if not all(e.__class__ is dict for e in entries):
        raise DataError(f"the {name} array is not a list of flat objects", where=path)
    return entries
