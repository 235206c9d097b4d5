"""Fixtures for the posttrain_grpo environment: its modules, imported from their folders, and
a real smoke policy trained once per session."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.env_modules import import_repo, load_file, session_fixture, trained

ENV = Path(__file__).resolve().parents[2] / "environments" / "posttrain_grpo"
REPO = ENV / "repo"
REPO_MODULES = ("config", "answers", "rewards", "data", "grpo", "rollout", "policy", "train")


# The baseline repo's modules, and the protected scripts.
repo = session_fixture("repo", lambda: import_repo(REPO, REPO_MODULES))
evaluator = session_fixture("evaluator", lambda: load_file(ENV / "evaluate.py", "grpo_evaluate"))
problems = session_fixture("problems", lambda: load_file(ENV / "problems.py", "grpo_problems"))


@pytest.fixture(scope="session")
def base(repo: SimpleNamespace) -> tuple:
    """(model, tokenizer) of the shipped tiny base policy, on CPU."""
    import torch

    os.environ.setdefault("EXECUTOR_ENV_DIR", str(ENV))
    return repo.policy.load_policy("base_tiny", "float32", torch.device("cpu"))


@pytest.fixture(scope="session")
def smoke_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of a real `train.py --smoke` run: policy/ and metrics.jsonl."""
    out = tmp_path_factory.mktemp("grpo_smoke") / "output"
    return trained(ENV, out, "--scale", "tiny", "--smoke")
