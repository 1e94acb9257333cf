"""report_entries reads one array of a priced report a window at a time: the entries equal a
whole parse's for every report and array, whatever the window, and the snapshot built from
the few it keeps equals the one built from whole reports."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from conftest import load_json
from ui_bundle import build_bundle

from scripts import snapshot as snap_mod
from scripts.core.report_entries import array_entries
from scripts.shared_io import DataError

KINDS = ("daily", "weekly", "monthly", "sessions", "projects", "blocks")
ARRAYS = ("period_providers", "periods", "rows")


@pytest.fixture(scope="module")
def bundle(sample_logs, tmp_path_factory):
    return build_bundle(sample_logs(2000), tmp_path_factory.mktemp("report-entries"), month="2026-08", mode="extended")


@pytest.mark.parametrize("window", [5, 64, 1 << 16])
def test_entries_equal_a_whole_parse(bundle, window):
    for kind in KINDS:
        path = bundle / "reports" / f"{kind}.json"
        doc = load_json(path)
        for name in ARRAYS:
            assert list(array_entries(str(path), name, window)) == doc[name], (kind, name)


def test_strings_that_look_like_the_cut(tmp_path):
    # a quote is escaped in a string, so only the separators with a quote decide the cut
    entries = [{"period": "a}]b", "project": 'x},{"y', "n": 1}, {"period": "}],{", "project": "[]", "n": 2}, {"period": "z", "project": "", "n": 3}]
    doc = {"kind": "daily", "period_providers": [], "periods": entries, "rows": entries[:1], "totals": {"n": 6}}
    path = tmp_path / "daily.json"
    path.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=True))
    for window in (1, 3, 7, 1 << 16):
        assert list(array_entries(str(path), "periods", window)) == entries
        assert list(array_entries(str(path), "rows", window)) == entries[:1]
        assert list(array_entries(str(path), "period_providers", window)) == []


def test_a_cut_short_or_foreign_file_is_one_error(tmp_path):
    path = tmp_path / "daily.json"
    path.write_text('{"periods":[{"period":"a"},{"period":"b"')
    with pytest.raises(DataError, match="cut short"):
        list(array_entries(str(path), "periods", 4))
    path.write_text('{"other":[]}')
    with pytest.raises(DataError, match="no periods array"):
        list(array_entries(str(path), "periods"))
    path.write_text('{"periods":[1,2],"x":[{"a":1}],"y":1}')
    with pytest.raises(DataError, match="flat objects"):
        list(array_entries(str(path), "periods"))


@pytest.mark.parametrize("mode", ["compact", "extended"])
def test_snapshot_equals_one_from_whole_reports(bundle, mode):
    reports = bundle / "reports"
    whole = {k: load_json(reports / f"{k}.json") for k in ("monthly", "daily", "blocks")}
    blocks = whole["blocks"]["periods"]
    # moments: after the last block, inside some blocks (as if the clock were set back), before all
    moments = [dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc), dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)]
    for b in blocks[:: max(1, len(blocks) // 5)]:
        moments.append(dt.datetime.fromisoformat(b["last_timestamp"].replace("Z", "+00:00")) + dt.timedelta(minutes=1))
    for now in moments:
        for month in ("2026-08", "2026-09"):
            got = snap_mod.build(str(bundle), month=month, mode=mode, timezone="UTC", now=now)
            want = snap_mod.transform(
                whole["monthly"], whole["daily"], whole["blocks"], snap_mod.read_suggestions(str(reports / "suggestions.json"), month),
                month=month, today=now.strftime("%Y-%m-%d"), mode=mode, generated_at=got["generated_at"],
                now_ms=int(now.timestamp() * 1000), links={k: got.get(k) for k in ("run_summary_path", "reconcile_summary_path")},
                timezone="UTC",
            )
            assert got == want, (now, month)
