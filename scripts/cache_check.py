"""cache-check: fingerprint every source and setting; rewrite a stamp only when it changed.

Make runs this first on every ``make all``. Each stamp file's modification time is what
Make compares, so an unchanged source keeps an old stamp and everything downstream of
it is skipped. Stamps, under ``$ARTIFACTS/stamps/``:

\b
  <source>.fp   the source's files (paths, sizes, mtimes, inodes)
  params.fp     TIMEZONE, DEVICE and the report filters
  pricing.fp    the pricing book's content hash (not its mtime: touching it is no change)
  view.fp       today's date, MONTH and SNAPSHOT_MODE (the snapshot's "today" moves daily)
  device.fp     DEVICE (stored on every event)
  code.fp       this checkout's scripts/ (sizes and mtimes): after an upgrade every stage
                re-runs once, so no artifact keeps what older code computed
"""
from __future__ import annotations

import hashlib
import os
import sys

import click

from scripts import adapters
from scripts.cli import artifacts_option, filter_options, split_multi, stage_command, timezone_option
from scripts.core.runlog import StageTimer, start_run
from scripts.shared_io import AtomicFile, dumps_doc, holds_bundle_lock, remove_interrupted_writes, write_bytes, write_if_changed


def transform(summary) -> dict:
    """The stamp content for one source's ``sources.ListingSummary`` (pure)."""
    return {
        "schema_version": 1,
        "source": summary.source,
        "present": summary.present,
        "files": summary.n_files,
        "bytes": summary.n_bytes,
        "fingerprint": summary.digest,
    }


