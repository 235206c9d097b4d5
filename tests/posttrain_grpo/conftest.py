"""Fixtures for the posttrain_grpo environment: its modules, imported from their folders, and
a real smoke policy trained once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from tests.env_modules import import_repo, load_file

ENV = Path(__file__).resolve().parents[2] / "environments" / "posttrain_grpo"
REPO = ENV / "repo"
REPO_MODULES = ("config", "rewards", "data", "grpo", "rollout", "policy", "train")


@pytest.fixture(scope="session")
def repo() -> SimpleNamespace:
    """The baseline repo's modules."""
    return import_repo(REPO, REPO_MODULES)


@pytest.fixture(scope="session")
def evaluator() -> ModuleType:
    return load_file(ENV / "evaluate.py", "grpo_evaluate")


@pytest.fixture(scope="session")
def problems() -> ModuleType:
    return load_file(ENV / "problems.py", "grpo_problems")


@pytest.fixture(scope="session")
def base(repo: SimpleNamespace) -> tuple:
    """(model, tokenizer) of the shipped tiny base policy, on CPU."""
    import torch

    os.environ.setdefault("EXECUTOR_ENV_DIR", str(ENV))
    return repo.policy.load_policy("base_tiny", "float32", torch.device("cpu"))


def run_train(out_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "EXECUTOR_OUTPUT_DIR": str(out_dir), "EXECUTOR_ENV_DIR": str(ENV)}
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def smoke_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of a real `train.py --smoke` run: policy/ and metrics.jsonl."""
    out = tmp_path_factory.mktemp("grpo_smoke") / "output"
    proc = run_train(out, "--scale", "tiny", "--smoke")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture
def output_copy(smoke_output: Path, tmp_path: Path) -> Path:
    """A private copy of the smoke output that a test may alter."""
    dst = tmp_path / "output"
    shutil.copytree(smoke_output, dst)
    return dst
