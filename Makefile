# make demo: synthetic data -> notebooks 01-06 headless into runs/demo/
#            (explore, pretransform, train, evaluate, gallery, synthesize)
# make test: lint, notebook pairing check, unit + notebook tests
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := runs/demo
DEMO_EPOCHS ?= 16
NB_RUN = $(BIN)/papermill --no-progress-bar --log-level WARNING

.PHONY: install demo demo-spread test lint notebooks repository bench clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

# Absolute paths, so $SATGAN_WORKSPACE (where notebooks resolve relative paths) cannot split the demo.
# satgan synth rewrites the data (same bytes, new times; --overwrite: a demo folder of a version before the
# Software tag is its own too), so the demo rebuilds its own arrays (OVERWRITE)
# and trains afresh (a demo run of an earlier version may have another architecture).
# The demo trains the quick preset as it is (projected_seg, the alignment loss, noise, L1 10), 16
# epochs to stay within 12 minutes (each costs 1.5x an epoch without the alignment loss), and
# draws each tile as its city (CONDITION city): better in every city (docs/RESULTS.md, "City
# conditioning").
DEMO_ARRAYS := $(CURDIR)/$(DEMO)/pretransformed/grid2-286
DEMO_CKPT := $(CURDIR)/$(DEMO)/training/quick/checkpoints/last.pt
# quick's alignment loss reads the images with a frozen Lite1 segmenter, and evaluate's two judges are
# two more (docs/evaluation.md, "Judges"); each is trained once on the demo's train split, in fewer steps
# than on real data (the synthetic roofs are easier to find), and saved beside the demo.
DEMO_SEG := $(CURDIR)/$(DEMO)/segmenters
DEMO_SEG_STEPS ?= 200
demo_segmenter = $(BIN)/satgan segmenter $(DEMO_ARRAYS) --steps $(DEMO_SEG_STEPS) --out $(DEMO_SEG)/$(1).pt $(2)
# $(call demo_train,NOTEBOOKS,RUN_DIR,SEED) and $(call demo_evaluate,NOTEBOOKS,CHECKPOINT,OUT): the demo's
# training and evaluation, shared by `demo` (seed 0) and `demo-spread` (seeds 1 and 2).
demo_train = $(NB_RUN) notebooks/03_train.ipynb $(1)/notebooks/03_train.ipynb \
	-p DATA_DIR $(DEMO_ARRAYS) -p RUN_DIR $(2) -p PRESET quick -p EPOCHS $(DEMO_EPOCHS) \
	-y 'OVERRIDES: ["train.seed=$(3)", "loss.segmenter=$(DEMO_SEG)/alignment.pt"]' -p CONDITION city \
	-p RESUME never -p OVERWRITE True -p TENSORBOARD False
demo_evaluate = $(NB_RUN) notebooks/04_evaluate.ipynb $(1)/notebooks/04_evaluate.ipynb \
	-p DATA_DIR $(DEMO_ARRAYS) -y 'CHECKPOINTS: ["quick=$(2)"]' \
	-p SEGMENTER $(DEMO_SEG)/judge.pt -p SEGMENTER_2 $(DEMO_SEG)/judge-2.pt \
	-p REPORT $(3)/report.json -p OUT_DIR $(3)/generated
