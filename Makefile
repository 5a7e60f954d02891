# ProxyWhirl Metrics: the two commands of the README quickstart, and a few for developers.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test venv system lint typecheck schemas lock bench clean

demo: venv ## Simulated fleet -> in-process pipeline -> embedded ClickHouse, live summary
	$(PY) -m stream_app.cli demo $(ARGS)

test: venv system ## Lint, type-check and run the whole test suite with coverage
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest --cov --cov-report=term $(PYTEST_ARGS)

venv:
	@scripts/bootstrap-python.sh

system:
	@scripts/bootstrap-system.sh

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

schemas: venv ## Regenerate the JSON Schemas under schemas/jsonschema
	$(PY) -m schemas.generate

lock: ## Re-resolve requirements.lock from pyproject.toml (needs network)
	rm -rf .lockenv && python3 -m venv .lockenv
	.lockenv/bin/pip install --quiet -e '.[dev,proxywhirl,server,kafka,http]'
	{ head -n 2 requirements.lock; .lockenv/bin/pip freeze --exclude-editable | grep -v -E '^(pip|setuptools|wheel)=='; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lockenv

bench: venv system ## The benchmarks and their peers in one run: a table, docs/benchmarks.md and .png (ARGS=--quick)
	@scripts/bootstrap-bench.sh
	$(PY) -m benchmarks.run_all $(ARGS)

clean:
	rm -rf $(VENV) .venv-quix .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage .coverage.*
