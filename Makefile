# radiocloud: `make demo` and `make test` are the two commands of the README.
# They need only Python 3.11+, pip and make: uv is installed with pip if it is missing.
PYTHON ?= python3
UV := $(PYTHON) -m uv
RUN := $(UV) run --no-sync
DEMO_DIR ?= build/demo

.PHONY: setup demo test lint format bench clean

setup:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv>=0.5"
	$(UV) sync --all-packages --locked --quiet --compile-bytecode

demo: setup
	@mkdir -p $(DEMO_DIR)
	$(RUN) rc-simulate $(DEMO_DIR)/eso137.ms --antennas 16 --channels 64 --integrations 120 \
		--integration-time 8s --sky eso137 --seed 7 --overwrite
	$(RUN) rc-run recipes/eso137.yml ms=$(DEMO_DIR)/eso137.ms prefix=$(DEMO_DIR)/out/eso137 \
		init-model.path=$(DEMO_DIR)/eso137.truth/skymodel.txt init-model.brightest=1000 \
		truth-gains=$(DEMO_DIR)/eso137.truth/gains.zarr --run-dir $(DEMO_DIR)/run

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .

# containers/ensure-podman installs podman for tests/containers where it can (root on Debian);
# it never fails the test command (without podman those tests skip, saying why)
test: lint
	@containers/ensure-podman
	$(RUN) pytest

format: setup
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

bench: setup
	$(RUN) python benchmarks/simulate.py

clean:
	rm -rf build .venv .pytest_cache .ruff_cache
