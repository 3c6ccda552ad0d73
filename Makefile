# Two commands matter (README.md): `make demo` (the main job) and `make test` (the whole suite).
# Both create and reuse .venv in the repository root; installs go through constraints.txt so that
# torch stays on the local CPU build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Dev-only oracles and peers (torchvision's pure-Python model definitions, timm, grad-cam and its
# ttach) go with --no-deps into their own folder, never into the environment's site-packages:
# torchvision's compiled ops cannot load on the CPU build of torch, so `import torchvision` would
# fail for a user. Only the tests put ORACLES on sys.path (tests/oracles.py, tests/conftest.py).
ORACLES := $(VENV)/oracles
ORACLE_STAMP := $(ORACLES)/.installed
ORACLE_PACKAGES := torchvision==0.29.2 timm==1.0.31 grad-cam==1.5.7 ttach==0.0.3

.PHONY: install oracles demo test lint format bench clean

install: $(STAMP) $(ORACLE_STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile tools/install_data.sh tools/install_browser.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,onnx]"
	@# earlier install steps put the oracles into site-packages, where `import torchvision` fails
	$(BIN)/python -c "import torchvision" >/dev/null 2>&1 || $(BIN)/python -m pip uninstall -q -y torchvision timm grad-cam ttach >/dev/null 2>&1 || true
	sh tools/install_data.sh
	sh tools/install_browser.sh
	touch $(STAMP)

oracles: $(ORACLE_STAMP)

# Installed into a fresh folder and moved into place, so that a failed download leaves the
# previous oracles intact; without a network the tests that need them skip.
$(ORACLE_STAMP): Makefile | $(STAMP)
	rm -rf $(ORACLES).new
	$(BIN)/python -m pip install -q --no-deps --target $(ORACLES).new $(ORACLE_PACKAGES) \
		&& rm -rf $(ORACLES) && mv $(ORACLES).new $(ORACLES) \
		|| echo "oracles not installed: the tests that compare against them will skip"
	rm -rf $(ORACLES).new
	mkdir -p $(ORACLES) && touch $(ORACLE_STAMP)

demo: $(STAMP)
	$(BIN)/cnnkit demo

test: $(STAMP) $(ORACLE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
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
