# Shortcuts for scripts/dev.py, which does the work (and needs only Python 3.11+).
PYTHON ?= python3

.PHONY: help run test lint
help:  ## list the tasks
	@$(PYTHON) scripts/dev.py help
# Ctrl-C is how `run` ends: the shell outlives the terminal's SIGINT (trap), and the
# server's exit 130 (stopped by Ctrl-C) counts as success, so make adds no error line.
run:  ## set up and seed the embedded databases, then serve live events (Ctrl-C stops)
	@trap : INT; $(PYTHON) scripts/dev.py run || [ $$? -eq 130 ]
test:  ## run the test suite
	@$(PYTHON) scripts/dev.py test
lint:  ## ruff and mypy
	@$(PYTHON) scripts/dev.py lint
