-- tokentally ledger schema, version 1 (docs/contracts/ledger.md)
PRAGMA user_version = 1;

CREATE TABLE meta (
  key TEXT NOT NULL,
  value TEXT,
  PRIMARY KEY (key)
);

CREATE TABLE ledger (
  model TEXT NOT NULL,
  priced INTEGER NOT NULL CHECK (priced IN (0, 1)),
  vendor TEXT,
  vendor_rule TEXT NOT NULL,
  vendor_confidence INTEGER NOT NULL CHECK (vendor_confidence BETWEEN 0 AND 100),
  model_rule TEXT,
  model_rule_chain TEXT,
  model_confidence INTEGER CHECK (model_confidence BETWEEN 0 AND 100),
  bench_column TEXT,
  bench_columns INTEGER NOT NULL CHECK (bench_columns >= 0),
  input_usd_per_mtok REAL CHECK (input_usd_per_mtok >= 0),
  output_usd_per_mtok REAL CHECK (output_usd_per_mtok >= 0),
  cache_write_5m_usd_per_mtok REAL CHECK (cache_write_5m_usd_per_mtok >= 0),
  cache_write_1h_usd_per_mtok REAL CHECK (cache_write_1h_usd_per_mtok >= 0),
  cache_read_usd_per_mtok REAL CHECK (cache_read_usd_per_mtok >= 0),
  tool_input_usd_per_mtok REAL CHECK (tool_input_usd_per_mtok >= 0),
  tool_output_usd_per_mtok REAL CHECK (tool_output_usd_per_mtok >= 0),
  long_context_above_tokens INTEGER CHECK (long_context_above_tokens > 0),
  lc_input_usd_per_mtok REAL CHECK (lc_input_usd_per_mtok >= 0),
  lc_output_usd_per_mtok REAL CHECK (lc_output_usd_per_mtok >= 0),
  lc_cache_write_5m_usd_per_mtok REAL CHECK (lc_cache_write_5m_usd_per_mtok >= 0),
  lc_cache_write_1h_usd_per_mtok REAL CHECK (lc_cache_write_1h_usd_per_mtok >= 0),
  lc_cache_read_usd_per_mtok REAL CHECK (lc_cache_read_usd_per_mtok >= 0),
  tiers INTEGER NOT NULL CHECK (tiers >= 0),
  list_blended_usd_per_mtok REAL CHECK (list_blended_usd_per_mtok >= 0),
  pricing_source TEXT,
  pricing_updated_at TEXT,
  bench_rows_total INTEGER NOT NULL CHECK (bench_rows_total >= 0),
  bench_rows_present INTEGER NOT NULL CHECK (bench_rows_present >= 0),
  bench_rows_missing INTEGER NOT NULL CHECK (bench_rows_missing >= 0),
  swe_bench_verified REAL CHECK (swe_bench_verified BETWEEN 0 AND 100),
  swe_bench_pro REAL CHECK (swe_bench_pro BETWEEN 0 AND 100),
  swe_bench_multilingual REAL CHECK (swe_bench_multilingual BETWEEN 0 AND 100),
  multi_swe_bench REAL CHECK (multi_swe_bench BETWEEN 0 AND 100),
  terminal_bench REAL CHECK (terminal_bench BETWEEN 0 AND 100),
  livecodebench REAL CHECK (livecodebench BETWEEN 0 AND 100),
  table_input_usd_per_mtok REAL CHECK (table_input_usd_per_mtok >= 0),
  table_output_usd_per_mtok REAL CHECK (table_output_usd_per_mtok >= 0),
  rt_requests INTEGER NOT NULL CHECK (rt_requests >= 0),
  rt_failures INTEGER NOT NULL CHECK (rt_failures >= 0),
  rt_failure_rate REAL CHECK (rt_failure_rate BETWEEN 0 AND 1),
  rt_latency_p50_ms REAL CHECK (rt_latency_p50_ms >= 0),
  rt_latency_p95_ms REAL CHECK (rt_latency_p95_ms >= 0),
  rt_latency_mean_ms REAL CHECK (rt_latency_mean_ms >= 0),
  rt_ttft_p50_ms REAL CHECK (rt_ttft_p50_ms >= 0),
  usage_events INTEGER NOT NULL CHECK (usage_events >= 0),
  usage_sessions INTEGER NOT NULL CHECK (usage_sessions >= 0),
  usage_input_tokens INTEGER NOT NULL CHECK (usage_input_tokens >= 0),
  usage_output_tokens INTEGER NOT NULL CHECK (usage_output_tokens >= 0),
  usage_cache_write_tokens INTEGER NOT NULL CHECK (usage_cache_write_tokens >= 0),
  usage_cache_read_tokens INTEGER NOT NULL CHECK (usage_cache_read_tokens >= 0),
  usage_tool_input_tokens INTEGER NOT NULL CHECK (usage_tool_input_tokens >= 0),
  usage_tool_output_tokens INTEGER NOT NULL CHECK (usage_tool_output_tokens >= 0),
  usage_reasoning_tokens INTEGER NOT NULL CHECK (usage_reasoning_tokens >= 0),
  usage_cache_write_1h_tokens INTEGER NOT NULL CHECK (usage_cache_write_1h_tokens >= 0),
  usage_total_tokens INTEGER NOT NULL CHECK (usage_total_tokens >= 0),
  usage_cost_usd REAL CHECK (usage_cost_usd >= 0),
  usage_first TEXT,
  usage_last TEXT,
  usage_sources TEXT,
  PRIMARY KEY (model),
  CHECK (bench_rows_present + bench_rows_missing = bench_rows_total),
  CHECK (rt_failures <= rt_requests),
  CHECK (rt_latency_p50_ms IS NULL OR rt_latency_p95_ms IS NULL OR rt_latency_p50_ms <= rt_latency_p95_ms),
  CHECK (priced = 0 OR (input_usd_per_mtok IS NOT NULL AND output_usd_per_mtok IS NOT NULL)),
  CHECK ((vendor IS NULL) = (vendor_rule = 'unmapped')),
  CHECK ((model_rule IS NULL) = (bench_column IS NULL))
);

