# urbangis: the two commands of the README, and a few for developers.
# `make demo`: install what is missing, start the embedded database, load the demo
#              municipality and serve it at http://127.0.0.1:5000 (foreground).
# `make test`: install what is missing and run the whole test suite on a real PostGIS.

URBANGIS := .venv/bin/urbangis
PYTEST_WORKERS ?= 2

.PHONY: setup demo test lint bench clean-db

setup:
	@bash scripts/setup

demo: setup
	$(URBANGIS) db start
	$(URBANGIS) db upgrade
	$(URBANGIS) demo load --skip-if-loaded
	$(URBANGIS) serve

test: setup
	.venv/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

bench: setup
	for script in benchmarks/bench_*.py; do .venv/bin/python $$script; done

clean-db:
	-$(URBANGIS) db stop
	rm -rf var/postgres var/test
