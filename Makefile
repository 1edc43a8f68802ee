# The README's commands. Each target installs what it needs into .venv first (CPU torch pinned).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KGREC := HF_HUB_OFFLINE=1 $(VENV)/bin/kgrec
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints/cpu.txt

.PHONY: install demo test ml-100k bench clean

$(VENV)/.installed: pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: an open range would pull a multi-GB CUDA build
	$(PIP_INSTALL) torch==2.13.0
	$(PIP_INSTALL) -e '.[test]'
	touch $@

install: $(VENV)/.installed

## The main job on the bundled demo data: build the graph, train, evaluate, recommend.
## (--force: running it again replaces the demo's own graph and run, atomically.)
demo: install
	$(KGREC) build --spec graphs/demo.toml --out graphs/demo --force
	$(KGREC) train --graph graphs/demo --config experiments/demo.toml --run runs/demo --force
	$(KGREC) recommend --run runs/demo --users all --k 10 --out runs/demo/recommendations.csv --show 3

## The test suite.
test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q --durations=20

## MovieLens-100K with its Freebase KG (fetched from the RecBole 1.2.1 wheel into data/cache).
ml-100k: install
	$(KGREC) data fetch ml-100k
	$(KGREC) build --spec graphs/ml-100k.toml --out graphs/ml-100k --force
	$(KGREC) train --graph graphs/ml-100k --config experiments/ml-100k-best.toml --run runs/ml-100k --force
	$(KGREC) recommend --run runs/ml-100k --users all --k 50 --out runs/ml-100k/recommendations.csv
	$(PY) experiments/score_recommendations.py --recs runs/ml-100k/recommendations.csv --test runs/ml-100k/split/test.csv

## The benchmark suite: baselines and ablations on ml-100k, 3 seeds -> experiments/results/ml-100k/
bench: install
	$(KGREC) bench experiments/ml-100k.toml --jobs 2

clean:
	rm -rf $(VENV) graphs/demo runs
