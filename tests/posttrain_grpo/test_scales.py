"""The gpu and paper scales' code paths, run here on what this machine has: the bundled GSM8K
with its perturbations, the math prompt, hub-or-local model resolution, bf16 and gradient
checkpointing on the tiny policy. (Hub downloads and vLLM cannot run here.)"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.posttrain_grpo.conftest import ENV


@pytest.fixture(autouse=True)
def _env_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXECUTOR_ENV_DIR", str(ENV))


def test_gsm8k_training_problems_are_bundled(repo: SimpleNamespace) -> None:
    problems = repo.data.load_problems("gsm8k")
    assert len(problems) == 7473
    assert problems[0]["answer"] == "72" and "Natalia" in problems[0]["question"]
    assert all("," not in p["answer"] and p["answer"] for p in problems)
    assert repo.data.gsm8k_answer("so 1,234 in all\n#### 1,234") == "1234"


@pytest.mark.slow
def test_gsm8k_held_out_set_has_variants_perturbed_from_the_secret(evaluator) -> None:
    gpu = evaluator.SCALES["gpu"]

    def held_out(secret: str) -> list[dict]:
        """Both splits' problems, in the test set's order."""
        splits = [evaluator.load_problems(gpu, ENV, secret, s) for s in ("screen", "confirm")]
        return sorted(splits[0] + splits[1], key=lambda p: p["id"])

    problems = held_out("5e" * 32)
    assert len(problems) == 1319 and problems[0]["answer"] == "18"
    kinds = {k for p in problems for k in p["variants"]}
    assert kinds == {"rename", "reorder", "words", "distractor", "notation"}
    again = held_out("5e" * 32)
    assert again == problems, "one secret, one set of variants: every arm of a run dir alike"
    other = held_out("a7" * 32)
    assert [p["question"] for p in other] == [p["question"] for p in problems]

    def renamed(ps: list[dict]) -> list[str | None]:
        return [p["variants"].get("rename") for p in ps]

    # Another run dir's secret renames most problems otherwise: none can be precomputed.
    differ = sum(a != b for a, b in zip(renamed(problems), renamed(other), strict=True))
    assert differ > 0.8 * sum(r is not None for r in renamed(problems))
    # --check cannot see heldout/: it draws a few public problems from the train split.
    check = evaluator.load_problems(dataclasses.replace(gpu, limit=4), ENV, None)
    assert [p["answer"] for p in check] == ["72", "10", "5", "42"]


def test_math_prompt_asks_for_a_boxed_answer(repo: SimpleNamespace) -> None:
    template = repo.data.prompt_template("math")
    prompt = template.replace("{question}", "What is 2+2?")
    assert prompt.endswith("Assistant: <think>") and "What is 2+2?" in prompt
    assert "\\boxed{}" in template
    with pytest.raises(SystemExit, match="no prompt template"):
        repo.data.prompt_template("chat")


def test_unknown_dataset_says_what_exists(repo: SimpleNamespace) -> None:
    with pytest.raises(SystemExit, match="tiny, gsm8k or math"):
        repo.data.load_problems("svamp")


def test_model_names_resolve_to_the_environment_then_the_hub(
    repo: SimpleNamespace, tmp_path: Path
) -> None:
    assert repo.policy.resolve("base_tiny") == str(ENV / "base_tiny")
    assert repo.policy.resolve("Qwen/Qwen2.5-Math-1.5B") == "Qwen/Qwen2.5-Math-1.5B"
    (tmp_path / "config.json").write_text("{}")
    assert repo.policy.resolve(str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize("scale", ["tiny", "gpu", "paper", "llama3b"])
def test_training_and_evaluator_agree_on_each_scale(
    repo: SimpleNamespace, evaluator, scale: str
) -> None:
    """The evaluator scores with the base policy's tokenizer and the training prompt: a
    preset that trains one model or prompt and evaluates another would score nonsense."""
    cfg, ev = repo.config.config_for(scale), evaluator.SCALES[scale]
    assert ev.tokenizer == cfg.model and ev.prompt == cfg.prompt
    assert ev.max_new_tokens >= cfg.max_new_tokens, "the evaluator lets answers run as long"
    held_out = {"tiny": "tiny", "gsm8k": "gsm8k", "math": "math500"}[cfg.dataset]
    assert ev.problems == held_out, "held-out problems come from the training distribution"


@pytest.mark.training
def test_a_bf16_checkpointed_policy_takes_a_step(repo: SimpleNamespace) -> None:
    """The GPU scales' settings (bf16 weights, gradient checkpointing) on the tiny policy."""
    model, tok = repo.policy.load_policy("base_tiny", "bfloat16", torch.device("cpu"), True)
    assert next(model.parameters()).dtype == torch.bfloat16 and model.is_gradient_checkpointing
    cfg = repo.config.config_for("tiny", ["--dtype=bfloat16", "--gradient_checkpointing=true"])
    sampler = repo.train.make_sampler(cfg, model, tok, seed=0)
    assert isinstance(sampler, repo.rollout.HFSampler), "no vLLM here: transformers sampling"
    prompts = [
        repo.data.prompt_template("tiny").format(
            question="Tom has 3 pens. Tom buys 4 more pens. How many pens does Tom have now?"
        )
    ] * 4
    rollout = sampler.generate(prompts, temperature=1.0)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    stats = repo.train.update(
        model, None, opt, cfg, rollout, torch.tensor([1.0, -1.0, 0.5, -0.5]), torch.device("cpu")
    )
    assert stats["grad_norm"] > 0 and torch.isfinite(torch.tensor(stats["grad_norm"]))
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_asking_for_vllm_without_it_says_how_to_get_it(repo: SimpleNamespace, base: tuple) -> None:
    model, tok = base
    cfg = repo.config.config_for("tiny", ["--rollout_backend=vllm"])
    with pytest.raises(SystemExit, match="pip install vllm"):
        repo.train.make_sampler(cfg, model, tok, seed=0)
    with pytest.raises(SystemExit, match="auto, hf or vllm"):
        repo.train.make_sampler(
            repo.config.config_for("tiny", ["--rollout_backend=tgi"]), model, tok, 0
        )
    assert os.environ["EXECUTOR_ENV_DIR"] == str(ENV)