def _content(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def code_fingerprint() -> str:
    """A hash of this checkout's code (paths, sizes, mtimes of the Python and C sources
    under scripts/)."""
    root = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.blake2b(digest_size=16)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            if fn.endswith((".py", ".c")):
                st = os.stat(os.path.join(dirpath, fn))
                h.update(f"{os.path.relpath(os.path.join(dirpath, fn), root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def file_hash(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return hashlib.blake2b(fh.read(), digest_size=16).hexdigest()
    except OSError:
        return "missing"


@stage_command("cache-check")
@click.option("--source", "sources", multiple=True, type=click.Choice(adapters.SOURCES), help="Sources to fingerprint (repeatable; default all).")
@click.option("--pricing", envvar="PRICING", default="pricing.json", show_default=True, help="The pricing book whose hash is stamped.")
@click.option("--month", envvar="MONTH", default="", help="The selected month, YYYY-MM (default: now in the time zone).")
@click.option("--device", envvar="DEVICE", default="", help="Machine name stamped on events (default: the hostname).")
@click.option("--snapshot-mode", envvar="SNAPSHOT_MODE", default="compact", show_default=True, help="Stamped so a mode change rewrites the snapshot.")
@click.option("--force", is_flag=True, envvar="FORCE", help="Rewrite every stamp, so everything downstream rebuilds.")
@click.option("--quiet", is_flag=True, help="Do not list the sources.")
@timezone_option
@filter_options
@artifacts_option
def cli(sources, pricing, month, device, snapshot_mode, force, quiet, timezone, since, until, providers, models, projects, artifacts):
    """Fingerprint sources and settings; touch a stamp only when it changed.

    Prints one line per source: what was found, or where it looked. A source that
    is absent is a notice, never an error.

    Example:

    \b
        cache-check --artifacts artifacts --pricing pricing.json
        CLAUDE_CONFIG_DIR=/data/claude cache-check --source claude
    """
    from scripts.core import listing_prefetch
    from scripts.core import sources as src_mod
    from scripts.core.periods import Periods, parse_month, resolve_zone_name

    if holds_bundle_lock(artifacts):
        # a run killed mid-write (kill -9) left its writers' temp files; under the lock
        # none is live, so the first stage of the next run clears them
        remove_interrupted_writes(artifacts)
    start_run(artifacts)
    timer = StageTimer(artifacts, "cache_check")
    stamps = os.path.join(artifacts, "stamps")
    manifests = os.path.join(artifacts, "cache", "manifest")
    changed: dict[str, bool] = {}
    report = {}
    # The sources are listed in a forked child (refresh --check forked it before its imports;
    # otherwise it is forked here): this process, which the later stages run in or are
    # forked from, then holds no object per log file nor the manifests' bytes (they are in
    # the spool, a temp file, and copied from it in the kernel).
    os.makedirs(manifests, exist_ok=True)
    listing_prefetch.start(sources, manifests)
    taken = listing_prefetch.take()
    if taken is None:  # no fork, no temp file, or the child failed: list here
        spool, prefetched = src_mod.ManifestSpool.create(manifests), {}
    else:
        spool, prefetched = taken
    have = set(prefetched) or set(adapters.available())
    with spool:
        for source in sources or adapters.SOURCES:
            if source not in have:
                # no adapter in this checkout: stamp it absent so the pipeline stays whole
                write_if_changed(os.path.join(stamps, f"{source}.fp"), dumps_doc({"schema_version": 1, "source": source, "present": False, "adapter": None}), force)
                report[source] = {"changed": False, "files": 0, "bytes": 0, "adapter": None}
                continue
            summary = prefetched.pop(source, None) or src_mod.summarize_source(source, spool)
            stamp = transform(summary)
            stamp_path = os.path.join(stamps, f"{source}.fp")
            stamp_data = dumps_doc(stamp)
            # The listing first, then the stamp: normalize reads the listing when the stamp is
            # new, so a run killed between the two writes must not leave a new stamp over an
            # old listing (the next run would see the stamp unchanged and keep the old one).
            did = force or _content(stamp_path) != stamp_data
            if did or not os.path.exists(os.path.join(manifests, f"{source}.json")):
                with AtomicFile(os.path.join(manifests, f"{source}.json")) as fh:
                    spool.copy_to(summary.manifest_at, fh.fileno())
            if did:
                write_bytes(stamp_path, stamp_data)
            changed[source] = did
            report[source] = {"changed": did, "files": stamp["files"], "bytes": stamp["bytes"]}
            if not quiet:
                where = ", ".join(src_mod.short_path(p) for p in summary.locations)
                if summary.present:
                    mb = stamp["bytes"] / 1e6
                    line = f"{source:9} {stamp['files']:6} files {mb:9.1f} MB  {'changed' if did else 'unchanged'}  ({where})"
                else:
                    line = f"{source:9}   none found in {where} (set {summary.env_var} to point elsewhere)"
                click.echo(line, err=True)
            for name in summary.skipped:
                click.echo(f"{source:9}   skipped {src_mod.short_path(name)}: its file name is not UTF-8 (rename it to count its calls)", err=True)

    tz = resolve_zone_name(timezone)
    periods = Periods(tz)
    params = {
        "schema_version": 1,
        "timezone": tz,
        "since": since or None,
        "until": until or None,
        "providers": list(split_multi(providers)),
        "models": list(split_multi(models)),
        "projects": list(split_multi(projects)),
    }
    changed["params"] = write_if_changed(os.path.join(stamps, "params.fp"), dumps_doc(params), force)
    pricing_stamp = {"schema_version": 1, "path": pricing, "hash": file_hash(pricing)}
    changed["pricing"] = write_if_changed(os.path.join(stamps, "pricing.fp"), dumps_doc(pricing_stamp), force)
    view = {
        "schema_version": 1,
        "today": periods.today(),
        "month": parse_month(month) if month else periods.month_now(),
        "snapshot_mode": snapshot_mode,
    }
    changed["view"] = write_if_changed(os.path.join(stamps, "view.fp"), dumps_doc(view), force)
    dev = {"schema_version": 1, "device": device or src_mod.default_device()}
    changed["device"] = write_if_changed(os.path.join(stamps, "device.fp"), dumps_doc(dev), force)
    code = {"schema_version": 1, "code": code_fingerprint()}
    changed["code"] = write_if_changed(os.path.join(stamps, "code.fp"), dumps_doc(code), force)
    timer.finish(sources=report, stamps_changed=sorted(k for k, v in changed.items() if v), timezone=tz)
    sys.stderr.flush()


main = cli

if __name__ == "__main__":
    cli()
