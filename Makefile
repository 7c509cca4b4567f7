# The two commands of the README: `make quickstart` (the main job) and `make test`.
.PHONY: quickstart test setup bench

setup:
	@scripts/setup.sh

quickstart: setup
	.venv/bin/corral quickstart

test: setup
	@scripts/ensure-test-servers.sh
	.venv/bin/python -m pytest tests

bench: setup
	.venv/bin/python bench/run.py
	.venv/bin/python bench/hadoop.py
	.venv/bin/python bench/data.py
	.venv/bin/python bench/hosts.py
	.venv/bin/python bench/elastic.py
