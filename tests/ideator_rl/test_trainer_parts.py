"""The parts of the trainer's GPU path that run without a GPU: vLLM choice, GPU split between
the policy and the runs, checkpoint discovery, the GRPO settings, the hub model's prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.ideator_rl.config import TrainIdeatorConfig
from agent.ideator_rl.trainer import (
    execution_gpus,
    grpo_args,
    ideator_prompt,
    last_checkpoint,
    use_vllm,
)
from environments import resolve_environment


def test_vllm_is_used_on_a_gpu_when_installed_and_asked_for_plainly_otherwise() -> None:
    assert use_vllm("auto", cuda=True, installed=True)
    assert not use_vllm("auto", cuda=False, installed=True)
    assert not use_vllm("auto", cuda=True, installed=False)
    assert not use_vllm("off", cuda=True, installed=True)
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        use_vllm("on", cuda=False, installed=True)
    with pytest.raises(ValueError, match="pip install vllm"):
        use_vllm("on", cuda=True, installed=False)


def test_runs_get_every_gpu_but_the_policys() -> None:
    assert execution_gpus(None, [0, 1, 2, 3], policy_gpu=0, scale_gpus=1) == "1,2,3"
    assert execution_gpus(None, [0, 1], policy_gpu=1, scale_gpus=1) == "0"
    assert execution_gpus("0", [0], policy_gpu=0, scale_gpus=1) == "0"  # the user shares it
    assert execution_gpus(None, [], policy_gpu=0, scale_gpus=0) is None  # CPU machine
    with pytest.raises(ValueError, match="give --gpus to share"):
        execution_gpus(None, [0], policy_gpu=0, scale_gpus=1)
    with pytest.raises(ValueError, match="need 8 GPU"):
        execution_gpus(None, list(range(8)), policy_gpu=0, scale_gpus=8)


def test_last_checkpoint_skips_one_a_kill_left_half_written(tmp_path: Path) -> None:
    assert last_checkpoint(tmp_path) is None
    for step, complete in ((2, True), (4, True), (6, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if complete:
            (d / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-4"


@pytest.mark.slow
@pytest.mark.parametrize("group", [8, 64])
def test_grpo_settings_for_the_gpu_path(tmp_path: Path, group: int) -> None:
    cfg = TrainIdeatorConfig(
        model="Qwen/Qwen3-0.6B", group_size=group, steps=30, save_every=10, prompts_per_step=2
    )
    args = grpo_args(cfg, tmp_path, cuda=False, vllm=True)
    assert args.use_vllm and args.vllm_mode == "colocate"
    assert args.vllm_gpu_memory_utilization == 0.3
    assert args.num_generations == group
    assert args.per_device_train_batch_size == 2 * group  # two groups per optimizer step
    assert args.steps_per_generation == 1 and args.gradient_accumulation_steps == 1
    assert args.max_steps == 30 and args.save_steps == 10
    assert args.learning_rate == 1e-5 and args.max_completion_length == 2048
    assert args.report_to in ([], "none", ["none"])  # no trackers unless the user asks


def test_tiny_defaults_and_bad_settings() -> None:
    cfg = TrainIdeatorConfig()
    assert cfg.tiny and cfg.lr == 3e-3 and cfg.completion_tokens == 64
    for bad, message in (
        ({"reward": "best"}, "--reward is one of raw"),
        ({"group_size": 1}, "at least 2"),
        ({"diversity_weight": -1}, "--diversity-weight must be 0 or more"),
        ({"vllm": "maybe"}, "--vllm is one of"),
    ):
        with pytest.raises(ValueError, match=message):
            TrainIdeatorConfig(**bad)  # type: ignore[arg-type]


def test_a_hub_model_is_shown_the_task_and_the_editable_code(toy_env) -> None:
    env = resolve_environment(str(toy_env))
    prompt = ideator_prompt(env, "tiny", "Qwen/Qwen3-0.6B")
    assert "Toy task" in prompt and "LR = 0.01" in prompt and "Idea:" in prompt
    assert "def make_split" not in prompt  # the protected data module stays out
