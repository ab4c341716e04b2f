# `make run`: set up, simulate the demo sessions, run the whole workflow, build the report.
# `make test`: lint and the whole test suite (what CI runs).
# `make run-ca1`: the project examples/rat_ca1 (the real rat CA1 recording in
#   ../shared/data/real, decoders only; about 40 minutes) -> examples/rat_ca1/results/report.html
# `make test-cluster`: the workflow on a real SLURM cluster on localhost (root, Debian):
#   installs slurm-wlm and munge when absent, starts its own daemons, stops them by pid.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# Rules call `neuroseq ...`: the venv's commands come first on PATH.
export PATH := $(BIN):$(PATH)

.PHONY: install run run-ca1 report test test-cluster lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

run: install
	snakemake
	snakemake --report results/report.html
	@echo "report: results/report.html"

run-ca1: install
	snakemake -s Snakefile -d examples/rat_ca1
	snakemake -s Snakefile -d examples/rat_ca1 --report results/report.html
	@echo "report: examples/rat_ca1/results/report.html"

report: install
	snakemake --report results/report.html

lint: install
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks
	snakefmt --check Snakefile workflow

test: lint
	pytest

test-cluster: install
	@if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then \
	  echo "installing Debian's slurm-wlm and munge (kept installed; nothing is started)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; \
	fi
	$(BIN)/python -m pip install --quiet -e ".[cluster]"
	NEUROSEQ_TEST_CLUSTER=1 pytest tests/cluster -m cluster

clean:
	rm -rf results logs .snakemake data/demo data/remote-cache
