# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint install clean

$(BIN)/activate: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(BIN)/activate

install: $(BIN)/activate

# Redis (unless REDIS_URL is set), one worker and the dashboard; Ctrl-C stops all.
run: install
	$(BIN)/bulkimport up

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

# The scale-out suites: registry and lake (concurrent writers included) on SQLite and PostgreSQL, the e2e
# flow and the worker-crash test with the registry and lake catalog in PostgreSQL and data in S3 (moto).
# Needs PostgreSQL's server binaries (Debian: apt-get install postgresql); the fixtures start their own.
# The multi-host test (below) also needs root and iproute2 (`ip netns`): in CI it fails without them.
SCALE_OUT_TESTS := tests/test_registry.py tests/test_lake.py tests/test_schema_evolution.py tests/e2e/test_flow.py \
	tests/e2e/test_operations.py::test_a_job_whose_worker_is_killed_is_finished_by_another_worker \
	tests/e2e/test_multi_host.py
.PHONY: test-scale-out
test-scale-out: install
	BULKIMPORT_SCALE_OUT=1 $(BIN)/pytest $(SCALE_OUT_TESTS)

# Worker hosts on one machine: network namespaces (needs root and iproute2) for a services host (Redis,
# PostgreSQL, moto S3) and three worker hosts; twenty imports with one host killed mid-job, then the
# throughput of 1, 2 and 3 hosts (test-artifacts/multi-host-throughput.json). About 5 minutes.
.PHONY: test-multi-host
test-multi-host: install
	BULKIMPORT_SCALE_OUT=1 $(BIN)/pytest tests/e2e/test_multi_host.py -s

# The reliability suites at full size (crashes, Redis restarts, lake contention, disk full, hostile input,
# upload abuse); `make test` runs the short version of each. Figures: docs/reliability.md.
.PHONY: test-reliability
test-reliability: install
	BULKIMPORT_RELIABILITY=full $(BIN)/pytest tests/reliability -s -p no:cacheprovider

# Jupyter Lab on notebooks/, reading the lake of BULKIMPORT_HOME (submitting needs `make run` or a worker).
.PHONY: notebooks
notebooks: install
	$(BIN)/jupyter lab --notebook-dir=notebooks

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
