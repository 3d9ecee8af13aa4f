# Two commands on a fresh machine:  make run  |  make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test serve lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: install, migrate the SQLite database in instance/, import question_bank/,
##      create demo accounts (printed), and serve on http://127.0.0.1:5000 with gunicorn.
run: $(STAMP)
	$(BIN)/quizapp demo
	@echo ""
	@echo "Serving on http://$(HOST):$(PORT)  (Ctrl-C to stop)"
	$(BIN)/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) 'quizapp:create_app()'

## test: install with test extras and run the whole test suite: pytest (unit, integration,
##       functional, fuzz, browser), then the fault tests (make fault). FAULT=0 leaves
##       the fault tests out (the PostgreSQL run in .ci/run: they cover it themselves).
FAULT ?= 1
SKIPS := $(CURDIR)/.test-skips
test: $(STAMP)
	@rm -f $(SKIPS)
	QUIZAPP_SKIP_REPORT=$(SKIPS) $(BIN)/python -m pytest $(PYTEST_ARGS)
ifeq ($(FAULT),1)
	QUIZAPP_SKIP_REPORT=$(SKIPS) $(MAKE) --no-print-directory fault
endif
	@$(BIN)/python -m tests.skip_report $(SKIPS)

lint: $(STAMP)
	$(BIN)/ruff check quizapp tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

## bench: the exam-day benchmark (bench/README.md): a real gunicorn on 127.0.0.1, about
##        3 minutes; results in bench/results/. httpx is a bench-only dependency.
##        BENCH_ARGS="--students 1000" or "--database postgresql" for the other runs.
.PHONY: bench
bench: $(STAMP)
	$(BIN)/python -c "import httpx" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## fault: the fault tests (tests/fault, about 3 minutes, loopback only): kill -9 a
##        gunicorn worker, the whole server, or one of two app servers behind nginx in the
##        middle of an autosave load; nothing acknowledged may be lost. Needs nginx;
##        the PostgreSQL cases run when 127.0.0.1:5432 answers. httpx as for bench.
.PHONY: fault
fault: $(STAMP)
	$(BIN)/python -c "import httpx" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m pytest tests/fault $(PYTEST_ARGS)
