# Two commands matter (README.md): `make demo` (the main job) and `make test` (the whole suite).
# Both create and reuse .venv in the repository root; installs go through constraints.txt so that
# torch stays on the local CPU build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Dev-only oracle: torchvision's pure-Python model definitions (its compiled ops are never loaded).
TORCHVISION_ORACLE := torchvision==0.29.2

.PHONY: install demo test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile tools/install_data.sh tools/install_browser.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,onnx]"
	$(BIN)/python -m pip install -q --no-deps $(TORCHVISION_ORACLE) || echo "torchvision oracle not installed: its tests will skip"
	sh tools/install_data.sh
	sh tools/install_browser.sh
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cnnkit demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/summary.py
	$(BIN)/python benchmarks/conv_algorithms.py
	$(BIN)/python benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
