"""Incremental ``price run --out-dir``: price only the periods whose aggregate entries changed.

The reports are those ``costing.price_aggregates`` + ``render`` give, byte for byte (the
tests compare the two). A table's entries are grouped by period (a day, week, month,
session, project or block start): a period's priced rows, period and period-provider
entries and Markdown lines depend only on its own aggregate entries, the pricing book
and, for a provider with a subscription fee, the allocation basis. So each period is
keyed by a SHA-1 of its entries' bytes in ``aggregates.json`` (and of the basis, when a
fee applies); the state (``cache/price/state.bin``, see view_cache.py) maps each key to
the byte ranges of that period in the previous ``reports/<kind>.json`` and ``.md``, and
to its money sums (per model, per provider, in all; unpriced models), from which the
whole-range entries are added up again. The state is keyed by the book's hash and the
code: a price change re-prices everything (and re-aggregates nothing).

The aggregates document is not parsed whole: its arrays of entries are cut out at the
byte level (objects whose values are scalars, lists and flat objects: ``},{"`` only
occurs between two of them, since a quote inside a string is escaped), and the rest (the
skeleton) is parsed and checked. Anything unexpected (a backslash in an entry, a
skeleton that does not match) prices the whole document as before.
"""
from __future__ import annotations

import hashlib
import os

import orjson

from scripts.core import view_cache
from scripts.core.costing import REPORT_SCHEMA_VERSION, Pricer, price_entries, whole_range
from scripts.core.render import markdown_foot, markdown_head, markdown_rows
from scripts.shared_io import AtomicFile

STATE = "state.bin"
_OPT = orjson.OPT_SORT_KEYS
_SEP = b'},{"'
_ARRAYS = (b'"period_providers":[', b'],"periods":[', b'],"rows":[', b'],"totals":{')
_PERIOD = b'"period":"'


class Unsplittable(Exception):
    """The document is not in the form the byte-level cut expects: price it whole."""


def _dumps(obj) -> bytes:
    return orjson.dumps(obj, option=_OPT)


def split(data: bytes):
    """``(skeleton document, {kind: (pps, periods, rows)})``: each array as its raw bytes."""
    out = []
    skeleton = []
    pos = 0
    at = data.find(b'"reports":{')
    if at < 0:
        raise Unsplittable("no reports")
    while True:
        a0 = data.find(_ARRAYS[0], at)
        if a0 < 0:
            break
        a1 = data.find(_ARRAYS[1], a0)
        a2 = data.find(_ARRAYS[2], a1)
        a3 = data.find(_ARRAYS[3], a2)
        if min(a1, a2, a3) < 0:
            raise Unsplittable("table arrays not found")
        s0, s1, s2 = a0 + len(_ARRAYS[0]), a1 + len(_ARRAYS[1]), a2 + len(_ARRAYS[2])
        out.append((data[s0:a1], data[s1:a2], data[s2:a3]))
        skeleton += [data[pos:s0], data[a1:s1], data[a2:s2]]
        pos = at = a3
    skeleton.append(data[pos:])
    try:
        doc = orjson.loads(b"".join(skeleton))
    except orjson.JSONDecodeError:
        raise Unsplittable("skeleton is not JSON") from None
    if not isinstance(doc, dict) or doc.get("kind") != "aggregates" or doc.get("schema_version") != 1 or not isinstance(doc.get("reports"), dict):
        raise Unsplittable("not an aggregates document")
    kinds = sorted(doc["reports"])
    if len(kinds) != len(out) or list(doc["reports"]) != kinds:
        raise Unsplittable("tables not where expected")
    for kind in kinds:
        t = doc["reports"][kind]
        if not isinstance(t, dict) or t.get("rows") != [] or t.get("periods") != [] or t.get("period_providers") != []:
            raise Unsplittable("tables not where expected")
    return doc, dict(zip(kinds, out))


def _groups(region: bytes):
    """``[(period, start, end)]``: consecutive entries of one period, as byte ranges of
    ``region`` (each range holds whole objects, comma-separated)."""
    if not region:
        return []
    if b"\\" in region:
        raise Unsplittable("escaped characters")
    pieces = region[2:-1].split(_SEP)
    out = []
    off = 0  # start of the current piece's object in region
    cur = None
    for p in pieces:
        if p.startswith(_PERIOD[1:]):  # the first key (its quote went with the separator)
            i = len(_PERIOD) - 1
        else:
            i = p.find(_PERIOD)
            if i < 0:
                raise Unsplittable("entry without a period")
            i += len(_PERIOD)
        period = p[i:p.index(b'"', i)]
        end = off + len(p) + 3  # b'{"' + p + b'}'
        if period != cur:
            out.append([period, off, end])
            cur = period
        else:
            out[-1][2] = end
        off = end + 1  # the comma
    if off != len(region) + 1:
        raise Unsplittable("entries not where expected")
    return out


