# UI: the dashboard page, the demo's dashboard, the browser its test needs, and the
# check wiring. (The snapshot rule itself is in the Makefile.)
DASHBOARD := $(A)/dashboard.html

##@ UI
.PHONY: dashboard dashboard-graph demo-dashboard browser ui-test

dashboard: ## the self-contained HTML dashboard, $(ARTIFACTS)/dashboard.html
	@$(LOCKED) $(MAKE) dashboard-graph
	@echo "dashboard: open $(DASHBOARD)" >&2

# the bundle (one process, scripts/refresh.py), then the page from it
dashboard-graph: bundle-graph
	@$(PY) -m scripts.dashboard --artifacts $(A) --month "$(MONTH)" $(TZ_ARGS) -o $(DASHBOARD)

# view.fp carries MONTH and today's date: the month to date moves with the day.
$(DASHBOARD): $(REPORTS) $(A)/stamps/view.fp scripts/dashboard.py
	@$(PY) -m scripts.dashboard --artifacts $(A) --month "$(MONTH)" $(TZ_ARGS) -o $@

demo-dashboard: $(VENV_STAMP) ## the dashboard of the demo bundle, artifacts/demo/dashboard.html
	@$(MAKE) dashboard ARTIFACTS=artifacts/demo $(DEMO_SOURCES) TIMEZONE=$(or $(TIMEZONE),UTC) MONTH=$(or $(MONTH),$(DEMO_MONTH))

# The snapshot passes the reports' suggestions on; rebuild it when they change.
$(SNAPSHOT): $(wildcard $(A)/reports/suggestions.json)

# Debian's chromium for the dashboard's browser test, installed when missing (root, as on
# CI); the lists are refreshed only when the first try fails.
browser: ## headless Chromium for the dashboard test (apt-get install chromium if missing)
	@export PATH="$$PATH:/usr/local/sbin:/usr/sbin:/sbin" DEBIAN_FRONTEND=noninteractive; \
	if command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "browser: chromium is missing; install Debian's chromium package (apt-get install chromium)" >&2; exit 1; fi; \
	echo "browser: installing Debian's chromium" >&2; \
	apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
	  || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; \
	command -v chromium >/dev/null

ui-test: $(VENV_STAMP) browser ## the snapshot, statusline, integration and dashboard (Chromium) tests
	$(PY) -m pytest tests/test_ui_*.py

# Under `make check` (and CI=true) the Chromium test must run: it installs chromium when
# missing and fails, never skips, when it cannot.
check: export TOKENTALLY_REQUIRE_BROWSER := 1
