# djflow: `make run` serves the demo, `make test` runs every test, `make bench` writes bench/report.md.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test bench install install-test ui clean

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

# The web UI arrives with a later issue; build it when it is there.
ui:
	@if [ -f admin_ui/package.json ]; then cd admin_ui && npm ci && npm run build; \
	else echo "admin_ui/: no web UI yet, serving the API only"; fi

run: install ui
	$(BIN)/djflow init --demo
	$(BIN)/djflow serve --host $(HOST) --port $(PORT)

test: install-test
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python bench/engine.py --out bench/report.md
	$(BIN)/python bench/org.py --out bench/report-org.md
	$(BIN)/python bench/api.py --out bench/report-api.md
	$(BIN)/python bench/timers.py --out bench/report-timers.md
	$(BIN)/python bench/audit.py --out bench/report-audit.md
	$(BIN)/python bench/instructions.py --out bench/report-instructions.md

clean:
	rm -rf var .pytest_cache
