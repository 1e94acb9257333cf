"""filelock.py [-n | -w SECONDS] [-E CODE] LOCKFILE COMMAND...: flock(1) where it is missing.

Takes an exclusive flock(2) lock on LOCKFILE (the same lock util-linux flock(1) takes, so the
two interoperate), then execs COMMAND with the lock's descriptor inherited: the lock is held
for as long as COMMAND runs and released by the kernel when it exits, however it exits.
``-n``: fail at once when the lock is taken; ``-w``: wait that many seconds; ``-E``: the exit
status for "lock taken" (default 1). Stdlib only, run by path (``scripts/locked.sh``), so it
works before the virtualenv exists.
"""
from __future__ import annotations

import fcntl
import os
import sys
import time


def main(argv: list[str]) -> int:
    wait: float | None = None  # None: wait for ever
    conflict = 1
    while argv and argv[0].startswith("-"):
        opt = argv.pop(0)
        if opt == "-n":
            wait = 0.0
        elif opt == "-w":
            wait = float(argv.pop(0))
        elif opt == "-E":
            conflict = int(argv.pop(0))
        else:
            print(f"filelock: unknown option {opt}", file=sys.stderr)
            return 64
    if len(argv) < 2:
        print("usage: filelock.py [-n | -w SECONDS] [-E CODE] LOCKFILE COMMAND...", file=sys.stderr)
        return 64
    path, command = argv[0], argv[1:]
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    deadline = None if wait is None else time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if deadline is not None and time.monotonic() >= deadline:
                return conflict
            time.sleep(0.05)
    os.set_inheritable(fd, True)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"filelock: {command[0]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