demo: $(STAMP)
	mkdir -p $(DEMO)/notebooks
	$(BIN)/satgan synth $(DEMO)/data --size 1000 --per-city 16 --workers 2 --overwrite
	$(NB_RUN) notebooks/01_explore_dataset.ipynb $(DEMO)/notebooks/01_explore_dataset.ipynb \
		-p DATA_DIR $(CURDIR)/$(DEMO)/data -p MAX_PAIRS_PER_CITY 6
	$(NB_RUN) notebooks/02_pretransform.ipynb $(DEMO)/notebooks/02_pretransform.ipynb \
		-p DATA_DIR $(CURDIR)/$(DEMO)/data -p OUT_DIR $(DEMO_ARRAYS) -p GRID 2 -p OVERWRITE True
	$(call demo_segmenter,alignment,--architecture lite1 --width 32 --seed 7)
	$(call demo_segmenter,judge,)
	$(call demo_segmenter,judge-2,--architecture dilated --seed 1)
	$(call demo_train,$(DEMO),$(CURDIR)/$(DEMO)/training/quick,0)
	$(call demo_evaluate,$(DEMO),$(DEMO_CKPT),$(CURDIR)/$(DEMO)/evaluation)
	rm -rf $(DEMO)/gallery  # the demo's own; a gallery replaces only files it lists as its own, older ones none
	$(NB_RUN) notebooks/05_gallery.ipynb $(DEMO)/notebooks/05_gallery.ipynb \
		-p DATA_DIR $(DEMO_ARRAYS) -y 'CHECKPOINTS: ["quick=$(DEMO_CKPT)"]' -p OUT_DIR $(CURDIR)/$(DEMO)/gallery \
		-p SEGMENTER $(DEMO_SEG)/judge.pt
	$(NB_RUN) notebooks/06_synthesize.ipynb $(DEMO)/notebooks/06_synthesize.ipynb \
		-p CHECKPOINT $(DEMO_CKPT) -p REAL_DIR $(DEMO_ARRAYS) -p OUT_DIR $(CURDIR)/$(DEMO)/synthetic \
		-p METHOD procedural -p SOURCE all -p COUNT 15 -p SIZE 1000 -p OVERWRITE True \
		-y 'FRACTIONS: [0.1, 0.25]' -y 'SHARES: [0.5]' -p SEEDS 2 -p STEPS 60 -p SEG_CROP 64
	@echo "demo done in $(DEMO)/: notebooks/ (executed), training/quick/checkpoints/, evaluation/report.json, gallery/gallery.html, synthetic/segbench/report.md"

# How much the demo's figures vary: the same training with seeds 1 and 2 beside make demo's seed 0,
# every figure as median [min, max] (the README's demo table). make -j2 demo-spread trains both at once.
# (one file target, so make -j2 runs a missing demo once, not once per seed)
$(DEMO)/evaluation/report.json:
	$(MAKE) demo

# One thread per seed unless OMP_NUM_THREADS says otherwise: two 2-thread torch jobs on 2 cores
# ran 5-10x slower than one (make -j2 demo-spread is the usual call).
demo-seed%: export OMP_NUM_THREADS ?= 1
demo-seed%: $(STAMP) $(DEMO)/evaluation/report.json
	mkdir -p $(DEMO)/seed$*/notebooks
	$(call demo_train,$(DEMO)/seed$*,$(CURDIR)/$(DEMO)/seed$*/training,$*)
	$(call demo_evaluate,$(DEMO)/seed$*,$(CURDIR)/$(DEMO)/seed$*/training/checkpoints/last.pt,$(CURDIR)/$(DEMO)/seed$*/evaluation)

demo-spread: demo-seed1 demo-seed2
	$(BIN)/python benchmarks/demo_spread.py $(DEMO)/evaluation/report.json $(DEMO)/seed1/evaluation/report.json \
		$(DEMO)/seed2/evaluation/report.json

lint: $(STAMP)
	$(BIN)/ruff check satgan tests benchmarks docs notebooks/*.py

# The FID Inception is installed here, so its tests must run, not skip.
test: lint
	SATGAN_REQUIRE_INCEPTION=1 $(BIN)/python -m pytest -q

# Regenerate the .ipynb files from their jupytext .py sources, without outputs.
notebooks: $(STAMP)
	$(BIN)/jupytext --to ipynb notebooks/*.py
	$(BIN)/nbstripout notebooks/*.ipynb

# A fork: make repository URL=https://github.com/OWNER/NAME points pyproject.toml, every
# notebook's Colab setup cell and the README's badges at it.
repository: $(STAMP)
	$(BIN)/python -m satgan.colab "$(URL)"
	$(MAKE) notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_generate.py

clean:
	rm -rf runs/demo .pytest_cache .ruff_cache
