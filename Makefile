# eventpulse: `make demo` sets everything up and runs the pipeline; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The embedding model ships in a Python package: nothing may reach for a model hub.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test bench ui lint format browser

demo: $(VENV)/installed
	$(BIN)/eventpulse demo

# Two pytest-xdist workers, a module at a time each, the longest first (tests/conftest.py).
test: $(VENV)/installed browser
	$(BIN)/pytest -q -n 2 --dist loadscope --no-loadscope-reorder

# The browser test drives Debian's Chromium (never a downloaded browser); best effort: without
# it that one test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "chromium could not be installed: the browser test will be skipped"

bench: $(VENV)/installed
	$(BIN)/python -m benchmarks.run

ui: $(VENV)/installed
	$(BIN)/eventpulse ui

lint: $(VENV)/installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/installed
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

# torch is pinned to 2.13.0 in pyproject.toml: pip takes the local CPU wheel for it.
$(VENV)/installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@
