# Landed: every target builds the same .venv from the project's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The browser SDKs (tests/test_browser_sdks.py) from npm, exactly as locked; only where npm exists
# (under CI the tests then fail without them, elsewhere they skip).
SDKS := tests/browser_sdks
SDK_STAMP := $(SDKS)/node_modules/.installed
NPM := $(shell command -v npm 2>/dev/null)

.PHONY: install sdks demo test check lint bench soak clean

# The demo installs only what running Landed needs (RUN_STAMP); tests, lint and benchmarks add
# the dev extra (STAMP), which also brings ClickHouse's client and chDB's engine.
RUN_STAMP := $(VENV)/.installed-run
# Test worker processes (pytest-xdist): one per core of the 2-core CI machine.
TEST_WORKERS ?= 2

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(RUN_STAMP) $(STAMP)

install: $(STAMP)

$(SDK_STAMP): $(SDKS)/package.json $(SDKS)/package-lock.json
	npm ci --prefix $(SDKS) --ignore-scripts --no-audit --no-fund
	touch $(SDK_STAMP)

sdks: $(SDK_STAMP)

demo: $(RUN_STAMP)
	$(BIN)/landed demo

test: $(STAMP) $(if $(NPM),$(SDK_STAMP))
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# The inner loop: everything but the tests marked slow (soak, durability, demo, fuzzing).
check: $(STAMP) $(if $(NPM),$(SDK_STAMP))
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check app pipelines dashboards tests bench data/sample
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

soak: $(STAMP)
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts $(SDKS)/node_modules
