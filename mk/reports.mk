# Reports area: suggestions in every bundle, and `make merge` for several machines.
# Included by the Makefile (-include mk/*.mk); uses its variables (A, PY, REPORTS, ...).

##@ Several machines
INPUTS ?=##                     make merge: bundle directories to combine ("dir1 dir2 ...")
MERGED ?= $(A)/merged##         make merge: where the combined bundle goes

SUGGESTIONS := $(A)/reports/suggestions.json

# Suggestions read the priced monthly report; MONTH (in view.fp) picks the month shown.
# `make all` runs suggest inside refresh (scripts/refresh.py); this rule runs it alone.
.PHONY: suggestions
suggestions: $(SUGGESTIONS) ## run suggest alone (when its inputs changed)
$(SUGGESTIONS): $(REPORTS) $(A)/stamps/view.fp
	@$(PY) -m scripts.suggest --artifacts $(A) --month "$(MONTH)"

$(SNAPSHOT): $(SUGGESTIONS)

.PHONY: merge
merge: $(VENV_STAMP) ## combine the bundles in INPUTS (events deduplicated by id) into MERGED, with its reports
	@test -n "$(strip $(INPUTS))" || { echo 'make merge: give the bundles to combine: INPUTS="dir1 dir2 ..."' >&2; exit 2; }
	@$(PY) -m scripts.merge --out $(MERGED) $(INPUTS)
	@$(PY) -m scripts.refresh --force --artifacts $(MERGED) --pricing $(PRICING) --month "$(MONTH)" \
	  --snapshot-mode $(SNAPSHOT_MODE) $(TZ_ARGS) $(FILTER_ARGS)
	@echo "merged bundle: $(MERGED) (report daily --artifacts $(MERGED))" >&2
