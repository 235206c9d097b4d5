"""posttrain_grpo through the executor: the manifest, its knobs, and an idea patch end to end."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from environments import resolve_environment
from environments.manifest import knob_regex
from environments.reward import compute_reward
from tests.conftest import assert_store_consistent
from tests.env_modules import run_idea_tiny, tiny_config
from tests.posttrain_grpo.conftest import ENV


def test_manifest_protects_the_evaluator_and_held_out_data() -> None:
    env = resolve_environment("posttrain_grpo")
    assert set(env.manifest.scales) == {"tiny", "gpu", "paper", "llama3b"}
    protected = {str(p) for p in env.protected_files()}
    for f in (
        "evaluate.py",
        "grader.py",
        "decode.py",
        "problems.py",
        "heldout/gsm8k_test.jsonl",
        "base_tiny/model.safetensors",
        "prompts/tiny.txt",
    ):
        assert f in protected, f
    # Only the evaluate step reads the held-out folder; the tiny scale has no file there.
    assert env.manifest.eval_only == ["heldout"]
    assert env.is_eval_only("heldout/gsm8k_test.jsonl") and not env.is_eval_only("problems.py")
    assert not any(f.startswith("heldout/tiny") for f in protected)
    reward = compute_reward(env.manifest.metric.reward, {env.manifest.metric.name: 0.25})
    assert reward == 0.25, "the reward is the evaluator's accuracy itself"


def test_knobs_edit_the_values_training_uses(repo: SimpleNamespace, tmp_path: Path) -> None:
    env = resolve_environment("posttrain_grpo")
    text = (ENV / "repo" / "config.py").read_text()
    new = {
        "lr": "0.001",
        "group_size": "4",
        "prompts_per_step": "8",
        "clip_range": "0.3",
        "kl_coef": "0.05",
        "temperature": "0.8",
        "steps": "20",
    }
    assert {k.name for k in env.manifest.knobs} == set(new)
    for knob in env.manifest.knobs:
        rx = knob_regex(knob)
        (match,) = list(rx.finditer(text))
        assert match.group(1) == str(knob.default)
        text = text[: match.start(1)] + new[knob.name] + text[match.end(1) :]
    cfg = tiny_config(text, tmp_path, "grpo_config_edited")
    for name, value in new.items():
        assert str(getattr(cfg, name)) == value, name


@pytest.mark.training
def test_idea_patch_runs_end_to_end(cli, run_dir: Path) -> None:
    # --timeout 40 leaves a short training budget: a few GRPO steps, then the full evaluation.
    patch = ENV / "ideas" / "token_level_loss.patch"
    out = run_idea_tiny(cli, "posttrain_grpo", patch, 40, run_dir, wait_s=600)
    assert 'loss_aggregation: str = "token"' in out["diff"]
    m = out["metrics"]
    assert 0 < m["accuracy"] <= 1 and out["reward"] == m["accuracy"]
    assert {
        "f1",
        "precision",
        "format_rate",
        "pass_at_4",
        "consistency",
        "variant_accuracy",
    } <= set(m)
    artifacts = Path(out["artifacts"])
    info = json.loads((artifacts / "output" / "policy" / "training.json").read_text())
    assert info["config"]["loss_aggregation"] == "token" and info["steps_done"] >= 1
    assert (artifacts / "eval" / "completions.jsonl").read_text().count("\n") == 500
    assert_store_consistent(run_dir)
