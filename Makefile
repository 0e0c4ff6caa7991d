# The two commands that matter:
#   make book   set up .venv, fetch/verify the data, execute every notebook (cpu profile), build the HTML book
#   make test   set up .venv and run the tests (including a smoke-profile run of every notebook)
# Set-up is idempotent: a second call installs nothing. It installs the torch pins first (plain pip:
# this machine's disk holds them), then every other dependency from requirements.lock: exact
# versions, each file checked against its sha256 (pip --require-hashes). `make lock` re-resolves
# the lock from pyproject.toml (uv) and regenerates environment.yml from it.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PROFILE ?= cpu

# torch + torchvision pins (installed before the project so pip takes these builds).
ifeq ($(shell uname -m),aarch64)
TORCH_PINS ?= torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
endif

# Offline machines: point THESISLIB_DATA at a folder of the data sets (see README).
# When it is unset and a sibling ../shared/data exists (this project's workplace), use that.
ifeq ($(origin THESISLIB_DATA),undefined)
ifneq ($(wildcard ../shared/data/SHA256SUMS),)
export THESISLIB_DATA := $(abspath ../shared/data)
endif
endif

# The data sets the book reads in the cpu profile.
BOOK_DATA := tao mnist-test10k cifar10-jpeg kodak

.PHONY: setup data book book-smoke check-pages test lint format clean lock

setup: $(VENV)/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

$(VENV)/.torch-installed: | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	touch $@

LOCK := requirements.lock

$(VENV)/.installed: pyproject.toml $(LOCK) $(VENV)/.torch-installed
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Re-resolve requirements.lock after a change to pyproject.toml's dependencies (needs PyPI).
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet "uv==0.13.9"
	$(BIN)/python -m pip freeze --exclude-editable > $(VENV)/freeze.txt
	$(BIN)/python .ci/lock.py --prefer $(VENV)/freeze.txt

data: setup
	@for name in $(BOOK_DATA); do $(BIN)/thesislib data fetch $$name || exit 1; done

book: data
	$(BIN)/thesislib book --profile $(PROFILE)

# The book from smoke-profile runs: what CI builds so that a broken page fails fast.
book-smoke: setup
	$(BIN)/thesislib book --profile smoke

# Open every built page in headless Chromium (Debian's chromium): no JS errors, figures render.
check-pages: setup
	$(BIN)/python .ci/check_pages.py book/_build/html

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check thesislib tests benchmarks .ci notebooks
	$(BIN)/ruff format --check thesislib tests benchmarks .ci

format: setup
	$(BIN)/ruff format thesislib tests benchmarks
	$(BIN)/ruff check --fix thesislib tests benchmarks notebooks

clean:
	rm -rf book/_build runs