CREATE TABLE pricing (
  model TEXT NOT NULL,
  above_prompt_tokens INTEGER NOT NULL CHECK (above_prompt_tokens >= 0),
  input_usd_per_mtok REAL NOT NULL CHECK (input_usd_per_mtok >= 0),
  output_usd_per_mtok REAL NOT NULL CHECK (output_usd_per_mtok >= 0),
  cache_write_5m_usd_per_mtok REAL NOT NULL CHECK (cache_write_5m_usd_per_mtok >= 0),
  cache_write_1h_usd_per_mtok REAL NOT NULL CHECK (cache_write_1h_usd_per_mtok >= 0),
  cache_read_usd_per_mtok REAL NOT NULL CHECK (cache_read_usd_per_mtok >= 0),
  tool_input_usd_per_mtok REAL NOT NULL CHECK (tool_input_usd_per_mtok >= 0),
  tool_output_usd_per_mtok REAL NOT NULL CHECK (tool_output_usd_per_mtok >= 0),
  PRIMARY KEY (model, above_prompt_tokens),
  FOREIGN KEY (model) REFERENCES ledger (model)
);

CREATE TABLE subscriptions (
  provider TEXT NOT NULL,
  usd_per_month REAL NOT NULL CHECK (usd_per_month >= 0),
  PRIMARY KEY (provider)
);

CREATE TABLE model_map (
  kind TEXT NOT NULL CHECK (kind IN ('benchmark', 'usage', 'runtime')),
  name TEXT NOT NULL,
  model TEXT,
  vendor TEXT,
  rule TEXT NOT NULL,
  rule_chain TEXT NOT NULL,
  confidence INTEGER NOT NULL CHECK (confidence BETWEEN 0 AND 100),
  reason TEXT,
  candidates TEXT,
  PRIMARY KEY (kind, name),
  CHECK ((model IS NULL) = (reason IS NOT NULL)),
  FOREIGN KEY (model) REFERENCES ledger (model)
);

CREATE TABLE benchmarks (
  row_id INTEGER NOT NULL CHECK (row_id >= 1),
  benchmark TEXT NOT NULL,
  notes_configuration TEXT NOT NULL,
  model TEXT NOT NULL,
  raw_value TEXT NOT NULL,
  value_primary TEXT NOT NULL,
  value_secondary TEXT NOT NULL,
  split_kind TEXT NOT NULL CHECK (split_kind IN ('none', 'slash')),
  is_missing INTEGER NOT NULL CHECK (is_missing IN (0, 1)),
  source_row_index INTEGER CHECK (source_row_index >= 1),
  source_col_index INTEGER CHECK (source_col_index >= 1),
  source_col_name TEXT NOT NULL,
  primary_number REAL,
  primary_unit TEXT CHECK (primary_unit IN ('percent', 'usd', 'number')),
  primary_qualifier TEXT,
  secondary_number REAL,
  secondary_unit TEXT CHECK (secondary_unit IN ('percent', 'usd', 'number')),
  secondary_qualifier TEXT,
  PRIMARY KEY (row_id),
  CHECK (is_missing = 0 OR (value_primary = '' AND primary_number IS NULL))
);

