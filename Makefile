# Two commands on a fresh machine with only Python 3.10+:
#   make lab    set everything up and open the course in JupyterLab
#   make test   set everything up and run the whole test suite (what CI runs)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ptcourse-installed

.PHONY: setup lab test exercises links benchmark prefetch doctor clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "The course needs Python 3.10 or newer; found " + sys.version.split()[0] + ". Run: make PYTHON=python3.12 ...")'
	$(PYTHON) -m venv $(VENV) || { echo "Could not create a virtual environment: install the venv module (e.g. apt install python3-venv)"; exit 1; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[lab,test]"
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the course with its test tools

lab: setup  ## open the course in JupyterLab
	$(BIN)/jupyter lab notebooks/00_setup.ipynb $(if $(filter 0,$(shell id -u)),--allow-root)

test: setup  ## run the unit tests and every notebook (fast profile, offline)
	$(BIN)/python -m pytest

exercises: setup  ## regenerate exercises/ from solutions/
	$(BIN)/python scripts/make_exercises.py

links: setup  ## rewrite the Colab / Binder links from pyproject.toml (retarget: REPO=https://github.com/you/fork BRANCH=main)
	$(BIN)/python scripts/sync_links.py $(if $(REPO),--repo $(REPO)) $(if $(BRANCH),--branch $(BRANCH))

prefetch: setup  ## download and verify every dataset and pretrained model, e.g. before a class
	$(BIN)/python -m ptcourse prefetch

doctor: setup  ## check this machine: versions, device, caches, network, profile, run-time estimates
	$(BIN)/python -m ptcourse doctor

benchmark: setup  ## compare fit() with a hand-written loop
	$(BIN)/python benchmarks/training_loop.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
