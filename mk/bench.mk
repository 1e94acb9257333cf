# Benchmarks and the golden/performance gates (issue 6).
##@ Speed and correctness gates
BENCH_EVENTS ?= 200000##     calls in the generated logs for `make bench`
BENCH_RUNS ?= 5##            whole-process runs per scenario (median)
GATE_EVENTS ?= 20000##       calls for the gates in `make check`
GROWTH_DAYS ?= 20,100,200,400## histories (days) of `make bench-growth`
GROWTH_PER_DAY ?= 1000##     calls a day in them
PERF_STRICT ?=##             1: a missing perf baseline fails the gate
SHARED ?= $(firstword $(wildcard ../shared /work/shared))
export PERF_STRICT

.PHONY: bench bench-growth bench-trend perf-gate golden-lock golden-verify

bench: $(VENV_STAMP) ## cold / warm / +1% runs of make all vs ccusage on generated logs -> $(ARTIFACTS)/bench/
	@TOKENTALLY_SHARED=$(SHARED) $(PY) -m scripts.bench --events $(BENCH_EVENTS) --runs $(BENCH_RUNS) --artifacts $(A)

bench-growth: $(VENV_STAMP) ## peak RSS of make all as the history grows ($(GROWTH_DAYS) days, $(GROWTH_PER_DAY) calls a day) -> $(ARTIFACTS)/bench/growth/
	@TOKENTALLY_SHARED=$(SHARED) $(PY) -m scripts.bench --growth $(GROWTH_DAYS) --per-day $(GROWTH_PER_DAY) --artifacts $(A)

bench-trend: $(VENV_STAMP) ## latest / median / p95 of the recorded bench runs, per size and scenario
	@$(PY) -m scripts.bench --trend --artifacts $(A)

perf-gate: $(VENV_STAMP) ## ratios at $(GATE_EVENTS) calls vs the baseline median (bench/baseline.json)
	@$(if $(SHARED),TOKENTALLY_SHARED=$(SHARED) $(PY) -m scripts.bench --events $(GATE_EVENTS) --runs 3 --gate --artifacts $(A),\
	  echo "perf-gate: skipped, no ../shared (the sample-log generator) next to this checkout" >&2)

golden-lock: $(VENV_STAMP) ## regenerate tests/golden/ from the canonical generated logs
	@TOKENTALLY_SHARED=$(SHARED) $(PY) -m scripts.golden lock

golden-verify: $(VENV_STAMP) ## the canonical logs still give exactly the locked golden totals
	@$(if $(SHARED),TOKENTALLY_SHARED=$(SHARED) $(PY) -m scripts.golden verify,\
	  echo "golden-verify: skipped, no ../shared (the sample-log generator) next to this checkout" >&2)

check: golden-verify perf-gate
