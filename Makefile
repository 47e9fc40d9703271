# Shortcuts for scripts/dev.py, which does the work (and needs only Python 3.11+).
PYTHON ?= python3

.PHONY: help run test lint
help:  ## list the tasks
	@$(PYTHON) scripts/dev.py help
run:  ## set up and seed the embedded databases, then serve live events
	@$(PYTHON) scripts/dev.py run
test:  ## run the test suite
	@$(PYTHON) scripts/dev.py test
lint:  ## ruff and mypy
	@$(PYTHON) scripts/dev.py lint
