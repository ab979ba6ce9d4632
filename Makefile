# make test: set up everything on a fresh machine, then lint, type-check and test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test unit fuzz soak lint typecheck pytest bench check setup system-deps clean

setup: $(STAMP) system-deps

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,fast]'
	touch $(STAMP)

# The lab needs iproute2 and nftables; the benchmark needs its peers. Installed where missing.
system-deps:
	@bash tests/system-deps.sh lab

test: setup lint typecheck pytest

lint:
	$(BIN)/ruff check wslnet tests examples
	$(BIN)/ruff format --check wslnet tests examples
	$(BIN)/actionlint .github/workflows/*.yml

# Linux and Windows, at the oldest and a new Python: the tests too, since Windows' CI
# job imports them (tests/test_windows_collect.py lints what runs at import).
typecheck:
	$(BIN)/mypy wslnet tests
	$(BIN)/mypy --platform win32 wslnet tests
	$(BIN)/mypy --platform win32 --python-version 3.13 wslnet tests

pytest:
	$(BIN)/pytest $(PYTEST_ARGS)

# The in-process tier alone: no root, no lab, seconds.
unit: setup
	$(BIN)/pytest -m "not lab" $(PYTEST_ARGS)

# Long runs, outside `make test`: the property tests with many examples, and ten minutes
# of hostile traffic against one forwarder in the lab (root).
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -q -p no:timeout tests/test_properties.py

soak: setup
	$(BIN)/python tests/soak.py $(SOAK_ARGS)

# Peers as their users run them, each configuration printed, targets met/missed. Another
# tree in the same rounds: git worktree add /tmp/main HEAD; make bench BENCH_ARGS="--also
# main=/tmp/main". Parts: --tcp-only, --udp-only.
bench: setup
	@bash tests/system-deps.sh bench
	$(BIN)/python tests/bench.py $(BENCH_ARGS)

check: setup
	$(BIN)/wslnet check $(CHECK_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
