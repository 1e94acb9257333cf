"""Build ``fastparse.c`` into a directory on ``sys.path`` (default: this interpreter's
site-packages, i.e. ``.venv``'s when make runs it).

Without a C compiler or Python's headers it says so in one line and exits 0: the
Python adapters then parse every file, with the same results, more slowly.

``--sanitize DIR`` builds it with AddressSanitizer and UBSan into DIR instead, for
``make native-sanitize`` (the parser's tests with that build preloaded).

Example:
    .venv/bin/python -m scripts.native.build
    .venv/bin/python -m scripts.native.build --sanitize /tmp/asan
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from scripts.native import MODULE_NAME, SOURCE, source_hash


OPTIMIZED = ["-O2"]
SANITIZED = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"]


def build(out_dir: str, flags: list[str] = OPTIMIZED, source: str = SOURCE) -> str | None:
    """The module built from ``source``: its path, or None (with the reason on stderr)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    include = sysconfig.get_paths()["include"]
    if not cc:
        print("native parser not built (no C compiler): the Python parsers are used", file=sys.stderr)
        return None
    if not os.path.exists(os.path.join(include, "Python.h")):
        print(f"native parser not built (no Python.h in {include}): the Python parsers are used", file=sys.stderr)
        return None
    target = os.path.join(out_dir, MODULE_NAME + sysconfig.get_config_var("EXT_SUFFIX"))
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".fastparse-", suffix=".so")
    os.close(fd)
    cmd = shlex.split(cc) + flags + ["-shared", "-fPIC", "-Wall", "-Wno-unused-function", f"-I{include}",
                             f'-DSOURCE_HASH="{source_hash(source)}"', source, "-o", tmp]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(tmp)
        first = (proc.stderr.strip().splitlines() or ["?"])[0]
        print(f"native parser not built ({first}): the Python parsers are used", file=sys.stderr)
        return None
    os.replace(tmp, target)
    return target


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--sanitize"] and len(args) == 2:
        path = build(args[1], SANITIZED)
        sys.exit(0 if path else 1)
    out_dir = args[0] if args else sysconfig.get_paths()["platlib"]
    path = build(out_dir)
    if path:
        print(f"built {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
