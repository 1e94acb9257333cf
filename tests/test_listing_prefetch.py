"""The listing child refresh --check forks before its imports (scripts/core/listing_prefetch.py):
it must hand cache-check exactly what cache-check would have listed (the stamps' facts and the
manifests' bytes), and fall back to
cache-check's own listing when there is nothing to take."""
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


def test_prefetched_listings_equal_direct_ones(fixture_env):
    listing_prefetch.start()
    got = listing_prefetch.take()
    assert listing_prefetch.take() is None  # taken once
    assert set(got) == set(sources.adapters.available())
    for source, summary in got.items():
        assert summary.as_tuple() == sources.list_source(source).summary().as_tuple()
    assert got["claude"].n_files and got["codex"].n_files


def test_a_failed_child_leaves_cache_check_to_list(fixture_env, monkeypatch):
    def broken(source, environ=os.environ):
        raise OSError("disk on fire")

    monkeypatch.setattr(sources, "list_source", broken)  # the forked child inherits it
    listing_prefetch.start()
    assert listing_prefetch.take() is None


def test_refresh_check_writes_the_manifests_cache_check_writes(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path / "home"), TIMEZONE="UTC", **{k: str(v) for k, v in FIXTURE_SOURCES.items()})
    a, b = tmp_path / "a", tmp_path / "b"
    run_cmd([sys.executable, "-m", "scripts.refresh", "--check", "--normalize", "--artifacts", str(a)], env=env, cwd=ROOT)
    run_cmd([sys.executable, "-m", "scripts.cache_check", "--artifacts", str(b)], env=env, cwd=ROOT)
    for name in os.listdir(a / "cache" / "manifest"):
        assert load_json(a / "cache" / "manifest" / name) == load_json(b / "cache" / "manifest" / name)
    for name in os.listdir(b / "stamps"):
        if name != "view.fp":
            assert (a / "stamps" / name).read_bytes() == (b / "stamps" / name).read_bytes(), name


@pytest.mark.parametrize("name", ["plain.jsonl", 'a "quoted" name', "back\\slash", "tab\tand\nnewline\x01", "é ü 日本 \u2028 \x7f"])
def test_manifest_bytes_are_what_orjson_writes(name):
    from scripts.shared_io import dumps_line

    listing = sources.SourceListing("claude", "CLAUDE_CONFIG_DIR", [f"/logs/{name}", "/other"],
                                    {f"/logs/{name}/b.jsonl": (10, 2, 3, ""), f"/logs/{name}/a.jsonl": (1, 1, 1, f"x-wal:{name}")})
    assert listing.manifest_json() == dumps_line(listing.manifest())
