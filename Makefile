# Thin wrappers. `make repro` and `make test` are all a fresh machine needs.
VENV ?= .venv
PIP_VERSION := 26.3
PY := $(VENV)/bin/python
export DVC_NO_ANALYTICS := 1
export BENTOML_DO_NOT_TRACK := true
export PYTHONUNBUFFERED := 1
# dvc.yaml runs `python`: the venv's, whether or not it is activated.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install lock repro test test-fast lint serve serve-released bench load compare contact-sheet

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

serve-released: install  ## package the released weights (no training) and serve them on http://127.0.0.1:3000
	$(PY) tools/package_weights.py --out models/released
	$(VENV)/bin/bentoml serve $$($(PY) -c 'import json; print(json.load(open("models/released/bento.json"))["tag"])') --host 127.0.0.1 --port 3000

bench: install  ## speed figures: decoding on the real sets
	$(PY) benchmarks/decode.py

compare: install  ## our pipeline and its peers (own venvs in .cache/peers), then robustness to corruptions; needs models/model.onnx
	$(PY) benchmarks/compare.py --out metrics/compare.json
	$(PY) benchmarks/robustness.py --out metrics/robustness.json --chart docs/robustness.png

load: install  ## the packaged Bento under 16 clients for 60 s, real photos and bad inputs, with and without batching
	$(PY) -m benchmarks.load --clients 16 --seconds 60 --out metrics/load.json

contact-sheet: install  ## docs/synthetic_contact_sheet.png from data/synthetic
	$(PY) tools/contact_sheet.py data/synthetic docs/synthetic_contact_sheet.png