CREATE TABLE runtime_metrics (
  provider TEXT NOT NULL,
  model TEXT NOT NULL,
  ledger_model TEXT NOT NULL,
  vendor TEXT,
  requests INTEGER NOT NULL CHECK (requests > 0),
  failures INTEGER NOT NULL CHECK (failures >= 0),
  failure_rate REAL NOT NULL CHECK (failure_rate BETWEEN 0 AND 1),
  latency_p50_ms REAL CHECK (latency_p50_ms >= 0),
  latency_p95_ms REAL CHECK (latency_p95_ms >= 0),
  latency_mean_ms REAL CHECK (latency_mean_ms >= 0),
  latency_samples INTEGER NOT NULL CHECK (latency_samples >= 0),
  ttft_p50_ms REAL CHECK (ttft_p50_ms >= 0),
  first_seen TEXT,
  last_seen TEXT,
  total_tokens INTEGER NOT NULL CHECK (total_tokens >= 0),
  PRIMARY KEY (provider, model),
  CHECK (failures <= requests),
  CHECK (latency_p50_ms IS NULL OR latency_p50_ms <= latency_p95_ms),
  FOREIGN KEY (ledger_model) REFERENCES ledger (model)
);

CREATE TABLE events (
  id TEXT NOT NULL,
  provider TEXT NOT NULL,
  model TEXT NOT NULL,
  raw_model TEXT,
  ledger_model TEXT NOT NULL,
  priced_as TEXT,
  session_id TEXT,
  project TEXT,
  timestamp TEXT NOT NULL,
  day TEXT NOT NULL,
  input_tokens INTEGER NOT NULL CHECK (input_tokens >= 0),
  output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
  cache_write_tokens INTEGER NOT NULL CHECK (cache_write_tokens >= 0),
  cache_read_tokens INTEGER NOT NULL CHECK (cache_read_tokens >= 0),
  tool_input_tokens INTEGER NOT NULL CHECK (tool_input_tokens >= 0),
  tool_output_tokens INTEGER NOT NULL CHECK (tool_output_tokens >= 0),
  reasoning_tokens INTEGER NOT NULL CHECK (reasoning_tokens >= 0),
  cache_write_1h_tokens INTEGER NOT NULL CHECK (cache_write_1h_tokens >= 0),
  total_tokens INTEGER NOT NULL CHECK (total_tokens >= 0),
  cost_micro_usd INTEGER CHECK (cost_micro_usd >= 0),
  cost_usd REAL CHECK (cost_usd >= 0),
  source_file TEXT,
  source_line INTEGER,
  adapter TEXT,
  adapter_version TEXT,
  source_version TEXT,
  device TEXT,
  model_provider TEXT,
  PRIMARY KEY (id),
  CHECK ((cost_micro_usd IS NULL) = (priced_as IS NULL)),
  FOREIGN KEY (ledger_model) REFERENCES ledger (model)
);

CREATE INDEX events_day_provider ON events (day, provider);
CREATE INDEX events_ledger_model_timestamp ON events (ledger_model, timestamp);
CREATE INDEX events_session ON events (provider, session_id);
CREATE INDEX events_project_day ON events (project, day);
CREATE INDEX ledger_vendor ON ledger (vendor);
CREATE INDEX model_map_model ON model_map (model);
CREATE INDEX benchmarks_model_benchmark ON benchmarks (model, benchmark);
CREATE INDEX benchmarks_benchmark ON benchmarks (benchmark);
CREATE INDEX runtime_metrics_ledger_model ON runtime_metrics (ledger_model);

CREATE VIEW daily_cost AS
SELECT day, provider, ledger_model AS model,
       COUNT(*) AS events,
       COUNT(DISTINCT session_id) AS sessions,
       SUM(total_tokens) AS tokens,
       ROUND(SUM(cost_micro_usd) / 1000000.0, 6) AS cost_usd,
       SUM(CASE WHEN cost_micro_usd IS NULL THEN total_tokens ELSE 0 END) AS unpriced_tokens
FROM events
GROUP BY day, provider, ledger_model;

CREATE VIEW model_value AS
SELECT model, vendor, bench_column, model_confidence,
       swe_bench_verified, terminal_bench,
       list_blended_usd_per_mtok,
       ROUND(list_blended_usd_per_mtok / NULLIF(swe_bench_verified, 0), 6) AS list_usd_per_mtok_per_swe_point,
       ROUND(list_blended_usd_per_mtok / NULLIF(terminal_bench, 0), 6) AS list_usd_per_mtok_per_terminal_point,
       usage_total_tokens, usage_cost_usd,
       ROUND(usage_cost_usd * 1000000.0 / NULLIF(usage_total_tokens, 0), 6) AS usage_usd_per_mtok,
       ROUND(usage_cost_usd / NULLIF(swe_bench_verified, 0), 6) AS usage_cost_usd_per_swe_point
FROM ledger
WHERE priced = 1 AND (swe_bench_verified IS NOT NULL OR terminal_bench IS NOT NULL);

CREATE VIEW benchmark_scores AS
SELECT m.model AS ledger_model, b.model AS column_name, m.rule, m.confidence,
       b.benchmark, b.notes_configuration, b.primary_number AS value, b.primary_unit AS unit,
       b.secondary_number AS value_secondary, b.raw_value
FROM benchmarks b
JOIN model_map m ON m.kind = 'benchmark' AND m.name = b.model
WHERE b.is_missing = 0;
