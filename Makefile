# Two commands on a fresh machine:  make run  |  make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every package of the test, bench and postgresql extras, pinned with hashes (make lock).
LOCK := requirements.lock
UV_VERSION := 0.13.9
LINT_PATHS := quizapp tests stubs
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test serve lint lock clean

# The pinned packages from the lock file, then quizapp itself (editable, nothing resolved).
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## lock: after changing a dependency in pyproject.toml, pin it (and what it needs) in
##       requirements.lock, keeping every other pin; UPGRADE=1 moves all pins to the newest
##       releases. Commit the lock with the change; make test then installs from it.
lock: $(STAMP)
	$(BIN)/python -c "import uv" 2>/dev/null || $(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/python -m uv pip compile pyproject.toml --extra test --extra bench --generate-hashes \
		--universal --python-version 3.11 --custom-compile-command "make lock" \
		$(if $(filter 1,$(UPGRADE)),--upgrade) --quiet -o $(LOCK)

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

## lint: what CI and the pre-commit hooks run: ruff's lint and format check, and mypy
##       strict on the whole quizapp package (pyproject.toml [tool.mypy]).
lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

## bench: the exam-day benchmark (bench/README.md): a real gunicorn on 127.0.0.1, about
##        3 minutes; results in bench/results/. httpx (the bench extra) comes from the lock.
##        BENCH_ARGS="--students 1000" or "--database postgresql" for the other runs.
.PHONY: bench
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## fault: the fault tests (tests/fault, about 3 minutes, loopback only): kill -9 a
##        gunicorn worker, the whole server, or one of two app servers behind nginx in the
##        middle of an autosave load; nothing acknowledged may be lost. Needs nginx;
##        the PostgreSQL cases run when 127.0.0.1:5432 answers. httpx as for bench.
.PHONY: fault
fault: $(STAMP)
	$(BIN)/python -m pytest tests/fault $(PYTEST_ARGS)
