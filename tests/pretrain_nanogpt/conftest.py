"""Fixtures for the pretrain_nanogpt environment: its modules, imported from their folders,
a real smoke checkpoint trained once per session, and the export step run as the harness runs
it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.env_modules import import_repo, load_file, run_script, session_fixture, trained

ENV = Path(__file__).resolve().parents[2] / "environments" / "pretrain_nanogpt"
REPO = ENV / "repo"


# config, data, model and train of the baseline repo, and the protected scripts.
repo = session_fixture("repo", lambda: import_repo(REPO, ("config", "data", "model", "train")))
evaluator = session_fixture("evaluator", lambda: load_file(ENV / "evaluate.py", "nanogpt_evaluate"))
prepare = session_fixture(
    "prepare", lambda: load_file(ENV / "prepare_fineweb.py", "nanogpt_prepare")
)


@pytest.fixture(scope="session")
def smoke_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of a real `train.py --smoke` run: ckpt.pt, code/, metrics.jsonl."""
    return trained(ENV, tmp_path_factory.mktemp("smoke") / "output", "--scale", "tiny", "--smoke")


@pytest.fixture(scope="session")
def env_without_heldout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The environment folder as the export step sees it: no held-out text."""
    dst = tmp_path_factory.mktemp("env") / "pretrain_nanogpt"
    shutil.copytree(ENV, dst, ignore=shutil.ignore_patterns("heldout", "__pycache__", "fineweb10B"))
    return dst


def run_export(output: Path, export_dir: Path, env_dir: Path) -> subprocess.CompletedProcess:
    """The harness's export step: `python $EXECUTOR_ENV_DIR/export_model.py`."""
    export_dir.mkdir(parents=True, exist_ok=True)
    return run_script(
        [env_dir / "export_model.py"],
        output.parent,
        EXECUTOR_OUTPUT_DIR=str(output),
        EXECUTOR_EXPORT_DIR=str(export_dir),
        EXECUTOR_ENV_DIR=str(env_dir),
        EXECUTOR_SCALE="tiny",
    )


def export(output: Path, env_dir: Path) -> Path:
    """Run the export step on `output`; the folder holding its graph."""
    export_dir = output.parent / "export"
    proc = run_export(output, export_dir, env_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return export_dir


@pytest.fixture(scope="session")
def smoke_export(smoke_output: Path, env_without_heldout: Path) -> Path:
    """The export step's graph of the smoke checkpoint."""
    return export(smoke_output, env_without_heldout)
