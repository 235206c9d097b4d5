# Two commands: `make demo` (the main job, offline) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build on a machine that has it; GPU users may set TORCH="torch" to keep their own.
TORCH  ?= torch==2.13.0

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/executor run-idea "Lower the learning rate and train for more steps" \
		--patch tests/toy_env/ideas/more_steps.patch --env tests/toy_env --scale tiny

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) bench/run_idea_overhead.py

clean:
	rm -rf $(VENV) runs .pytest_cache
