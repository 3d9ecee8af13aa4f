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

## test: install with test extras and run the whole suite.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check quizapp tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
