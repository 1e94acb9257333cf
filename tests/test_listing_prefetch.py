"""The listing child refresh --check forks before its imports, and cache-check otherwise
(scripts/core/listing_prefetch.py): it must hand cache-check exactly what cache-check would
have listed (the stamps' facts, and the manifests' bytes in the spool), cache-check must not
hold those bytes, and it falls back to its own listing when there is nothing to take."""
from __future__ import annotations

import os
import sys

import pytest

from conftest import FIXTURES, ROOT, load_json, run_cmd
from scripts.core import listing_prefetch, sources

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the prefetch forks")

FIXTURE_SOURCES = {
    "CLAUDE_CONFIG_DIR": FIXTURES / "claude",
    "CODEX_HOME": FIXTURES / "codex",
    "DROID_SESSIONS_DIR": FIXTURES / "droid" / "sessions",
    "GEMINI_DATA_DIR": FIXTURES / "gemini",
    "CLIPROXY_USAGE_DIR": FIXTURES / "cliproxy",
}


@pytest.fixture
def fixture_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var, path in FIXTURE_SOURCES.items():
        monkeypatch.setenv(var, str(path))


def test_nothing_to_take_unless_started():
    assert listing_prefetch.take() is None


def test_prefetched_listings_equal_direct_ones(fixture_env, tmp_path):
    listing_prefetch.start()
    spool, got = listing_prefetch.take()
    assert listing_prefetch.take() is None  # taken once
    assert set(got) == set(sources.adapters.available())
    with spool, sources.ManifestSpool.create(str(tmp_path)) as own:
        for source, summary in got.items():
            direct = sources.list_source(source).summary(own)
            assert summary.as_tuple()[:-1] == direct.as_tuple()[:-1]
            assert summary.manifest_at[1] == direct.manifest_at[1]
            assert os.pread(spool.fd, summary.manifest_at[1], summary.manifest_at[0]) == sources.list_source(source).manifest_json()
    assert got["claude"].n_files and got["codex"].n_files


def test_a_child_lists_only_the_sources_asked_for(fixture_env, tmp_path):
    listing_prefetch.start(["codex"], str(tmp_path))
    spool, got = listing_prefetch.take()
    spool.close()
    assert set(got) == {"codex"}


def test_a_failed_child_leaves_cache_check_to_list(fixture_env, monkeypatch):
    def broken(source, spool, environ=os.environ):
        raise OSError("disk on fire")

    monkeypatch.setattr(sources, "summarize_source", broken)  # the forked child inherits it
    listing_prefetch.start()
    assert listing_prefetch.take() is None


def test_refresh_check_writes_the_manifests_cache_check_writes(tmp_path, monkeypatch):
    env = dict(os.environ, HOME=str(tmp_path / "home"), TIMEZONE="UTC", **{k: str(v) for k, v in FIXTURE_SOURCES.items()})
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run_cmd([sys.executable, "-m", "scripts.refresh", "--check", "--normalize", "--artifacts", str(a)], env=env, cwd=ROOT)
    run_cmd([sys.executable, "-m", "scripts.cache_check", "--artifacts", str(b)], env=env, cwd=ROOT)
    # and where there is no fork: cache-check lists in its own process, into a spool of its own
    from click.testing import CliRunner

    from scripts import cache_check
    from scripts.shared_io import dumps_line, loads

    monkeypatch.delattr(os, "fork")
    result = CliRunner().invoke(cache_check.cli, ["--artifacts", str(c), "--quiet"], env=env)
    assert result.exit_code == 0, result.output
    names = sorted(os.listdir(a / "cache" / "manifest"))
    assert names and names == sorted(os.listdir(b / "cache" / "manifest")) == sorted(os.listdir(c / "cache" / "manifest"))
    for name in names:
        want = (a / "cache" / "manifest" / name).read_bytes()
        assert (b / "cache" / "manifest" / name).read_bytes() == want == (c / "cache" / "manifest" / name).read_bytes(), name
        assert want == dumps_line(loads(want)), name  # what the manifest always was
    for name in os.listdir(b / "stamps"):
        if name not in ("view.fp", "code.fp"):
            assert (a / "stamps" / name).read_bytes() == (b / "stamps" / name).read_bytes() == (c / "stamps" / name).read_bytes(), name


def test_cache_check_does_not_hold_the_manifests(tmp_path, monkeypatch):
    """The manifests' bytes go from the child's spool to their files in the kernel: a cache-check
    writing a ~0.5 MB manifest allocates far less than that in Python."""
    import tracemalloc

    from click.testing import CliRunner

    from scripts import cache_check

    project = tmp_path / "claude" / "projects" / "p"
    project.mkdir(parents=True)
    for i in range(3000):
        (project / f"session-{i:05d}-{'x' * 80}.jsonl").write_bytes(b"")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    for var in FIXTURE_SOURCES:
        if var != "CLAUDE_CONFIG_DIR":
            monkeypatch.setenv(var, str(tmp_path / "none"))
    args = ["--artifacts", str(tmp_path / "a"), "--quiet", "--force"]
    assert CliRunner().invoke(cache_check.cli, args).exit_code == 0  # its imports, not measured
    manifest = (tmp_path / "a" / "cache" / "manifest" / "claude.json").stat().st_size
    assert manifest > 400_000
    tracemalloc.start()
    try:
        result = CliRunner().invoke(cache_check.cli, args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    assert peak < manifest / 4, (peak, manifest)


def test_the_listing_child_imports_neither_orjson_nor_tempfile(tmp_path):
    """What refresh imports before the fork, and the child after it: orjson (~10 ms) or
    tempfile (~9 ms) there would hold refresh up."""
    code = (
        "import sys\n"
        "from scripts.core import listing_prefetch\n"
        "from scripts import adapters\n"
        "from scripts.core.sources import ManifestSpool, summarize_source\n"
        "spool = ManifestSpool.create()\n"
        "[summarize_source(s, spool) for s in adapters.available()]\n"
        "print(sorted(m for m in ('orjson', 'tempfile', 'click') if m in sys.modules))\n"
    )
    env = dict(HOME=str(tmp_path / "home"), **{k: str(v) for k, v in FIXTURE_SOURCES.items()})
    assert run_cmd([sys.executable, "-c", code], env=env, cwd=ROOT).stdout.strip() == b"[]"


@pytest.mark.parametrize("name", ["plain.jsonl", 'a "quoted" name', "back\\slash", "tab\tand\nnewline\x01", "é ü 日本 \u2028 \x7f"])
def test_manifest_bytes_are_what_orjson_writes(name):
    from scripts.shared_io import dumps_line

    listing = sources.SourceListing("claude", "CLAUDE_CONFIG_DIR", [f"/logs/{name}", "/other"],
                                    {f"/logs/{name}/b.jsonl": (10, 2, 3, ""), f"/logs/{name}/a.jsonl": (1, 1, 1, f"x-wal:{name}")})
    assert listing.manifest_json() == dumps_line(listing.manifest())
