"""The protected evaluator: metrics from completions, what it refuses to load, and that
nothing training writes changes its result."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.posttrain_grpo.conftest import ENV


def _c(text: str) -> dict:
    return {"text": text, "tokens": len(text.split())}


def test_precision_recall_f1_and_format_rate(evaluator) -> None:
    problems = [{"answer": a, "question": "q", "variants": {}} for a in ("4", "10", "7", "1/2")]
    greedy = [_c("2+2=4. \\boxed{4}"), _c("\\boxed{11}"), _c("I do not know"), _c("\\boxed{0.5}")]
    m = evaluator.score(problems, greedy, {}, [], k=0)
    assert m["accuracy"] == m["recall"] == 0.5
    assert m["precision"] == pytest.approx(2 / 3) and m["format_rate"] == 0.75
    assert m["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert "pass_at_4" not in m and "consistency" not in m


def test_abstaining_everywhere_scores_zero_without_dividing_by_zero(evaluator) -> None:
    problems = [{"answer": "1", "question": "q", "variants": {}}] * 3
    m = evaluator.score(problems, [_c("no idea")] * 3, {}, [], k=0)
    assert m["accuracy"] == m["precision"] == m["f1"] == m["format_rate"] == 0.0


def test_pass_at_k_and_robustness(evaluator) -> None:
    problems = [{"answer": str(a), "question": "q", "variants": {}} for a in (1, 2, 3)]
    greedy = [_c("\\boxed{1}"), _c("\\boxed{2}"), _c("\\boxed{0}")]
    samples = [[_c("\\boxed{9}"), _c("\\boxed{1}")], [_c("\\boxed{9}")] * 2, [_c("\\boxed{3}")] * 2]
    variants = {
        "words": ([0, 1, 2], [_c("\\boxed{1}"), _c("\\boxed{5}"), _c("\\boxed{3}")]),
        "rename": ([0, 2], [_c("\\boxed{1}"), _c("\\boxed{3}")]),
    }
    m = evaluator.score(problems, greedy, variants, samples, k=2)
    assert m["pass_at_2"] == pytest.approx(2 / 3)
    assert m["accuracy_words"] == pytest.approx(2 / 3) and m["accuracy_rename"] == 1.0
    assert m["variant_accuracy"] == pytest.approx(4 / 5)
    # problem 0: right everywhere; 1: wrong on words; 2: wrong on the original
    assert m["consistency"] == pytest.approx(1 / 3)


@pytest.fixture
def small_tiny_scale(evaluator, monkeypatch: pytest.MonkeyPatch) -> None:
    small = dataclasses.replace(evaluator.SCALES["tiny"], limit=24, k=2)
    monkeypatch.setitem(evaluator.SCALES, "tiny", small)


def test_evaluator_ignores_everything_training_writes(
    evaluator, output_copy: Path, small_tiny_scale: None
) -> None:
    honest = evaluator.evaluate(output_copy, ENV, "tiny", "cpu")
    assert set(honest["metrics"]) >= {
        "accuracy",
        "f1",
        "pass_at_2",
        "consistency",
        "accuracy_words",
    }
    # Training claims a perfect score every way it can.
    (output_copy / "metrics.jsonl").write_text(
        json.dumps({"accuracy": 1.0, "dev_accuracy": 1.0}) + "\n"
    )
    (output_copy / "result.json").write_text(json.dumps({"metrics": {"accuracy": 1.0}}))
    policy = output_copy / "policy"
    (policy / "training.json").write_text(json.dumps({"accuracy": 1.0}))
    (policy / "eval_results.json").write_text(json.dumps({"accuracy": 1.0}))
    # and ships a tokenizer of its own, with a template that would leak the answer
    cfg = json.loads((policy / "tokenizer_config.json").read_text())
    cfg["chat_template"] = "{{ 'The answer is \\\\boxed{42}' }}"
    (policy / "tokenizer_config.json").write_text(json.dumps(cfg))
    (policy / "tokenizer.json").write_text("{}")
    tampered = evaluator.evaluate(output_copy, ENV, "tiny", "cpu")
    assert tampered["metrics"] == honest["metrics"]


def test_evaluator_refuses_checkpoints_that_run_code(evaluator, output_copy: Path) -> None:
    policy = output_copy / "policy"
    config = json.loads((policy / "config.json").read_text())
    (policy / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "x.Y"}}))
    with pytest.raises(SystemExit, match="custom code"):
        evaluator.check_checkpoint(policy)
    (policy / "config.json").write_text(json.dumps({**config, "model_type": "my_model"}))
    with pytest.raises(SystemExit, match="model_type"):
        evaluator.check_checkpoint(policy)
    (policy / "config.json").write_text(json.dumps(config))
    (policy / "model.safetensors").rename(policy / "pytorch_model.bin")
    with pytest.raises(SystemExit, match="pickled weights are refused"):
        evaluator.check_checkpoint(policy)


def test_no_policy_means_no_score(evaluator, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no trained policy"):
        evaluator.evaluate(tmp_path, ENV, "tiny", "cpu")


def test_evaluate_step_writes_result_and_completions(output_copy: Path, tmp_path: Path) -> None:
    result = tmp_path / "eval" / "result.json"
    result.parent.mkdir()
    env = {**os.environ, "EXECUTOR_OUTPUT_DIR": str(output_copy), "EXECUTOR_ENV_DIR": str(ENV),
           "EXECUTOR_RESULT_PATH": str(result)}  # fmt: skip
    check = subprocess.run([sys.executable, str(ENV / "evaluate.py"), "--check"], env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert check.returncode == 0, check.stderr[-2000:]
    assert not result.exists(), "--check scores nothing"
    bad = subprocess.run([sys.executable, str(ENV / "evaluate.py"), "--scale", "huge"], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode != 0 and "unknown scale 'huge'" in bad.stderr


def test_each_variant_is_graded_against_its_own_problem(
    evaluator, output_copy: Path, small_tiny_scale: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy that answers every question right, whatever its wording, must score 1 on
    every variant: the completions are read back in the order the prompts were sent."""
    problems = evaluator.load_problems(evaluator.SCALES["tiny"], ENV)
    template = (ENV / "prompts" / "tiny.txt").read_text()
    answer_of = {template.replace("{question}", p["question"]): p["answer"] for p in problems}
    for p in problems:
        for q in p["variants"].values():
            answer_of[template.replace("{question}", q)] = p["answer"]

    def oracle(policy, tok, prompts, s, temperature, n=1):
        return [
            {"text": f"\\boxed{{{answer_of[q]}}}", "tokens": 3} for q in prompts for _ in range(n)
        ]

    monkeypatch.setattr(evaluator, "generate", oracle)
    m = evaluator.evaluate(output_copy, ENV, "tiny", "cpu")["metrics"]
    assert m["accuracy"] == m["variant_accuracy"] == m["consistency"] == m["pass_at_2"] == 1.0
    assert all(
        m[f"accuracy_{k}"] == 1.0 for k in ("rename", "reorder", "words", "distractor", "notation")
    )
