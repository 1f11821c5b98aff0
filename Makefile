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
	$(BIN)/pytest

# Jupyter Lab on notebooks/, reading the lake of BULKIMPORT_HOME (submitting needs `make run` or a worker).
.PHONY: notebooks
notebooks: install
	$(BIN)/jupyter lab --notebook-dir=notebooks

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
