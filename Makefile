# Two commands a user needs: `make run` (train NAF on the default task) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench install clean

$(BIN)/nafrl: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/nafrl

run: $(BIN)/nafrl
	$(BIN)/nafrl train --algo naf --env InvertedPendulum-v5 --steps 15000 --progress-bar

# The tests also run the sweeps' Ray back end on a real local Ray: the optional `ray` extra.
$(VENV)/.ray-extra: pyproject.toml $(BIN)/nafrl
	$(BIN)/python -m pip install -q -e '.[dev,ray]'
	touch $@

test: $(BIN)/nafrl $(VENV)/.ray-extra
	$(BIN)/python -m pytest -n 2 -q

lint: $(BIN)/nafrl
	$(BIN)/ruff check nafrl tests bench
	$(BIN)/ruff format --check nafrl tests bench
	$(BIN)/pyright  # type-checks nafrl/ ([tool.pyright] in pyproject.toml)

bench: $(BIN)/nafrl
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) runs
