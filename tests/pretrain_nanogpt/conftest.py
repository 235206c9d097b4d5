"""Fixtures for the pretrain_nanogpt environment: its modules, imported from their folders,
and a real smoke checkpoint trained once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from tests.env_modules import import_repo, load_file

ENV = Path(__file__).resolve().parents[2] / "environments" / "pretrain_nanogpt"
REPO = ENV / "repo"


@pytest.fixture(scope="session")
def repo() -> SimpleNamespace:
    """config, data, model and train of the baseline repo."""
    return import_repo(REPO, ("config", "data", "model", "train"))


@pytest.fixture(scope="session")
def evaluator() -> ModuleType:
    return load_file(ENV / "evaluate.py", "nanogpt_evaluate")


@pytest.fixture(scope="session")
def prepare() -> ModuleType:
    return load_file(ENV / "prepare_fineweb.py", "nanogpt_prepare")


def run_train(out_dir: Path, *args: str, cwd: Path = REPO, **env: str) -> None:
    full_env = {
        **os.environ,
        "EXECUTOR_OUTPUT_DIR": str(out_dir),
        "EXECUTOR_ENV_DIR": str(ENV),
        **env,
    }
    proc = subprocess.run(
        [sys.executable, "train.py", *args], cwd=cwd, env=full_env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="session")
def smoke_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of a real `train.py --smoke` run: ckpt.pt, code/, metrics.jsonl."""
    out = tmp_path_factory.mktemp("smoke") / "output"
    run_train(out, "--scale", "tiny", "--smoke")
    return out


@pytest.fixture
def output_copy(smoke_output: Path, tmp_path: Path) -> Path:
    """A private copy of the smoke output that a test may alter."""
    dst = tmp_path / "output"
    shutil.copytree(smoke_output, dst)
    return dst
