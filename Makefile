# Thin wrappers. `make repro` and `make test` are all a fresh machine needs.
VENV ?= .venv
PY := $(VENV)/bin/python
export DVC_NO_ANALYTICS := 1
export BENTOML_DO_NOT_TRACK := true
export PYTHONUNBUFFERED := 1
# dvc.yaml runs `python`: the venv's, whether or not it is activated.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install repro test test-fast lint serve bench contact-sheet

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

repro: install  ## build everything from params.yaml
	$(VENV)/bin/dvc repro

test: install  ## the whole suite, slow tests included (what CI runs)
	$(VENV)/bin/pytest

test-fast: install
	$(VENV)/bin/pytest -m "not slow"

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

serve: install  ## serve the Bento built by `make repro` on http://127.0.0.1:3000
	$(VENV)/bin/bentoml serve $$($(PY) -c 'import json; print(json.load(open("models/bento.json"))["tag"])') --host 127.0.0.1 --port 3000

bench: install  ## speed figures: ONNX Runtime vs PyTorch, decoding, the service under 8 clients
	$(PY) benchmarks/decode.py
	$(PY) benchmarks/serve.py --clients 8 --seconds 30

contact-sheet: install  ## docs/synthetic_contact_sheet.png from data/synthetic
	$(PY) tools/contact_sheet.py data/synthetic docs/synthetic_contact_sheet.png
