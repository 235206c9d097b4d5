"""Importing an environment's files in tests: the protected scripts by path, and a baseline
repo's modules without leaving them in sys.modules (environments share module names such as
`config` and `train`); and running its scripts as the harness's steps run them."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest


def load_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def import_repo(repo: Path, names: tuple[str, ...]) -> SimpleNamespace:
    """`names` imported from the `repo` folder, as the repo's own code imports them."""
    saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    sys.path.insert(0, str(repo))
    try:
        mods = {n: importlib.import_module(n) for n in names}
    finally:
        sys.path.remove(str(repo))
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved)
    return SimpleNamespace(**mods)


def session_fixture(name: str, make: Callable[[], Any]) -> Any:
    """A session fixture called `name` whose value is `make()`: an environment's conftest
    declares each module it loads once for all its tests in one line."""

    def fixture() -> Any:
        return make()

    return pytest.fixture(scope="session", name=name)(fixture)


def run_script(
    args: list[str | Path], cwd: Path | None = None, timeout: float = 300, **variables: str | None
) -> subprocess.CompletedProcess[str]:
    """`python ARGS` with `variables` set over this process's environment (None unsets one)."""
    env = {**os.environ, **variables}
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env={k: v for k, v in env.items() if v is not None},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_train(
    env_dir: Path, out_dir: Path, *args: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    """The environment's train.py as the train step runs it: in its repo, writing `out_dir`."""
    return run_script(
        ["train.py", *args],
        env_dir / "repo",
        EXECUTOR_OUTPUT_DIR=str(out_dir),
        EXECUTOR_ENV_DIR=str(env_dir),
        **variables,
    )


def trained(env_dir: Path, out_dir: Path, *args: str, **variables: str) -> Path:
    """`out_dir` after a train.py run that must succeed."""
    proc = run_train(env_dir, out_dir, *args, **variables)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out_dir


def tiny_config(config_py: str, tmp_path: Path, name: str) -> Any:
    """The tiny scale's config from a baseline repo's config.py whose text is `config_py`."""
    edited = tmp_path / f"{name}.py"
    edited.write_text(config_py)
    return load_file(edited, name).config_for("tiny")


def run_idea_tiny(
    cli: Callable[..., Any], env: str, patch: Path, timeout_s: int, run_dir: Path, wait_s: float
) -> dict[str, Any]:
    """`executor run-idea --json` of an environment's idea patch at its tiny scale, which must
    succeed unflagged; its JSON."""
    res = cli(
        "run-idea",
        "--patch",
        patch,
        "--env",
        env,
        "--scale",
        "tiny",
        "--timeout",
        str(timeout_s),
        "--run-dir",
        run_dir,
        "--json",
        timeout=wait_s,
    )
    assert res.rc == 0, res
    out: dict[str, Any] = res.json
    assert out["status"] == "succeeded" and out["flags"] == []
    return out
