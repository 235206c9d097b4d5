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

# The main job offline: measure the baseline, then run an idea against it (local sandbox,
# tiny scale). Until the research environments land, this uses the toy environment.
DEMO_ENV ?= tests/toy_env
demo: $(VENV)/.installed
	$(VENV)/bin/executor baseline --env $(DEMO_ENV) --scale tiny --seeds 3
	$(VENV)/bin/executor run-idea --patch $(DEMO_ENV)/ideas/more_steps.patch \
		--env $(DEMO_ENV) --scale tiny

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) bench/run_idea_overhead.py

clean:
	rm -rf $(VENV) runs .pytest_cache
