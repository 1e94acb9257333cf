# The fault suite (issue 9, tests/faults/, docs/faults.md): kill -9 anywhere in make all,
# concurrent runs, logs appended while read, a locked Cursor database, fuzzing every
# adapter, privacy and umask, integer tokens and money that adds up. `make test` leaves it
# out; `make check` runs its fast profile. Its figures are printed at the end and kept in
# $(ARTIFACTS)/faults/<profile>.json.

##@ Faults
.PHONY: faults faults-fast native-sanitize

faults-fast: $(VENV_STAMP) ## the fault suite's fast profile (part of make check, ~1 min)
	@TOKENTALLY_FAULTS=fast TOKENTALLY_FAULTS_REPORT=$(A)/faults/fast.json TOKENTALLY_SHARED=$(SHARED) \
	  $(PY) -m pytest tests/faults

faults: $(VENV_STAMP) native-sanitize ## the whole fault suite: a kill before every write, thousands of fuzz cases per adapter
	@TOKENTALLY_FAULTS=long TOKENTALLY_FAULTS_REPORT=$(A)/faults/long.json TOKENTALLY_SHARED=$(SHARED) \
	  $(PY) -m pytest tests/faults

# The compiled parser reads untrusted bytes: its tests (4,000 mutated inputs a source)
# run once more with a build under AddressSanitizer and UBSan, and the Python allocator
# off so that a read past a line's buffer is caught. Without a C compiler: skipped.
native-sanitize: $(VENV_STAMP) ## the compiled parser's tests under AddressSanitizer and UBSan (part of make faults)
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	if ! $(PY) -m scripts.native.build --sanitize "$$dir"; then echo "native-sanitize: skipped (no sanitizer build)"; exit 0; fi && \
	cc=$${CC:-cc} && \
	LD_PRELOAD="$$($$cc -print-file-name=libasan.so) $$($$cc -print-file-name=libubsan.so)" PYTHONMALLOC=malloc \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  PYTHONPATH="$$dir" NATIVE_FUZZ_EXAMPLES=4000 $(PY) -m pytest -p no:cacheprovider tests/test_native_parser.py

check: faults-fast
