# Adapters: the fixture databases the demo reads, and polling CLIProxyAPI.
export CLIPROXY_URL CLIPROXY_KEY

.PHONY: fixtures cliproxy-poll

fixtures: $(VENV_STAMP) ## build the fixture databases (Cursor WAL db, OpenCode db) from their row specs
	@$(PY) fixtures/build_fixtures.py

demo: fixtures

cliproxy-poll: $(VENV_STAMP) ## poll CLIProxyAPI once (CLIPROXY_URL, CLIPROXY_KEY) into CLIPROXY_USAGE_DIR
	@$(PY) -m scripts.extract_cliproxy
