# The two commands of the README: `make demo` (set up + run the main job) and `make test`
# (set up + run every test). Both work on a fresh machine with Python 3.11, pip and apt.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime install (editable): the light contract first, then gobot with its built-in plugins.
$(VENV)/.runtime: $(BIN)/python pyproject.toml hookspecs/pyproject.toml
	$(BIN)/pip install --quiet --disable-pip-version-check -e ./hookspecs -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

## demo: paper trading on the bundled synthetic data, 50 cycles on a simulated clock.
demo: $(VENV)/.runtime
	$(BIN)/gobot start --fresh

## test: every test, with everything it needs installed first.
test: $(VENV)/.dev
	$(BIN)/python -m pytest -q

## bench: performance figures (not part of the tests).
bench: $(VENV)/.dev
	$(BIN)/python bench/cli_startup.py

clean:
	rm -rf $(VENV) gobot_state .pytest_cache
