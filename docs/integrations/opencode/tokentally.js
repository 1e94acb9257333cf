// tokentally for OpenCode: a plugin that shows this month's cost in a toast whenever a
// session goes idle. Copy it to .opencode/plugin/ (one project) or
// ~/.config/opencode/plugin/ (all projects); OpenCode loads every .js/.ts file there.
//
// It reads ui-snapshot.json and nothing else: $TOKENTALLY_SNAPSHOT, else
// ~/tokentally/artifacts/ui-snapshot.json. It checks schema_version, ignores unknown keys,
// and keeps the last good snapshot when the file is missing or unreadable.
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";

const SUPPORTED_SCHEMA_VERSION = 1;

export function snapshotPath(env = process.env) {
  return env.TOKENTALLY_SNAPSHOT || path.join(homedir(), "tokentally", "artifacts", "ui-snapshot.json");
}

function money(v) {
  return v === null || v === undefined ? "$?" : `$${v.toFixed(2)}`;
}

export function toastMessage(snap) {
  const top = (snap.top_models || [])[0];
  const parts = [`${snap.month}: ${money(snap.totals?.cost_usd)}`, `today ${money(snap.today?.cost_usd)}`];
  if (top) parts.push(`top model ${top.name} ${money(top.total_cost_usd)}`);
  return parts.join(" · ");
}

export const TokentallyPlugin = async ({ client }) => {
  let last = null; // the last good snapshot

  async function load() {
    try {
      const doc = JSON.parse(await readFile(snapshotPath(), "utf8"));
      if (doc && doc.schema_version === SUPPORTED_SCHEMA_VERSION) last = doc;
    } catch {
      // missing or unreadable: keep the last good state
    }
    return last;
  }

  return {
    event: async ({ event }) => {
      if (event.type !== "session.idle") return;
      const snap = await load();
      if (!snap) return;
      await client.tui.showToast({
        body: { title: "tokentally", message: toastMessage(snap), variant: "info" },
      });
    },
  };
};
