# tokentally: what your AI coding assistants cost, from the logs they already write.
# `make` (or `make help`) lists the targets and variables.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules --no-print-directory
.DEFAULT_GOAL := help

##@ Variables (each also taken from the environment)
ARTIFACTS ?= artifacts##        where the bundle goes
PRICING ?= pricing.json##       the pricing book
TIMEZONE ?=##                   IANA zone for days and months (default: the system zone)
MONTH ?=##                      YYYY-MM the snapshot and `price check` look at (default: this month)
STRICT ?=##                     1: a bad input line fails the run instead of being counted and skipped
FORCE ?=##                      1: bypass every cache and rebuild from the raw logs
DEVICE ?=##                     machine name stored on events (default: the hostname)
SINCE ?=##                      report filter: first day, YYYY-MM-DD
UNTIL ?=##                      report filter: last day, YYYY-MM-DD
PROVIDER ?=##                   report filter: comma list of providers (claude,codex,...)
MODEL ?=##                      report filter: comma list of models
PROJECT ?=##                    report filter: comma list of projects
SNAPSHOT_MODE ?= compact##      compact (top 5) or extended ui-snapshot.json
PYTHON ?= python3##             the interpreter that builds .venv
LOCK_WAIT ?= 600##              seconds a second run on the same ARTIFACTS waits for the first, then gives up
# Source locations (defaults in docs/sources.md): CLAUDE_CONFIG_DIR CODEX_HOME CURSOR_STATE_DB
# DROID_SESSIONS_DIR OPENCODE_DATA_DIR GEMINI_DATA_DIR CLIPROXY_USAGE_DIR
export CLAUDE_CONFIG_DIR CODEX_HOME CURSOR_STATE_DB DROID_SESSIONS_DIR OPENCODE_DATA_DIR GEMINI_DATA_DIR CLIPROXY_USAGE_DIR
export STRICT FORCE DEVICE

VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
VENV_PACKAGES := $(VENV)/.packages
A := $(ARTIFACTS)

SOURCES := claude codex cursor droid opencode gemini cliproxy
REPORT_KINDS := daily weekly monthly sessions projects blocks
SOURCE_STAMPS := $(SOURCES:%=$(A)/stamps/%.fp)
SETTING_STAMPS := $(A)/stamps/params.fp $(A)/stamps/pricing.fp $(A)/stamps/view.fp $(A)/stamps/device.fp $(A)/stamps/code.fp
NORMALIZED := $(SOURCES:%=$(A)/stamps/%.normalized)
ROLLUPS := $(SOURCES:%=$(A)/rollups/%.json)
AGGREGATES := $(A)/aggregates/aggregates.json
REPORTS := $(REPORT_KINDS:%=$(A)/reports/%.json)
SNAPSHOT := $(A)/ui-snapshot.json
FILTER_ARGS = $(if $(SINCE),--since $(SINCE)) $(if $(UNTIL),--until $(UNTIL)) \
  $(if $(PROVIDER),--provider $(PROVIDER)) $(if $(MODEL),--model $(MODEL)) $(if $(PROJECT),--project $(PROJECT))
TZ_ARGS = --timezone "$(TIMEZONE)"

##@ Targets
.PHONY: help all bundle-graph demo demo-validate check test clean forget forget-graph validate FORCE_CHECK

help: ## this list
	@awk 'BEGIN {FS = "##"} \
	  /^##@/ {printf "\n%s\n", substr($$0, 5); next} \
	  /^[A-Z_]+ \?=.*##/ {name = $$1; sub(/ .*/, "", name); text = $$NF; sub(/^ +/, "", text); \
	    printf "  %-16s %s\n", name, text; next} \
	  /^[a-z][a-z_-]*:.*## / {name = $$1; sub(/:.*/, "", name); text = $$NF; sub(/^ +/, "", text); \
	    printf "  make %-14s %s\n", name, text}' $(MAKEFILE_LIST)

all: $(VENV_STAMP) ## the bundle from your real logs, in $(ARTIFACTS)/
	@$(LOCKED) $(REFRESH)

# One run at a time per bundle: a target that writes it runs its graph (a sub-make, or
# for `make all` the one refresh process) holding $(A)/.lock (scripts/locked.sh); a second
# run says so and waits up to LOCK_WAIT.
# Already held by this make (forget -> all): no second lock.
LOCKED = $(if $(filter $(abspath $(A)),$(TOKENTALLY_LOCK_HELD)),,TOKENTALLY_LOCK_HELD="$(strip $(TOKENTALLY_LOCK_HELD) $(abspath $(A)))" \
  PYTHON=$(PYTHON) sh scripts/locked.sh $(A) $(LOCK_WAIT) "make $@")

# One Python process runs the whole graph (scripts/refresh.py --check: cache-check, then
# every stage whose inputs are newer than its outputs, the rules below applied in Python);
# `make all` runs it under the lock directly, with no sub-make in between.
REFRESH = $(PY) -m scripts.refresh --check --normalize --artifacts $(A) --pricing $(PRICING) --month "$(MONTH)" \
  --snapshot-mode $(SNAPSHOT_MODE) $(TZ_ARGS) $(FILTER_ARGS)
bundle-graph: $(VENV_STAMP)
	@$(REFRESH)

demo: $(VENV_STAMP) ## the same bundle from fixtures/, in artifacts/demo/
	@$(MAKE) all ARTIFACTS=artifacts/demo $(DEMO_SOURCES) TIMEZONE=$(or $(TIMEZONE),UTC) MONTH=$(or $(MONTH),$(DEMO_MONTH))

