"""pretrain_nanogpt through the executor: an idea patch runs end to end, tampering is caught,
and the manifest's knobs point at real hyper-parameters."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from environments import resolve_environment
from environments.manifest import knob_regex
from runner.run import run_candidate
from runner.workspace import BaselineRepo
from sandbox import RunStatus, get_sandbox
from tests.conftest import assert_store_consistent
from tests.env_modules import run_idea_tiny, tiny_config
from tests.pretrain_nanogpt.conftest import ENV


@pytest.mark.training
def test_idea_patch_runs_end_to_end(cli, run_dir: Path) -> None:
    # --timeout 25 leaves a 10-second training budget (the scale keeps its 15 s margin).
    patch = ENV / "ideas" / "higher_lr.patch"
    out = run_idea_tiny(cli, "pretrain_nanogpt", patch, 25, run_dir, wait_s=400)
    assert "lr: float = 0.004" in out["diff"]
    val = out["metrics"]["val_loss"]
    # Below a uniform guess over 256 bytes: it trained (how far depends on the machine's speed).
    assert 1.0 < val < math.log(256) and out["reward"] == pytest.approx(1 / val)
    assert [a["phase"] for a in out["attempts"]] == [None], "the smoke check passed first time"
    artifacts = Path(out["artifacts"])
    assert (artifacts / "output" / "ckpt.pt").is_file()
    assert (artifacts / "output" / "code" / "config.py").read_text().count("0.004") == 1
    assert_store_consistent(run_dir)


async def test_tampered_evaluator_is_flagged_before_training(tmp_path: Path) -> None:
    env_dir = tmp_path / "pretrain_nanogpt"
    shutil.copytree(ENV, env_dir, ignore=shutil.ignore_patterns("__pycache__", "fineweb10B"))
    env = resolve_environment(str(env_dir))
    baseline = BaselineRepo(tmp_path / "runs", env)
    pinned = baseline.pinned_env_hashes
    evaluate = env_dir / "evaluate.py"
    text = evaluate.read_text()
    assert "TOLERANCE = 1e-3" in text
    evaluate.write_text(text.replace("TOLERANCE = 1e-3", "TOLERANCE = 1e3"))
    ws = baseline.new_workspace(tmp_path / "ws")
    out = await run_candidate(
        env, "tiny", ws.path, tmp_path / "art", get_sandbox("local"), expected_env=pinned
    )
    assert out.status is RunStatus.FLAGGED and "evaluate.py" in (out.reason or "")
    assert out.reward is None and "train" not in out.timings


def test_knobs_edit_the_values_training_uses(repo: SimpleNamespace, tmp_path: Path) -> None:
    env = resolve_environment("pretrain_nanogpt")
    config_py = (ENV / "repo" / "config.py").read_text()
    new = {"lr": "0.003", "warmup_steps": "5", "schedule": "cosine", "n_embd": "192"}
    for knob in env.manifest.knobs:
        if knob.name in new:
            config_py = knob_regex(knob).sub(
                lambda m, v=new[knob.name]: m.group(0).replace(m.group(1), v), config_py
            )
    cfg = tiny_config(config_py, tmp_path, "edited_config")
    assert (cfg.lr, cfg.warmup_steps, cfg.schedule, cfg.n_embd) == (0.003, 5, "cosine", 192)
