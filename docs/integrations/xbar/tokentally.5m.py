#!/usr/bin/env python3
# <xbar.title>tokentally</xbar.title>
# <xbar.version>v1</xbar.version>
# <xbar.desc>What your AI coding assistants cost this month, from tokentally's ui-snapshot.json.</xbar.desc>
# <xbar.dependencies>python3</xbar.dependencies>
# <xbar.var>string(TOKENTALLY_SNAPSHOT=""): Path to ui-snapshot.json (default ~/tokentally/artifacts/ui-snapshot.json)</xbar.var>
# <swiftbar.hideRunInTerminal>true</swiftbar.hideRunInTerminal>
# <swiftbar.hideDisablePlugin>true</swiftbar.hideDisablePlugin>
#
# An xbar / SwiftBar menu-bar plugin: the file name's "5m" is the refresh interval. It
# reads ui-snapshot.json and nothing else (standard library only). The menu-bar title is
# the month's cost; the menu lists today, providers, models and suggestions. When the
# snapshot is missing, unreadable or of an unknown schema_version, it shows the last good
# one it saw (kept in a small cache file) marked as stale.
import json
import os
import sys
import tempfile

SUPPORTED = 1
SNAPSHOT = os.environ.get("TOKENTALLY_SNAPSHOT") or os.path.expanduser("~/tokentally/artifacts/ui-snapshot.json")
CACHE = os.environ.get("TOKENTALLY_XBAR_CACHE") or os.path.join(tempfile.gettempdir(), f"tokentally-xbar-{os.getuid()}.json")


def money(v):
    return "$?" if v is None else f"${v:,.2f}"


def tokens(n):
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def read(path):
    """The snapshot at ``path``, or (None, reason)."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        return None, "no snapshot yet (run make all)"
    except (OSError, ValueError) as exc:
        return None, f"snapshot unreadable ({exc.__class__.__name__})"
    if not isinstance(doc, dict) or doc.get("schema_version") != SUPPORTED:
        return None, f"snapshot version {doc.get('schema_version') if isinstance(doc, dict) else '?'} not supported"
    return doc, None


def keep(doc):
    tmp = CACHE + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.replace(tmp, CACHE)
    except OSError:
        pass


def main():
    doc, problem = read(SNAPSHOT)
    if doc is not None:
        keep(doc)
    else:
        doc, _ = read(CACHE)  # last good state
    if doc is None:
        print("tokentally ?")
        print("---")
        print(f"tokentally: {problem}")
        print(f"Looked in {SNAPSHOT} | font=Menlo size=11")
        return 0
    totals = doc.get("totals", {})
    stale = " ⚠" if problem else ""
    print(f"{money(totals.get('cost_usd'))}{stale}")
    print("---")
    if problem:
        print(f"Showing the last good snapshot: {problem} | color=orange")
    print(f"tokentally · {doc.get('month')} ({doc.get('timezone')})")
    today = doc.get("today") or {}
    print(f"Today: {money(today.get('cost_usd'))} · {tokens(today.get('tokens', 0))} tokens")
    print(f"Month: {money(totals.get('cost_usd'))} · {tokens(totals.get('tokens', 0))} tokens · {totals.get('session_count', 0)} sessions")
    if totals.get("blended_usd_per_mtok") is not None:
        print(f"Blended: ${totals['blended_usd_per_mtok']:.3f} per million tokens")
    if totals.get("skipped_unpriced_count"):
        print(f"{totals['skipped_unpriced_count']} calls have no price (not counted as $0) | color=orange")
    print("---")
    print("Providers")
    for row in doc.get("top_providers", []):
        print(f"--{row['name']}: {money(row.get('total_cost_usd'))} · {tokens(row.get('tokens', 0))} tokens | font=Menlo")
    print("Models")
    for row in doc.get("top_models", []):
        print(f"--{row['name']} ({row.get('provider', '?')}): {money(row.get('total_cost_usd'))} | font=Menlo")
    suggestions = doc.get("suggestions") or []
    if suggestions:
        print("---")
        print(f"Suggestions ({len(suggestions)})")
        for s in suggestions:
            print(f"--{s.get('title', s.get('id'))}")
    print("---")
    print(f"Updated {doc.get('generated_at', '?')} | size=11")
    dashboard = os.path.join(os.path.dirname(os.path.abspath(SNAPSHOT)), "dashboard.html")
    if os.path.exists(dashboard):
        print(f"Open dashboard | href=file://{dashboard}")
    print("Refresh | refresh=true")
    return 0


if __name__ == "__main__":
    sys.exit(main())
