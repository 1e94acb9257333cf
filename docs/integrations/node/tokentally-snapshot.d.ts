// Types for tokentally-snapshot.mjs and for ui-snapshot.json version 1
// (schemas/ui-snapshot.v1.schema.json). Unknown keys may appear: ignore them.

export interface SummaryRow {
  name: string;
  tokens: number;
  /** Variable + subscription share, USD; null when the row could not be priced. */
  total_cost_usd: number | null;
  blended_usd_per_mtok: number | null;
  session_count: number;
}

export interface ModelRow extends SummaryRow {
  provider: string;
}

export interface Suggestion {
  id: string;
  severity?: string;
  title: string;
  detail?: string;
  evidence?: Record<string, unknown>;
  threshold?: Record<string, unknown>;
}

/** A provider's most recent 5-hour block, as the blocks report has it. */
export interface Block {
  provider: string;
  start: string;
  end: string;
  first_timestamp: string;
  last_timestamp: string;
  total_tokens: number;
  cost_usd: number | null;
  total_cost_usd: number | null;
}

/** The active block with its burn rate (extended mode, as of generated_at). */
export interface ActiveBlock {
  provider: string;
  start: string;
  end: string;
  first_timestamp: string;
  last_timestamp: string;
  tokens: number;
  cost_usd: number | null;
  burn_rate_tokens_per_hour: number;
  burn_rate_usd_per_hour: number | null;
  remaining_minutes: number;
  projected_tokens: number;
  projected_cost_usd: number | null;
}

export interface UiSnapshotV1 {
  schema_version: 1;
  generated_at: string;
  month: string;
  timezone: string;
  mode: "compact" | "extended";
  totals: {
    cost_usd: number | null;
    tokens: number;
    blended_usd_per_mtok: number | null;
    session_count: number;
    skipped_unpriced_count: number;
  };
  top_providers: SummaryRow[];
  top_models: ModelRow[];
  suggestions: Suggestion[];
  today: { date?: string; cost_usd: number | null; tokens: number };
  latest_blocks: Block[];
  run_summary_path?: string;
  reconcile_summary_path?: string;
  /** extended only */
  days?: { date: string; cost_usd: number | null; tokens: number }[];
  /** extended only */
  active_block?: ActiveBlock | null;
}

export const SUPPORTED_SCHEMA_VERSION: 1;
export function defaultSnapshotPath(env?: Record<string, string | undefined>): string;
export function readSnapshot(file: string): Promise<{ ok: true; snapshot: UiSnapshotV1 } | { ok: false; reason: string }>;
export function money(value: number | null | undefined): string;
export function formatLine(snapshot: UiSnapshotV1): string;
export function watchSnapshot(
  file: string,
  options?: {
    intervalMs?: number;
    onUpdate?: (snapshot: UiSnapshotV1) => void;
    onError?: (reason: string) => void;
  },
): { current(): UiSnapshotV1 | null; stop(): void };
