"""The training loop: a real smoke run, one GRPO update, the config, the saved policy."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.env_modules import run_train
from tests.posttrain_grpo.conftest import ENV


def test_smoke_run_saves_a_policy_and_logs_progress(smoke_output: Path) -> None:
    policy = smoke_output / "policy"
    assert (policy / "model.safetensors").is_file() and (policy / "config.json").is_file()
    info = json.loads((policy / "training.json").read_text())
    assert info["steps_done"] == 2 and info["config"]["group_size"] == 4
    rows = [json.loads(x) for x in (smoke_output / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(0 <= r["train_accuracy"] <= 1 and r["completion_tokens"] > 0 for r in rows)
    assert not (smoke_output / "policy.tmp").exists()


def test_rewards_sum_by_position_and_grading_ignores_them(repo: SimpleNamespace) -> None:
    """An ensemble repeats function names: the total weighs each pair by its position, and
    train_accuracy's grading (answers.py) is the same whatever the reward functions are."""
    texts, refs = ["1 + 2 = 3. \\boxed{3}", "\\boxed{4}", "3"], ["3", "3", "3"]
    fmt, ans = repo.rewards.format_reward, repo.rewards.answer_reward
    funcs = [(ans, 1.0), (fmt, 0.25), (ans, 2.0), (fmt, -0.5)]
    assert repo.train.score(texts, refs, funcs) == [2.75, -0.25, 0.0]
    assert repo.train.score(texts, refs, repo.rewards.reward_functions(0.0, 1.0)) == [1, 0, 0]
    assert list(map(repo.answers.is_correct, texts, refs)) == [True, False, False]
    assert list(map(repo.answers.has_answer, texts)) == [True, True, False]


def test_config_overrides_are_typed_and_checked(repo: SimpleNamespace) -> None:
    cfg = repo.config.config_for("tiny", ["--lr=1e-4", "--normalize_std=false", "--group-size=4"])
    assert cfg.lr == 1e-4 and cfg.normalize_std is False and cfg.group_size == 4
    assert repo.config.config_for("paper").prompts_per_step == 128
    with pytest.raises(SystemExit, match="GRPOConfig field"):
        repo.config.config_for("tiny", ["--learning_rate=1"])
    with pytest.raises(SystemExit, match="takes a int"):
        repo.config.config_for("tiny", ["--steps=many"])
    with pytest.raises(SystemExit, match="unknown scale"):
        repo.config.config_for("huge")


def test_paper_scale_is_the_papers_setting(repo: SimpleNamespace) -> None:
    cfg = repo.config.config_for("paper")
    assert (cfg.model, cfg.dataset, cfg.group_size, cfg.prompts_per_step, cfg.lr, cfg.steps) == (
        "Qwen/Qwen2.5-Math-1.5B",
        "math",
        8,
        128,
        1e-5,
        20,
    )
    assert cfg.dtype == "bfloat16" and cfg.prompt == "math"


@pytest.mark.training
def test_one_update_favours_the_completions_with_positive_advantage(
    repo: SimpleNamespace, base: tuple
) -> None:
    model, tok = base
    model = type(model)(model.config)
    model.load_state_dict(base[0].state_dict())
    cfg = repo.config.config_for("tiny", ["--micro_batch_size=5"])
    sampler = repo.rollout.HFSampler(model, tok, max_new_tokens=30, batch_size=16)
    problems = [
        ("Tom has 23 pens. Tom buys 14 more pens.", "37"),
        ("Ann has 12 cards. Ann buys 7 more cards.", "19"),
        ("Sam has 30 rocks. Sam buys 20 more rocks.", "50"),
    ]
    for seed, (facts, answer) in enumerate(problems * 3):
        # the first sampled group with both right and wrong answers
        prompt = f"Question: {facts} How many does he have now?\nAnswer:"
        torch.manual_seed(seed)
        rollout = sampler.generate([prompt] * 16, temperature=1.0)
        rewards = torch.tensor([repo.rewards.answer_reward(t, answer) for t in rollout.texts])
        if 0 < rewards.sum() < 16:
            break
    assert 0 < rewards.sum() < 16, "a group with signal"
    adv = repo.grpo.group_advantages(rewards, group_size=16)
    r = rollout
    args = (r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask)

    def seq_logp() -> torch.Tensor:
        with torch.no_grad():
            lp = repo.grpo.token_logprobs(model, *args)
        return (lp * rollout.completion_mask).sum(1)

    before = seq_logp()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    stats = repo.train.update(model, None, opt, cfg, rollout, adv, torch.device("cpu"))
    change = seq_logp() - before
    assert change[adv > 0].mean() > 0 > change[adv < 0].mean()
    assert stats["grad_norm"] > 0


@pytest.mark.training
def test_update_with_no_signal_leaves_the_policy_alone(repo: SimpleNamespace, base: tuple) -> None:
    model, tok = base
    cfg = repo.config.config_for("tiny")
    sampler = repo.rollout.HFSampler(model, tok, max_new_tokens=8, batch_size=8)
    rollout = sampler.generate(["Question: 1\nAnswer:"] * 4, temperature=1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    stats = repo.train.update(model, None, opt, cfg, rollout, torch.zeros(4), torch.device("cpu"))
    assert stats["grad_norm"] == 0.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_checkpoint_round_trip(
    repo: SimpleNamespace, evaluator, base: tuple, tmp_path: Path
) -> None:
    model, tok = base
    path = repo.policy.save_policy(model, tok, tmp_path, {"seed": 3})
    assert path == tmp_path / "policy" and json.loads((path / "training.json").read_text()) == {
        "seed": 3
    }
    loaded, eval_tok = evaluator.load_policy(
        path, "base_tiny", evaluator.HERE, "cpu", tmp_path / "staged"
    )
    ids = torch.tensor([tok.encode("Question: Tom has 3 pens.\nAnswer: 3")])
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, loaded(input_ids=ids).logits, atol=1e-6)
    assert eval_tok.encode("Tom has 3") == tok.encode("Tom has 3")


@pytest.mark.training
@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_training_stops_within_its_budget_and_still_saves(tmp_path: Path, clock: str) -> None:
    out = tmp_path / "output"
    proc = run_train(
        ENV,
        out,
        "--scale",
        "tiny",
        "--save_reserve_s=0",
        EXECUTOR_TIME_BUDGET_S="1",
        EXECUTOR_BUDGET_CLOCK=clock,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads((out / "policy" / "training.json").read_text())
    assert info["stopped_by_budget"] is True and info["steps_done"] == 0
    assert info["budget_clock"] == clock
