# `make run`: set up, simulate the demo sessions, run the whole workflow, build the report.
# `make test`: lint and the whole test suite (what CI runs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# Rules call `neuroseq ...`: the venv's commands come first on PATH.
export PATH := $(BIN):$(PATH)

.PHONY: install run report test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

run: install
	snakemake
	snakemake --report results/report.html
	@echo "report: results/report.html"

report: install
	snakemake --report results/report.html

lint: install
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks
	snakefmt --check Snakefile workflow

test: lint
	pytest

clean:
	rm -rf results logs .snakemake data/demo
