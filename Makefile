# vbert: `make demo` runs the main job, `make test` the whole test suite; both set up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done

.PHONY: setup demo test bench bench-quick lint format clean

setup: $(STAMP)

# Idempotent: re-runs only when pyproject.toml or this file changes. torch is pinned to the
# CPU build that pip finds on disk; installing it first keeps any resolver from picking CUDA.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'  # every optional extra, so all integration tests run
	$(PY) -m vbert.embedders.default
	@# The leaderboard tests drive Debian's Chromium (never a browser downloaded by a test tool).
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	touch $(STAMP)

demo: setup
	$(VENV)/bin/vbert demo

test: setup
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q

bench: setup
	$(PY) -m benchmarks

# The regression guard (about 3 minutes): the performance targets' ratios, each with its target.
bench-quick: setup
	$(PY) -m benchmarks --quick --threads 1 --clock process \
		--sections merge_cost,efficiency,pipeline,prefix,memory --output benchmarks/results/quick

lint: setup
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: setup
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
