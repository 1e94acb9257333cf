# The fault suite (issue 9, tests/faults/, docs/faults.md): kill -9 anywhere in make all,
# concurrent runs, logs appended while read, a locked Cursor database, fuzzing every
# adapter, privacy and umask, integer tokens and money that adds up. `make test` leaves it
# out; `make check` runs its fast profile. Its figures are printed at the end and kept in
# $(ARTIFACTS)/faults/<profile>.json.

##@ Faults
.PHONY: faults faults-fast

faults-fast: $(VENV_STAMP) ## the fault suite's fast profile (part of make check, ~1 min)
	@TOKENTALLY_FAULTS=fast TOKENTALLY_FAULTS_REPORT=$(A)/faults/fast.json TOKENTALLY_SHARED=$(SHARED) \
	  $(PY) -m pytest tests/faults

faults: $(VENV_STAMP) ## the whole fault suite: a kill before every write, thousands of fuzz cases per adapter
	@TOKENTALLY_FAULTS=long TOKENTALLY_FAULTS_REPORT=$(A)/faults/long.json TOKENTALLY_SHARED=$(SHARED) \
	  $(PY) -m pytest tests/faults

check: faults-fast
