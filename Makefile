# `make demo` (the main job, offline), `make test` (the whole suite, what CI runs) and
# `make test-fast` (lint, and the tests that need no training, Docker or long runs: 40 s on
# 2 idle cores).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build on a machine that has it; GPU users may set TORCH="torch" to keep their own.
TORCH  ?= torch==2.13.0

.PHONY: demo demo-idea demo-rewards demo-ideator test test-fast lint bench gpu-check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The main job offline: a hyper-parameter search (Optuna TPE over the manifest's knobs) on
# pretrain_nanogpt at tiny scale, two runs at a time (one core each): 2 baseline seeds, 2
# epochs of 4 ideas screened on seed 0, then the best idea and the baseline confirmed on seeds
# 1000 and 1001 and the confirmation split; training cut to 30 CPU-s (--timeout 45: the tiny
# scale counts CPU-seconds and keeps a 15 CPU-s margin); then the HTML report. 6 minutes on 2
# idle cores.
#   make demo DEMO_SCREEN="--screen 0.25 --promote 0.25"   short looks first, the best promoted
#     (at this 30 CPU-s budget the ~25 s of validation and evaluation per run outweigh what a
#     short look saves; screening pays at the scale's own budget)
#   make demo DEMO_FLAGS=--controls         add the control arms (the unchanged baseline ...)
# One idea against a measured baseline instead:
#   make demo-idea DEMO_ENV=tests/toy_env DEMO_IDEA=tests/toy_env/ideas/more_steps.patch
DEMO_ENV    ?= pretrain_nanogpt
DEMO_IDEA   ?= environments/pretrain_nanogpt/ideas/higher_lr.patch
DEMO_DIR    ?= runs/demo
DEMO_SCREEN ?=
DEMO_FLAGS  ?=
demo: $(VENV)/.installed
	$(VENV)/bin/executor search --env $(DEMO_ENV) --scale tiny --ideator hparam --epochs 2 \
	    --ideas-per-epoch 4 $(DEMO_SCREEN) --baseline-seeds 2 --rerun-top 1 --rerun-seeds 2 \
	    --timeout 45 --slots 2 $(DEMO_FLAGS) --run-dir $(DEMO_DIR)
	@echo "report: $$($(VENV)/bin/executor report $(DEMO_DIR))"

demo-idea: $(VENV)/.installed
	$(VENV)/bin/executor baseline --env $(DEMO_ENV) --scale tiny --seeds 3
	$(VENV)/bin/executor run-idea --patch $(DEMO_IDEA) --env $(DEMO_ENV) --scale tiny

# Reward-function search offline (--focus rewards) on posttrain_grpo at tiny scale, two runs at
# a time: two rounds of three reward ideas replayed from a file, every one vetted by
# check_rewards.py before training, the top two combined into an ensemble, the controls (the
# base rewards, format-only, correctness-blind noise, a random subset), then the finalists,
# controls and baseline confirmed on seeds 1000 and 1001; training cut to 40 CPU-s (--timeout
# 60). Then the HTML report with its "Reward search" section.
demo-rewards: $(VENV)/.installed
	$(VENV)/bin/executor search --env posttrain_grpo --scale tiny --focus rewards \
	    --ideator replay:environments/posttrain_grpo/ideas/reward_search.jsonl --epochs 2 \
	    --ideas-per-epoch 3 --ensembles 2 --controls --baseline-seeds 2 --screen-seeds 1 \
	    --rerun-top 2 --rerun-seeds 2 --timeout 60 --slots 2 --run-dir runs/demo-rewards
	@echo "report: $$($(VENV)/bin/executor report runs/demo-rewards)"

# Ideator RL offline: GRPO + LoRA on a tiny ideator built here, every idea run for real on the
# toy environment; then the report with the collapse instruments. About 2 minutes.
demo-ideator: $(VENV)/.installed
	$(VENV)/bin/executor train-ideator --env tests/toy_env --steps 60 --group-size 8 --slots 2 \
	    --save-every 20 --run-dir runs/demo-ideator
	@echo "report: $$($(VENV)/bin/executor report runs/demo-ideator)"

# The Docker sandbox tests need an engine and the base image, the report tests Chromium: the
# script installs and starts them where it can (root, apt-get), and says why not where not.
test: $(VENV)/.installed lint
	$(VENV)/bin/mypy
	scripts/test_deps.sh
	$(PY) -m pytest -q

# The tiers are pyproject's pytest markers; scripts/test_tiers.py counts them and lists the
# fast tier's slowest tests (what to mark when this grows past its minute).
test-fast: $(VENV)/.installed lint
	$(PY) -m pytest -q -m "not training and not docker and not slow"

# Style, formatting and the layers of docs/architecture.md (import-linter, pyproject.toml).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# NANOGPT_REF: karpathy/nanoGPT's model.py, checked out outside this repository.
bench: $(VENV)/.installed
	$(PY) bench/run_idea_overhead.py
	scripts/docker_engine.sh
	$(PY) bench/sandbox_and_scheduler.py
	$(PY) bench/grpo_step_time.py
	$(PY) bench/ideator_rl_collapse.py
	@if [ -n "$(NANOGPT_REF)" ]; then $(PY) bench/nanogpt_throughput.py --reference $(NANOGPT_REF); \
	else echo "skipping bench/nanogpt_throughput.py: set NANOGPT_REF=/path/to/nanoGPT/model.py"; fi

# GPU acceptance on one CUDA GPU, offline (about 7 minutes): each environment's GPU path on
# local data and a local model; nanoGPT tokens/s and MFU, GRPO step time and rollout tokens/s
# in runs/gpu_check.json. It needs only torch with CUDA, transformers and rich, so it runs
# with the venv's Python when there is one and installs nothing (the machine may be offline).
# The same logic on the CPU at tiny shapes: $(PY) bench/gpu_check.py --device cpu --tiny
GPU_PY := $(if $(wildcard $(PY)),$(PY),$(PYTHON))
gpu-check:
	$(GPU_PY) bench/gpu_check.py --out runs/gpu_check.json

clean:
	rm -rf $(VENV) runs .pytest_cache
