"""A run's reward comes from the protected evaluator, checked by the harness (see
docs/architecture.md, Run and result)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from environments.manifest import load_environment
from runner.run import RunOutcome, run_candidate, score
from runner.workspace import BaselineRepo
from sandbox import RunStatus, get_sandbox


async def run_toy(
    toy_env: Path, tmp_path: Path, train_py: str | None = None, sandbox: str = "local", **kw
):
    env = load_environment(toy_env)
    ws = BaselineRepo(tmp_path / "runs", env).new_workspace(tmp_path / "ws")
    if train_py is not None:
        (ws.path / "train.py").write_text(train_py)
    return await run_candidate(env, "tiny", ws.path, tmp_path / "art", get_sandbox(sandbox), **kw)


async def test_baseline_run_scores(toy_env, tmp_path) -> None:
    out = await run_toy(toy_env, tmp_path)
    assert out.status is RunStatus.SUCCEEDED, out.reason
    assert 0.3 < out.metrics["val_mse"] < 0.7
    assert out.reward == pytest.approx(1 / (1 + out.metrics["val_mse"]))
    assert set(out.timings) == {"train", "evaluate"}
    assert (out.artifacts / "logs" / "train.stdout").read_text().startswith("trained 100 steps")


async def test_forged_result_from_training_is_ignored(toy_env, tmp_path) -> None:
    # Training tries to write the result itself, next to its outputs and in the eval folder.
    forge = (
        "import json, os, numpy as np\n"
        "out = os.environ['EXECUTOR_OUTPUT_DIR']\n"
        "np.savez(os.path.join(out, 'model.npz'), w=np.zeros(8))\n"
        "for d in (out, os.path.join(os.path.dirname(out), 'eval')):\n"
        "    os.makedirs(d, exist_ok=True)\n"
        "    json.dump({'metrics': {'val_mse': 0.0}}, open(os.path.join(d, 'result.json'), 'w'))\n"
    )
    out = await run_toy(toy_env, tmp_path, forge)
    assert out.status is RunStatus.SUCCEEDED
    assert out.metrics["val_mse"] > 1.0  # the evaluator's own number for zero weights


async def test_tampering_with_the_evaluator_is_flagged(toy_env, tmp_path) -> None:
    """Unisolated, the write lands and the hash check flags the run; under bubblewrap the
    environment is read-only and the write itself fails (the red-team suite covers both)."""
    evil = (
        "import os, numpy as np\n"
        "open(os.path.join(os.environ['EXECUTOR_ENV_DIR'], 'evaluate.py'), 'a').write('#')\n"
        "np.savez(os.path.join(os.environ['EXECUTOR_OUTPUT_DIR'], 'model.npz'), w=np.zeros(8))\n"
    )
    before = (toy_env / "evaluate.py").read_bytes()
    out = await run_toy(toy_env, tmp_path, evil, sandbox="local:isolation=none")
    assert out.status is RunStatus.FLAGGED and "protected" in out.reason
    assert out.reward is None
    (toy_env / "evaluate.py").write_bytes(before)
    out = await run_toy(toy_env, tmp_path / "isolated", evil)
    assert out.status is RunStatus.FAILED and "Read-only file system" in out.reason
    assert (toy_env / "evaluate.py").read_bytes() == before


async def test_evaluator_tampered_before_the_run_is_flagged(toy_env, tmp_path) -> None:
    """An earlier run (or a hand edit) changed the evaluator: the run directory's pin catches it."""
    env = load_environment(toy_env)
    pinned = BaselineRepo(tmp_path / "runs", env).pinned_env_hashes
    (toy_env / "evaluate.py").write_text((toy_env / "evaluate.py").read_text() + "\n# edited\n")
    # A new BaselineRepo object reads the pin back from the run directory.
    again = BaselineRepo(tmp_path / "runs", load_environment(toy_env)).pinned_env_hashes
    assert again == pinned
    out = await run_toy(toy_env, tmp_path, expected_env=again)
    assert out.status is RunStatus.FLAGGED and "evaluate.py" in out.reason
    assert "--run-dir" in out.reason and "train" not in out.timings, "flagged before training"


async def test_scale_and_budget_reach_the_steps(toy_env, tmp_path) -> None:
    text = (
        (toy_env / "env.toml")
        .read_text()
        .replace("timeout = 60\n", "timeout = 60\ntime_budget = 50\nmetric_range = [0.0, 0.01]\n")
    )
    (toy_env / "env.toml").write_text(text)
    spy = (
        "import json, os, numpy as np\n"
        "out = os.environ['EXECUTOR_OUTPUT_DIR']\n"
        "keys = ('EXECUTOR_SCALE', 'EXECUTOR_TIME_BUDGET_S')\n"
        "seen = {k: os.environ.get(k) for k in keys}\n"
        "json.dump(seen, open(os.path.join(out, 'env.json'), 'w'))\n"
        "np.savez(os.path.join(out, 'model.npz'), w=np.zeros(8))\n"
    )
    out = await run_toy(toy_env, tmp_path, spy, timeout_s=30)
    seen = json.loads((out.artifacts / "output" / "env.json").read_text())
    # --timeout 30 keeps the scale's 10 s margin: the budget shrinks to 20 s.
    assert seen == {"EXECUTOR_SCALE": "tiny", "EXECUTOR_TIME_BUDGET_S": "20"}
    # The scale's plausible range replaces the metric's.
    assert out.status is RunStatus.FLAGGED and "[0, 0.01]" in out.reason


async def test_missing_artifact_fails_in_the_evaluator(toy_env, tmp_path) -> None:
    out = await run_toy(toy_env, tmp_path, "print('forgot to save')\n")
    assert out.status is RunStatus.FAILED and out.reason.startswith("evaluator:")
    assert "model.npz" in out.reason


async def test_training_failure_keeps_the_log_tail(toy_env, tmp_path) -> None:
    out = await run_toy(toy_env, tmp_path, "raise ValueError('shape mismatch')\n")
    assert out.status is RunStatus.FAILED and "shape mismatch" in out.reason


def _score(toy_env: Path, tmp_path: Path, result: object) -> object:
    env = load_environment(toy_env)
    path = tmp_path / "result.json"
    path.write_text(result if isinstance(result, str) else json.dumps(result))
    return score(env, path, lambda status, reason, **kw: RunOutcome(status, reason, tmp_path, **kw))


@pytest.mark.parametrize(
    ("result", "status", "needle"),
    [
        ({"metrics": {"val_mse": 0.5}}, RunStatus.SUCCEEDED, None),
        ({"metrics": {"val_mse": -1.0}}, RunStatus.FLAGGED, "plausible range"),
        ({"metrics": {"val_mse": 5000.0}}, RunStatus.FLAGGED, "plausible range"),
        ('{"metrics": {"val_mse": NaN}}', RunStatus.FLAGGED, "nan"),
        (
            {"metrics": {"val_mse": 0.5}, "flags": ["peeks at the future"]},
            RunStatus.FLAGGED,
            "peeks",
        ),
        ({"metrics": {"loss": 0.5}}, RunStatus.FAILED, "did not report 'val_mse'"),
        ("not json", RunStatus.FAILED, "no valid result.json"),
        ({"metrics": {"val_mse": "abc"}}, RunStatus.FAILED, "no valid result.json"),
    ],
)
def test_score_checks_plausibility(toy_env, tmp_path, result, status, needle) -> None:
    out = _score(toy_env, tmp_path, result)
    assert out.status is status, out.reason
    if needle:
        assert needle in out.reason
        assert out.reward is None
    else:
        assert out.reward == pytest.approx(1 / 1.5)
