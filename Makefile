# Two commands set everything up on a fresh machine with Python 3.11 and make:
#   make run   - install into .venv and open the dashboard on built-in demo data
#   make test  - install the test tools (and Debian's chromium for browser tests) and run the whole suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO := .data/demo.parquet
PORT ?= 8501

.PHONY: run test bench lint typecheck install install-dev chromium wrk demo-data serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-serve.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@# An editable install leaves the project's own modules uncompiled (and PYTHONDONTWRITEBYTECODE
	@# environments never cache them): compile once, so every `rfm` command starts ~0.1 s sooner.
	$(BIN)/python -m compileall -q rfm pages streamlit_app.py >/dev/null
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(DEMO): | $(VENV)/.installed
	$(BIN)/rfm demo-data --out $(DEMO)

demo-data: $(DEMO)

run: $(VENV)/.installed $(DEMO)
	$(BIN)/rfm dashboard --server.port $(PORT)

serve: $(VENV)/.installed
	$(BIN)/rfm serve --model-dir models/$$(cat models/CURRENT)

# Browser tests drive Debian's chromium; install it when missing (needs root, as on CI).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The server benchmark's load generator (a C client, so latencies are the server's); needs root, as chromium.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing Debian's wrk for the server benchmark"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# Every benchmark (baselines measured in the same run); writes docs/PERFORMANCE.md.
bench: $(VENV)/.installed-dev chromium wrk
	$(BIN)/python benchmarks/run_all.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

# Type-checks rfm/ with the [tool.mypy] settings of pyproject.toml.
typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

test: $(VENV)/.installed-dev chromium lint typecheck
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .data .pytest_cache .ruff_cache .mypy_cache .hypothesis
