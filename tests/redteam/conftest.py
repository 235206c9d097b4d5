"""The red-team suite's harness: hostile candidates run the way search runs ideas.

A candidate is a set of files written over a fresh workspace of the environment's baseline;
it runs with the run directory's pinned hashes and evaluation secret (`run_idea`'s path,
minus the LLM), in every sandbox kind that can run here:

- `local`: the local sandbox, isolated by bubblewrap;
- `docker`: a real engine, with the harness's Python mounted read-only (`host_python`), so
  the real environments run without an image registry.

Every test records (attack, sandbox, status, reason) with `record`; with
EXECUTOR_REDTEAM_REPORT=FILE set, the rows are appended there as JSON lines (the table of
the closing note is built from them).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from environments import Environment, load_environment
from runner.run import RunOutcome, run_candidate
from runner.workspace import BaselineRepo
from sandbox import get_sandbox
from tests.conftest import docker_unavailable_reason

ROOT = Path(__file__).resolve().parents[2]
SANDBOXES = {"local": "local", "docker": "docker:host_python=true"}


@pytest.fixture(params=list(SANDBOXES))
def sandbox(request: pytest.FixtureRequest) -> str:
    """Each red-team test runs once per sandbox kind (Docker where an engine runs)."""
    return _checked(str(request.param))


# Attacks on an evaluator (not on the sandbox) cost a minute or more per run, and their
# defence lives in the evaluator, the same in every sandbox: they run in the local sandbox,
# and in Docker too when this is set (for the full attack x sandbox table), which keeps `make test`
# inside its time budget.
FULL = os.environ.get("EXECUTOR_REDTEAM_FULL") == "1"


@pytest.fixture(params=["local", "docker"] if FULL else ["local"])
def evaluator_sandbox(request: pytest.FixtureRequest) -> str:
    """The sandboxes a slow evaluator attack runs in (see FULL)."""
    return _checked(str(request.param))


def _checked(kind: str) -> str:
    if kind == "docker" and (why := docker_unavailable_reason()):
        pytest.skip(why)
    if kind == "local":
        from sandbox.local import isolation_problem

        if why := isolation_problem():
            pytest.skip(f"the local sandbox cannot isolate here: {why}")
    return kind


@dataclass
class Attack:
    """One hostile candidate's run: what the harness said, and where everything lies."""

    env: Environment
    run_dir: Path
    workspace: Path
    artifacts: Path
    outcome: RunOutcome
    secret: str

    def text_everywhere(self) -> bytes:
        """Every byte a step could have written into the run's folders (for canary checks)."""
        blobs = []
        for folder in (self.artifacts, self.workspace):
            for p in folder.rglob("*") if folder.exists() else []:
                if p.is_file() and not p.is_symlink():
                    blobs.append(p.read_bytes())
        return b"\n".join(blobs)

    def probe(self) -> dict[str, str]:
        """What the candidate wrote into output/probe.json about its attempts."""
        path = self.artifacts / "output" / "probe.json"
        return json.loads(path.read_text()) if path.exists() else {}


def private_env(src: Path, tmp_path: Path, canary: bool = True) -> Path:
    """A copy of an environment, with a random canary in each eval-only folder."""
    dst = tmp_path / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if canary:
        token = f"CANARY-{uuid.uuid4().hex}"
        for hidden in load_environment(dst).eval_only_paths():
            if hidden.is_dir():
                (hidden / "canary.txt").write_text(token + "\n")
    return dst


def canary_of(env_dir: Path) -> str:
    for hidden in load_environment(env_dir).eval_only_paths():
        if (hidden / "canary.txt").exists():
            return (hidden / "canary.txt").read_text().strip()
    raise AssertionError("no canary in this environment copy")


async def run_attack(
    env_dir: Path,
    files: dict[str, str],
    tmp_path: Path,
    sandbox: str,
    *,
    scale: str = "tiny",
    timeout_s: float | None = None,
    seed: int = 0,
) -> Attack:
    """Write `files` over a fresh workspace of the baseline and run it like search does."""
    env = load_environment(env_dir)
    run_dir = tmp_path / "runs"
    baseline = BaselineRepo(run_dir, env)
    ws = baseline.new_workspace(run_dir / "workspaces" / f"attack-{uuid.uuid4().hex[:8]}")
    for rel, text in files.items():
        (ws.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws.path / rel).write_text(text)
    artifacts = run_dir / "artifacts" / f"run-{uuid.uuid4().hex[:8]}"
    outcome = await run_candidate(
        env,
        scale,
        ws.path,
        artifacts,
        get_sandbox(SANDBOXES.get(sandbox, sandbox)),
        seed=seed,
        timeout_s=timeout_s,
        expected_env=baseline.pinned_env_hashes,
        eval_secret=baseline.eval_secret,
    )
    return Attack(env, run_dir, ws.path, artifacts, outcome, baseline.eval_secret)


async def recorded_attack(
    attack: str, env_root: Path, files: dict[str, str], tmp_path: Path, sandbox: str, **kw: Any
) -> Attack:
    """`run_attack` (its keywords in `kw`) on a private copy of the environment at `env_root`,
    with a canary only if `canary=True`, recorded as `attack` (in the row of `label=`, else of
    `sandbox`; with the reason `no_effect=` for a run that says none)."""
    env_dir = private_env(env_root, tmp_path, canary=kw.pop("canary", False))
    no_effect, label = kw.pop("no_effect", None), kw.pop("label", sandbox)
    a = await run_attack(env_dir, files, tmp_path, sandbox, **kw)
    record(attack, label, str(a.outcome.status), a.outcome.reason or no_effect)
    return a


def record(attack: str, sandbox: str, status: str, reason: str | None) -> None:
    """One row of the red-team table (appended to EXECUTOR_REDTEAM_REPORT when set)."""
    path = os.environ.get("EXECUTOR_REDTEAM_REPORT")
    if not path:
        return
    first = (reason or "").strip().splitlines()[0] if reason else ""
    row = {"attack": attack, "sandbox": sandbox, "status": status, "reason": first[:240]}
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
