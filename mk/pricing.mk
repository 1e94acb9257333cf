# The pricing book: import, lint, audit, check, coverage, apply, reconcile (docs/pricing.md).
# Reports go to $(ARTIFACTS)/pricing/. check/coverage/reconcile read the bundle that
# `make all` (or `make demo`) left in $(ARTIFACTS); they never rebuild it.

##@ Pricing book
PRICING_OVERRIDES ?= pricing-overrides.json## hand-kept additions to the LiteLLM import
LITELLM ?=##                    LiteLLM model_prices_and_context_window.json for `make pricing-import`
LITELLM_DATE ?=##               date of that copy, YYYY-MM-DD (default: the file's date)
PATCH ?= $(A)/pricing/patch.json## the patch `make pricing-apply` merges
WRITE ?=##                      1: pricing-apply / pricing-reconcile write the book (default: dry run)
PRICING_AUDIT_ARGS ?=##         extra `price audit` options, e.g. --allow-stale --max-age-days 30
FIXTURE_AUDIT_ARGS ?= --allow-stale## audit options for pricing-ci-fixtures (make check): a book ageing is not a test failure

PRICE := $(PY) -m scripts.price
PRICING_USAGE_ARGS = --pricing $(PRICING) --artifacts $(A) $(TZ_ARGS) --month "$(MONTH)"

.PHONY: pricing-import pricing-lint pricing-audit pricing-check pricing-coverage pricing-apply pricing-reconcile pricing-ci pricing-ci-fixtures

pricing-import: $(VENV_STAMP) ## rebuild $(PRICING) from LITELLM=<file> and $(PRICING_OVERRIDES)
	@test -n "$(LITELLM)" || { echo "pricing-import: set LITELLM=path/to/model_prices_and_context_window.json (docs/pricing.md)" >&2; exit 2; }
	@$(PRICE) import-litellm "$(LITELLM)" --overrides $(PRICING_OVERRIDES) $(if $(LITELLM_DATE),--source-date $(LITELLM_DATE)) -o $(PRICING)

pricing-lint: $(VENV_STAMP) ## schema, aliases, rates and tiers of the book
	@$(PRICE) lint --pricing $(PRICING) --artifacts $(A)

pricing-audit: $(VENV_STAMP) ## provenance and freshness of every rate
	@$(PRICE) audit --pricing $(PRICING) --artifacts $(A) $(PRICING_AUDIT_ARGS)

pricing-check: $(VENV_STAMP) ## exit 1 if an event of MONTH is unpriced
	@$(PRICE) check $(PRICING_USAGE_ARGS)

pricing-coverage: $(VENV_STAMP) ## unpriced models, nearest names, and a patch
	@$(PRICE) coverage --pricing $(PRICING) --artifacts $(A) $(TZ_ARGS) $(if $(MONTH),--month $(MONTH)) --patch $(PATCH)

pricing-apply: $(VENV_STAMP) ## merge PATCH into the book (dry run unless WRITE=1)
	@$(PRICE) apply $(PATCH) --pricing $(PRICING) --artifacts $(A) $(if $(WRITE),--write)

pricing-reconcile: $(VENV_STAMP) ## coverage -> patch -> apply -> check, in $(ARTIFACTS)/pricing/reconcile-<time>/
	@$(PRICE) reconcile $(PRICING_USAGE_ARGS) $(if $(WRITE),--write)

pricing-ci: $(VENV_STAMP) ## lint, audit and check (all three run; fails if any fails)
	@status=0; \
	$(MAKE) pricing-lint || status=1; \
	$(MAKE) pricing-audit || status=1; \
	$(MAKE) pricing-check || status=1; \
	exit $$status

pricing-ci-fixtures: $(VENV_STAMP) ## pricing-ci over the demo bundle (part of make check)
	@$(MAKE) demo
	@$(MAKE) pricing-ci ARTIFACTS=artifacts/demo MONTH=$(DEMO_MONTH) TIMEZONE=UTC PRICING_AUDIT_ARGS="$(FIXTURE_AUDIT_ARGS)"

check: pricing-ci-fixtures