DEMO_MONTH := 2026-08
DEMO_SOURCES := CLAUDE_CONFIG_DIR=$(CURDIR)/fixtures/claude CODEX_HOME=$(CURDIR)/fixtures/codex \
  CURSOR_STATE_DB=$(CURDIR)/fixtures/cursor/build/state.vscdb DROID_SESSIONS_DIR=$(CURDIR)/fixtures/droid/sessions \
  OPENCODE_DATA_DIR=$(CURDIR)/fixtures/opencode/build GEMINI_DATA_DIR=$(CURDIR)/fixtures/gemini \
  CLIPROXY_USAGE_DIR=$(CURDIR)/fixtures/cliproxy

test: $(VENV_STAMP) ## the unit, CLI and contract tests
	$(PY) -m pytest tests

check: test demo-validate ## what CI runs: tests, schema validation, golden and performance gates

demo-validate: demo ## build the demo bundle and validate every artifact against schemas/
	@$(PY) -m scripts.validate --artifacts artifacts/demo

forget: $(VENV_STAMP) ## drop the kept events of log files their tool has deleted, then rebuild
	@$(LOCKED) $(MAKE) forget-graph

forget-graph:
	@$(PY) -m scripts.normalize --bundle --forget --artifacts $(A)
	@rm -f $(NORMALIZED)
	@$(MAKE) all

validate: $(VENV_STAMP) ## check every JSON artifact of $(ARTIFACTS) against schemas/
	@$(PY) -m scripts.validate --artifacts $(A)

clean: ## remove the bundle and the virtualenv
	rm -rf $(A) artifacts $(VENV) *.egg-info .pytest_cache

# ---------------------------------------------------------------- the virtualenv
# Rebuilt only when requirements.txt (or the package's entry points) change.
$(VENV_PACKAGES): requirements.txt pyproject.toml
	@echo "setting up $(VENV) from requirements.txt" >&2
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.txt 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	$(VENV)/bin/pip install --disable-pip-version-check -q --no-deps --no-build-isolation --config-settings editable_mode=compat -e . 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	touch $@

# The compiled fast path of the Claude Code and Codex parsers, into .venv: ~1 s with cc;
# without a compiler it says so and the Python parsers do the same work more slowly.
$(VENV_STAMP): $(VENV_PACKAGES) scripts/native/fastparse.c
	$(VENV)/bin/python -m scripts.native.build
	$(VENV)/bin/python -m compileall -q scripts >/dev/null # bytecode even under PYTHONDONTWRITEBYTECODE
	touch $@

# ---------------------------------------------------------------- the pipeline
# cache-check runs every time; it rewrites a stamp only when what it fingerprints
# changed, so Make skips every stage downstream of an unchanged input.
$(SOURCE_STAMPS) $(SETTING_STAMPS) &: $(VENV_STAMP) FORCE_CHECK
	@$(PY) -m scripts.cache_check --artifacts $(A) --pricing $(PRICING) --month "$(MONTH)" \
	  --snapshot-mode $(SNAPSHOT_MODE) $(TZ_ARGS) $(FILTER_ARGS)

# Cursor keeps its usage in SQLite: extract-cursor turns the rows it uses into JSONL
# (with its own telemetry), and normalize reads that file as the cursor source.
$(A)/raw/cursor.jsonl: $(A)/stamps/cursor.fp $(A)/stamps/code.fp
	@$(PY) -m scripts.extract_cursor --artifacts $(A) -o $@

# One normalize process for every stale source: both cores parse files of all sources.
$(NORMALIZED) &: $(SOURCE_STAMPS) $(A)/stamps/device.fp $(A)/stamps/code.fp $(A)/raw/cursor.jsonl
	@$(PY) -m scripts.normalize --bundle --only-stale --artifacts $(A)

# `make all` runs cache-check, extract-cursor, normalize, aggregate, price, suggest and
# snapshot in one process (scripts/refresh.py --check), each only when an input is newer
# than its output: the rules here, applied in Python, because Python process starts were
# most of a warm or incremental run. These rules run one stage on its own: `make normalized`, `make aggregates`,
# `make reports`, `make snapshot` (and other targets, e.g. the ledger, depend on them).
# Rollups are rewritten only when their content changes (restat): a touched log that
# holds nothing new stops there.
.PHONY: normalized aggregates reports snapshot
normalized: $(NORMALIZED) ## run normalize alone (for the sources that changed)
aggregates: $(AGGREGATES) ## run aggregate alone (when its inputs changed)
reports: $(REPORTS) ## run price alone (when its inputs changed)
snapshot: $(SNAPSHOT) ## run snapshot alone (when its inputs changed)
$(ROLLUPS): $(NORMALIZED) ;

$(AGGREGATES): $(ROLLUPS) $(A)/stamps/params.fp $(A)/stamps/code.fp
	@$(PY) -m scripts.aggregate --rollups $(A)/rollups --artifacts $(A) $(TZ_ARGS) $(FILTER_ARGS) -o $@

$(REPORTS) &: $(AGGREGATES) $(A)/stamps/pricing.fp
	@$(PY) -m scripts.price run --pricing $(PRICING) --out-dir $(A)/reports --artifacts $(A) $(AGGREGATES)

$(SNAPSHOT): $(REPORTS) $(A)/stamps/view.fp
	@$(PY) -m scripts.snapshot --artifacts $(A) --month "$(MONTH)" --mode $(SNAPSHOT_MODE) $(TZ_ARGS)

FORCE_CHECK:

-include mk/*.mk
