# The model ledger (docs/ledger.md): pricing + benchmark priors + CLIProxyAPI runtime
# metrics + your usage, as CSV, SQL and SQLite under $(ARTIFACTS)/ledger/.

##@ Ledger variables
MODELS_CSV ?=##                 benchmark table for the ledger: markdown pipe table or its long-form CSV (default: none)
LEDGER_RULES ?= ledger-rules.json## the ledger's mapping rules
export MODELS_CSV LEDGER_RULES

LEDGER_DIR := $(A)/ledger
LEDGER_OUTPUTS := $(addprefix $(LEDGER_DIR)/,ledger.csv benchmarks_normalized.csv schema.sql seed.sql coverage.json tokentally.db)
LEDGER_STAMP := $(A)/stamps/ledger.fp

##@ Ledger targets
.PHONY: ledger

ledger: ## the model ledger: ledger.csv, schema.sql + seed.sql, tokentally.db (MODELS_CSV=table)
	@$(LOCKED) $(MAKE) $(LEDGER_OUTPUTS)

# Rewritten only when the benchmark table, the rules or the CLIProxyAPI archive changed
# (or MODELS_CSV / LEDGER_RULES / CLIPROXY_USAGE_DIR name other ones).
$(LEDGER_STAMP): $(VENV_STAMP) FORCE_CHECK
	@mkdir -p $(@D)
	@$(PY) -m scripts.ledger stamp -o $@

$(LEDGER_OUTPUTS) &: $(NORMALIZED) $(A)/stamps/pricing.fp $(LEDGER_STAMP)
	@$(PY) -m scripts.ledger build --artifacts $(A) --pricing $(PRICING)
