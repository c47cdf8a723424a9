# The README's two commands: `make study` and `make test`. Both build .venv first (idempotent).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
CORES  ?= 2
STAMP  := $(VENV)/.installed

.PHONY: venv study seeds test lint bench clean dryrun report readme install-profile

venv: $(STAMP)

# torch==2.13.0 first: on CPU machines a local CPU wheel; an unpinned torch would pull CUDA builds.
# Where a torch is already importable (a cluster's CUDA build) it is kept. pip byte-compiles what it
# installs one file at a time (about a minute of the install on 2 cores); compileall does it on
# every core afterwards (its exit status: some packages ship files that are not Python 3, as pip
# ignores them). Compiled here, not at first import: with PYTHONDONTWRITEBYTECODE nothing would be
# cached, and every job would compile torch again.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -qq --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -qq --no-compile torch==2.13.0
	$(PIP) install -qq --no-compile -e ".[test]"
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $(STAMP)

study: venv
	$(VENV)/bin/snakemake --profile profiles/local --cores $(CORES)

# Every model on each seed of config/seeds.yaml, side by side; headline over seeds in results/seeds/.
seeds: venv
	$(VENV)/bin/snakemake --profile profiles/local --cores $(CORES) all_seeds --configfile config/seeds.yaml

dryrun: venv
	$(VENV)/bin/snakemake --profile profiles/local -n

# After `make study`: the README's headline table and thumbnails from results/.
readme: venv
	$(PY) -c "from matgen.pipeline.readme import update_readme; update_readme('results', 'README.md', 'docs/img')"

report: venv
	$(VENV)/bin/snakemake --profile profiles/local --report results/report.html

# Lint first (ruff check + format, snakemake --lint), then the suite.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/snakemake --lint

# On every core (pytest-xdist); whole files to a worker, so a file's shared fixture (the tiny
# workflow run of test_workflow.py, the SLURM cluster) is built once.
test: lint
	$(PY) -m pytest -q -n $(CORES) --dist loadfile

bench: venv
	$(PIP) install -qq -e ".[bench]"
	$(PY) benchmarks/morphology.py
	$(PY) benchmarks/porous_gan.py
	$(PY) benchmarks/stem.py
	$(PY) benchmarks/polysilicon.py
	$(PY) benchmarks/segmentation.py

# So that the literal `snakemake --profile slurm` finds the cluster profile.
install-profile:
	mkdir -p $(HOME)/.config/snakemake/slurm
	cp profiles/slurm/config.yaml $(HOME)/.config/snakemake/slurm/config.yaml

clean:
	rm -rf results .snakemake
