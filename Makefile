# make demo: synthetic data -> notebooks 01-03 headless into runs/demo/ (explore, pretransform, train)
# make test: lint, notebook pairing check, unit + notebook tests
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := runs/demo
NB_RUN = $(BIN)/papermill --no-progress-bar --log-level WARNING

.PHONY: install demo test lint notebooks bench clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

# Absolute paths, so $SATGAN_WORKSPACE (where notebooks resolve relative paths) cannot split the demo.
demo: $(STAMP)
	mkdir -p $(DEMO)/notebooks
	$(BIN)/satgan synth $(DEMO)/data --size 1000 --per-city 8 --workers 2
	$(NB_RUN) notebooks/01_explore_dataset.ipynb $(DEMO)/notebooks/01_explore_dataset.ipynb \
		-p DATA_DIR $(CURDIR)/$(DEMO)/data -p MAX_PAIRS_PER_CITY 6
	$(NB_RUN) notebooks/02_pretransform.ipynb $(DEMO)/notebooks/02_pretransform.ipynb \
		-p DATA_DIR $(CURDIR)/$(DEMO)/data -p OUT_DIR $(CURDIR)/$(DEMO)/pretransformed/grid2-286 -p GRID 2
	$(NB_RUN) notebooks/03_train.ipynb $(DEMO)/notebooks/03_train.ipynb \
		-p DATA_DIR $(CURDIR)/$(DEMO)/pretransformed/grid2-286 -p RUN_DIR $(CURDIR)/$(DEMO)/training/quick \
		-p PRESET quick -p EPOCHS 15 -p TENSORBOARD False
	@echo "demo done: notebooks in $(DEMO)/notebooks, arrays in $(DEMO)/pretransformed, run in $(DEMO)/training"

lint: $(STAMP)
	$(BIN)/ruff check satgan tests benchmarks docs notebooks/*.py

test: lint
	$(BIN)/python -m pytest -q

# Regenerate the .ipynb files from their jupytext .py sources, without outputs.
notebooks: $(STAMP)
	$(BIN)/jupytext --to ipynb notebooks/*.py
	$(BIN)/nbstripout notebooks/*.ipynb

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_data.py

clean:
	rm -rf runs/demo .pytest_cache .ruff_cache