def _units(regions):
    """``{period: [rows range, periods range, pps range]}`` (ranges ``(start, end)``)."""
    pps, periods, rows = regions
    units: dict = {}
    for slot, region in ((0, rows), (1, periods), (2, pps)):
        for period, start, end in _groups(region):
            u = units.get(period)
            if u is None:
                u = units[period] = [None, None, None]
            elif u[slot] is not None:
                raise Unsplittable("a period's entries are not together")
            u[slot] = (start, end)
    return units


def build(data: bytes, book, out_dir: str, cache_dir: str, on_unpriced: str, force: bool = False):
    """Write reports/<kind>.json and .md for the aggregates document ``data``; return
    ``(stats, first report's unpriced list)``. Raises Unsplittable before writing anything."""
    doc, tables = split(data)
    stats = view_cache.Stats()
    described = book.describe()
    fees = any(book.subscription(p) for p in getattr(book, "providers", {}) or {})
    basis = doc.get("allocation_basis") or {}
    identity = {
        "stage": "price",
        "code": view_cache.code_hash("scripts.core.costing", "scripts.core.render", "scripts.core.pricing_book", "scripts.core.price_incr", "scripts.core.view_cache"),
        "pricing": described,
        "out_dir": os.path.abspath(out_dir),
        "timezone": doc.get("timezone"),
        "filters": doc.get("filters"),
    }
    # the basis matters only where a fee is spread: then every period depends on it
    context = _dumps(basis) if fees else b""
    units_of = {kind: _units(regions) for kind, regions in tables.items()}
    state_path = os.path.join(cache_dir, STATE)
    state = None
    if force:
        stats.state = "bypassed"
    else:
        state, why = view_cache.load(state_path, identity)
        stats.state = why or "used"
    pricer = Pricer(book, basis)
    reports_md: dict[str, bytes] = {}
    reports_json: dict[str, bytes] = {}
    new_index: dict = {}
    first_unpriced = None
    for kind in tables:
        table = doc["reports"][kind]
        pps_r, periods_r, rows_r = tables[kind]
        same = periods_r == pps_r
        mode = "pps" if same and periods_r else ("provider" if b'"provider":' in periods_r[:periods_r.find(b"}") + 1] else "period")
        old = None
        old_json = old_md = None
        if state is not None and kind in state["index"]:
            old = state["index"][kind]
            old_json = view_cache.read_previous(os.path.join(out_dir, f"{kind}.json"), state["files"].get(f"{kind}.json"))
            old_md = view_cache.read_previous(os.path.join(out_dir, f"{kind}.md"), state["files"].get(f"{kind}.md"))
            if old_json is None or old_md is None:
                old = None
                stats.state = "output"
        units = units_of[kind]
        per_model: dict = {}
        per_provider: dict = {}
        grand = [0, False, 0, 0, 0]
        unpriced: dict = {}
        got = []  # per period: key, rows, periods, pps, md, contributions, n rows
        prefix = kind.encode() + (b"|same|" if same else b"|") + mode.encode() + b"|" + context
        for period in sorted(units):
            u = units[period]
            h = hashlib.sha1(prefix)
            for slot, region in ((0, rows_r), (1, periods_r), (2, pps_r)):
                r = u[slot]
                h.update(b"\x00" if r is None else region[r[0]:r[1]])
            key = h.digest()
            hit = old.get(key) if old is not None else None
            if hit is not None:
                ro, rl, po, pl, qo, ql, mo, ml, contrib, n = hit
                got.append((key, old_json[ro:ro + rl], old_json[po:po + pl], old_json[qo:qo + ql], old_md[mo:mo + ml], contrib, n))
                stats.reused += n
            else:
                mini = {}
                for slot, name, region in ((0, "rows", rows_r), (1, "periods", periods_r), (2, "period_providers", pps_r)):
                    r = u[slot]
                    mini[name] = orjson.loads(b"[" + region[r[0]:r[1]] + b"]") if r is not None else []
                if same:
                    mini["periods"] = mini["period_providers"]
                rows_out, periods, pps, pm, pp, gr, unp = price_entries(mini, pricer, mode)
                contrib = (sorted(pm.items()), sorted(pp.items()), gr, sorted((k, (v["events"], v["tokens"])) for k, v in unp.items()))
                got.append((key, b",".join(map(_dumps, rows_out)), b",".join(map(_dumps, periods)), b",".join(map(_dumps, pps)),
                            "\n".join(markdown_rows(kind, rows_out)).encode(), contrib, len(rows_out)))
                stats.recomputed += len(rows_out)
            contrib = got[-1][5]
            for k, v in contrib[0]:
                _merge_money(per_model, k, v)
            for k, v in contrib[1]:
                _merge_money(per_provider, k, v)
            gr = contrib[2]
            grand[0] += gr[0]
            grand[1] = grand[1] or gr[1]
            grand[2] += gr[2]
            grand[3] += gr[3]
            grand[4] += gr[4]
            for (p, m), (events, tokens) in contrib[3]:
                e = unpriced.get((p, m))
                if e is None:
                    unpriced[(p, m)] = {"events": events, "model": m, "provider": p, "tokens": tokens}
                else:
                    e["events"] += events
                    e["tokens"] += tokens
        whole = whole_range(table, pricer, [], [], [], per_model, per_provider, grand, unpriced)
        report = {
            "schema_version": REPORT_SCHEMA_VERSION, "kind": kind, "timezone": doc["timezone"], "filters": doc["filters"],
            "currency": "USD", "pricing": described, **whole,
        }
        if first_unpriced is None:
            first_unpriced = report["unpriced"]
        # the JSON, assembled in sorted key order, noting where each period's bytes go
        parts = [b'{"by_model":' + _dumps(report["by_model"]) + b',"by_provider":' + _dumps(report["by_provider"])
                 + b',"currency":"USD","filters":' + _dumps(report["filters"]) + b',"kind":' + _dumps(kind) + b',"period_providers":[']
        pos = len(parts[0])
        spots = [[0] * 6 for _ in got]
        for slot, tail in ((3, b'],"periods":['), (2, b'],"pricing":' + _dumps(described) + b',"rows":['), (1, None)):
            first = True
            for i, g in enumerate(got):
                b = g[slot]
                if not b:
                    spots[i][2 * (slot - 1)] = pos
                    continue
                if not first:
                    parts.append(b",")
                    pos += 1
                first = False
                spots[i][2 * (slot - 1)] = pos
                spots[i][2 * (slot - 1) + 1] = len(b)
                parts.append(b)
                pos += len(b)
            if tail:
                parts.append(tail)
                pos += len(tail)
        parts.append(b'],"schema_version":' + str(REPORT_SCHEMA_VERSION).encode() + b',"timezone":' + _dumps(report["timezone"])
                     + b',"totals":' + _dumps(report["totals"]) + b',"unpriced":' + _dumps(report["unpriced"]) + b"}\n")
        reports_json[kind] = b"".join(parts)
        # the Markdown: head, each period's lines, foot
        head = ("\n".join(markdown_head(report)) + "\n").encode()
        md = [head]
        pos = len(head)
        md_spots = []
        for g in got:
            b = g[4]
            md_spots.append((pos, len(b)))
            if b:
                md.append(b + b"\n")
                pos += len(b) + 1
        md.append(("\n".join(markdown_foot(report)) + "\n").encode())
        reports_md[kind] = b"".join(md)
        # spots are (rows, periods, pps) in slot order 1, 2, 3 -> store rows, periods, pps
        new_index[kind] = {g[0]: (s[0], s[1], s[2], s[3], s[4], s[5], m[0], m[1], g[5], g[6]) for g, s, m in zip(got, spots, md_spots)}
    unpriced_now = first_unpriced or []
    if unpriced_now and on_unpriced == "error":
        return stats, unpriced_now, None
    # every .md before any .json: Make and refresh judge this stage by the .json files
    for kind, body in reports_md.items():
        with AtomicFile(os.path.join(out_dir, f"{kind}.md")) as fh:
            fh.write(body)
    for kind, body in reports_json.items():
        with AtomicFile(os.path.join(out_dir, f"{kind}.json")) as fh:
            fh.write(body)
    files = {}
    for kind in reports_json:
        for ext in ("json", "md"):
            files[f"{kind}.{ext}"] = view_cache.file_identity(os.path.join(out_dir, f"{kind}.{ext}"))
    view_cache.save(state_path, identity, {"index": new_index, "files": files})
    return stats, unpriced_now, sorted(reports_json)


def _merge_money(acc: dict, key, v) -> None:
    a = acc.get(key)
    if a is None:
        acc[key] = list(v)
        return
    a[0] += v[0]
    a[1] = a[1] or v[1]
    a[2] += v[2]
    a[3] += v[3]
    a[4] += v[4]
