# Thin wrappers. `make repro` and `make test` are all a fresh machine needs.
VENV ?= .venv
PIP_VERSION := 26.3
PY := $(VENV)/bin/python
export DVC_NO_ANALYTICS := 1
export BENTOML_DO_NOT_TRACK := true
export PYTHONUNBUFFERED := 1
# dvc.yaml runs `python`: the venv's, whether or not it is activated.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install lock repro test test-fast lint serve bench contact-sheet

# Exact versions from constraints.txt: the synthetic data, the tests and dvc.lock depend on them
# (a newer OpenCV draws other scenes). Refresh it on purpose with `make lock`.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet pip==$(PIP_VERSION)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

lock:  ## re-resolve the newest versions pyproject.toml allows into constraints.txt (then rerun tests and `dvc repro`)
	rm -rf .cache/lock-venv && python3 -m venv .cache/lock-venv
	.cache/lock-venv/bin/python -m pip install --quiet pip==$(PIP_VERSION)
	.cache/lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	.cache/lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^barseg' > constraints.txt
	rm -rf .cache/lock-venv

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
