"""Kill a ``make all`` before its N-th write to the bundle, exactly (tests/faults/test_kill.py).

Put on PYTHONPATH, this runs in every Python process of the run (stages and the parse
workers they fork). An audit hook sees each file-system mutation under
``TOKENTALLY_KILL_ROOT`` (an open for writing, a rename, an unlink, a utime, a mkdir) *before*
it happens, and counts it in a counter file shared by all the processes (under flock).
With ``TOKENTALLY_KILL_AT=N`` the N-th mutation is not made: the whole process group gets
SIGKILL first, as if the power went at that instant. With N = 0 every mutation is logged
to ``TOKENTALLY_KILL_LOG`` and the run goes on (to learn how many there are).
"""
import os
import sys

_ROOT = os.environ.get("TOKENTALLY_KILL_ROOT")
_COUNTER = os.environ.get("TOKENTALLY_KILL_COUNTER")


def _install():
    import fcntl
    import signal

    root = os.path.abspath(_ROOT) + os.sep
    kill_at = int(os.environ.get("TOKENTALLY_KILL_AT", "0") or 0)
    log = os.environ.get("TOKENTALLY_KILL_LOG")
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    busy = [False]

    def inside(path):
        return isinstance(path, str) and os.path.abspath(path).startswith(root)

    def mutation(event, args):
        if event == "open":
            path, mode, flags = args
            if not inside(path):
                return None
            if isinstance(mode, str) and not any(c in mode for c in "wax+"):
                return None
            if mode is None and not (flags or 0) & write_flags:
                return None
            return f"open {os.path.relpath(path, root)}"
        if event == "os.rename":
            if inside(args[1]):
                return f"rename {os.path.relpath(args[0], root)} -> {os.path.relpath(args[1], root)}"
            return None
        if event in ("os.remove", "os.utime", "os.mkdir", "os.truncate"):
            if event == "os.mkdir" and os.path.isdir(args[0]):
                return None  # makedirs(exist_ok=True) of a directory already there: no change
            if inside(args[0]):
                return f"{event[3:]} {os.path.relpath(args[0], root)}"
        return None

    def hook(event, args):
        if busy[0] or event not in ("open", "os.rename", "os.remove", "os.utime", "os.mkdir", "os.truncate"):
            return
        what = mutation(event, args)
        if what is None:
            return
        busy[0] = True  # our own bookkeeping opens files too
        try:
            fd = os.open(_COUNTER, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                n = int(os.pread(fd, 32, 0) or b"0") + 1
                os.pwrite(fd, str(n).encode().ljust(32), 0)
                if log:
                    stage = os.path.basename(sys.argv[0]) if sys.argv else "?"
                    with open(log, "a") as fh:
                        fh.write(f"{n}\t{stage}\t{what}\n")
                if n == kill_at:
                    os.killpg(os.getpgid(0), signal.SIGKILL)
            finally:
                os.close(fd)
        finally:
            busy[0] = False

    sys.addaudithook(hook)


if _ROOT and _COUNTER:
    _install()
