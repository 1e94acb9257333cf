#!/bin/sh
# locked.sh DIR WAIT WHAT COMMAND...: run COMMAND while holding DIR/.lock, so two runs on one
# bundle never interleave (the Makefile's LOCKED). The lock is flock(2) on the file, released
# by the kernel when the holder exits, even on kill -9: no stale lock to clean up.
# A run that finds the lock taken says so on stderr and waits up to WAIT seconds, then gives
# up with exit 1. flock(1) (util-linux) takes it; where that is missing (macOS, BSD)
# scripts/core/filelock.py takes the same lock with Python's fcntl (stdlib only).
dir=$1 wait=$2 what=$3
shift 3
[ -d "$dir" ] || mkdir -p "$dir" || exit 1
lock=$dir/.lock
busy=75 # flock's exit status when the lock is taken (-E); make itself exits 0, 1 or 2

take() {
	if [ -z "${TOKENTALLY_NO_FLOCK:-}" ] && command -v flock >/dev/null 2>&1; then
		flock "$@"
	else
		"${PYTHON:-python3}" "$(dirname "$0")/core/filelock.py" "$@"
	fi
}

take -n -E $busy "$lock" "$@"
rc=$?
[ $rc -eq $busy ] || exit $rc
if [ "$wait" -gt 0 ] 2>/dev/null; then
	echo "$what: another run is updating $dir (it holds $lock); waiting up to ${wait}s for it to finish" >&2
	take -w "$wait" -E $busy "$lock" "$@"
	rc=$?
	[ $rc -eq $busy ] || exit $rc
fi
echo "$what: gave up: another run is still updating $dir (it holds $lock); run it again when that one has finished (LOCK_WAIT=${wait}s)" >&2
exit 1
