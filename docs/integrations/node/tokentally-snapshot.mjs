#!/usr/bin/env node
// tokentally snapshot reader for Node 20+ (plain ESM, no dependencies).
//
// Reads $ARTIFACTS/ui-snapshot.json and nothing else. Follows the consumer rules of
// docs/contracts/ui-snapshot.md: check schema_version, ignore unknown keys, and keep the
// last good snapshot when the file is missing, unreadable or of an unknown version.
//
// As a library:
//   import { watchSnapshot, formatLine } from "./tokentally-snapshot.mjs";
//   const w = watchSnapshot("/path/to/artifacts/ui-snapshot.json", {
//     intervalMs: 5000,
//     onUpdate: (snap) => console.log(formatLine(snap)),
//     onError: (reason) => console.warn(reason), // the last good snapshot stays in w.current()
//   });
//   // later: w.stop();
//
// As a command:
//   node tokentally-snapshot.mjs --once [FILE]            print one line and exit (1 without data)
//   node tokentally-snapshot.mjs [--interval MS] [FILE]   print a line whenever the file changes
// FILE defaults to $TOKENTALLY_SNAPSHOT, else $ARTIFACTS/ui-snapshot.json, else artifacts/ui-snapshot.json.

import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";

export const SUPPORTED_SCHEMA_VERSION = 1;

export function defaultSnapshotPath(env = process.env) {
  if (env.TOKENTALLY_SNAPSHOT) return env.TOKENTALLY_SNAPSHOT;
  return path.join(env.ARTIFACTS || "artifacts", "ui-snapshot.json");
}

/** Read and check one snapshot: {ok: true, snapshot} or {ok: false, reason}. */
export async function readSnapshot(file) {
  let text;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    return { ok: false, reason: err.code === "ENOENT" ? `${file}: missing` : `${file}: ${err.message}` };
  }
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `${file}: not valid JSON (${err.message})` };
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    return { ok: false, reason: `${file}: not a JSON object` };
  }
  if (doc.schema_version !== SUPPORTED_SCHEMA_VERSION) {
    return { ok: false, reason: `${file}: schema_version ${doc.schema_version} is not supported (this reader knows ${SUPPORTED_SCHEMA_VERSION})` };
  }
  return { ok: true, snapshot: doc };
}

export function money(value) {
  if (value === null || value === undefined) return "$?";
  return "$" + value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/** One line: the month's cost, today's, and the most expensive provider. */
export function formatLine(snap) {
  const parts = [`${snap.month} ${money(snap.totals?.cost_usd)}`];
  if (snap.today) parts.push(`today ${money(snap.today.cost_usd)}`);
  const top = (snap.top_providers || [])[0];
  if (top) parts.push(`top ${top.name} ${money(top.total_cost_usd)}`);
  const n = (snap.suggestions || []).length;
  if (n) parts.push(`${n} suggestion${n === 1 ? "" : "s"}`);
  return parts.join(" · ");
}

/**
 * Poll `file` every `intervalMs`; call onUpdate(snapshot) when it changed and reads well,
 * onError(reason) when it cannot be read (the last good snapshot is kept).
 */
export function watchSnapshot(file, { intervalMs = 5000, onUpdate = () => {}, onError = () => {} } = {}) {
  let last = null;
  let lastStamp = null;
  let lastError = null;
  let timer = null;
  let stopped = false;

  async function tick() {
    let stamp;
    try {
      const st = await stat(file);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch (err) {
      stamp = `error:${err.code}`;
    }
    if (stamp !== lastStamp) {
      lastStamp = stamp;
      const res = await readSnapshot(file);
      if (res.ok) {
        last = res.snapshot;
        lastError = null;
        onUpdate(last);
      } else if (res.reason !== lastError) {
        lastError = res.reason;
        onError(res.reason);
      }
    }
    if (!stopped) timer = setTimeout(tick, intervalMs);
  }

  tick();
  return {
    current: () => last,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

async function cli(argv) {
  let once = false;
  let intervalMs = 5000;
  let count = Infinity; // stop after this many updates (used by the tests)
  let file = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--once") once = true;
    else if (a === "--interval") intervalMs = Number(argv[++i]);
    else if (a === "--count") count = Number(argv[++i]);
    else if (a === "-h" || a === "--help") {
      console.log("usage: tokentally-snapshot.mjs [--once] [--interval MS] [--count N] [FILE]");
      return 0;
    } else file = a;
  }
  file = file || defaultSnapshotPath();
  if (once) {
    const res = await readSnapshot(file);
    if (!res.ok) {
      console.error(res.reason);
      return 1;
    }
    console.log(formatLine(res.snapshot));
    return 0;
  }
  return await new Promise((resolve) => {
    let seen = 0;
    const w = watchSnapshot(file, {
      intervalMs,
      onUpdate(snap) {
        console.log(formatLine(snap));
        if (++seen >= count) {
          w.stop();
          resolve(0);
        }
      },
      onError(reason) {
        const kept = w && w.current() ? ` (keeping the snapshot of ${w.current().generated_at})` : "";
        console.error(reason + kept);
      },
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] || "").href) {
  cli(process.argv.slice(2)).then((code) => process.exit(code));
}
