# djflow: `make run` serves the demo, `make test` runs every test, `make bench` writes bench/report.md.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test e2e bench install install-test ui clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install only when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[postgres]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The web app: its typed client is generated from the server's own OpenAPI document, then built
# into admin_ui/dist, which `djflow serve` serves at /. npm ci runs again only when the lock changes.
admin_ui/node_modules/.installed: admin_ui/package-lock.json
	cd admin_ui && npm ci --no-audit --no-fund
	touch $@

ui: install admin_ui/node_modules/.installed
	$(BIN)/djflow openapi --out admin_ui/openapi.json
	cd admin_ui && npm run build

run: install ui
	$(BIN)/djflow init --demo
	$(BIN)/djflow serve --host $(HOST) --port $(PORT)

test: install-test ui
	cd admin_ui && npx vitest run
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Only the browser tests (tests/e2e: Playwright driving Debian's Chromium).
e2e: install-test ui
	$(BIN)/python -m pytest -q tests/e2e $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python bench/engine.py --out bench/report.md
	$(BIN)/python bench/org.py --out bench/report-org.md
	$(BIN)/python bench/api.py --out bench/report-api.md
	$(BIN)/python bench/timers.py --out bench/report-timers.md
	$(BIN)/python bench/audit.py --out bench/report-audit.md
	$(BIN)/python bench/instructions.py --out bench/report-instructions.md

clean:
	rm -rf var .pytest_cache
