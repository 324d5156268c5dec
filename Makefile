# Two commands do all set-up on a fresh machine:
#   make quickstart   simulated data -> features -> pre-training -> fine-tuning -> scoring
#   make test         the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: quickstart test venv clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,offline]'
	touch $(STAMP)

venv: $(STAMP)

quickstart: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) scripts/quickstart.py

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
