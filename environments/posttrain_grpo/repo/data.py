"""Training problems and prompts.

A problem is {"question": str, "answer": str}. Datasets:
- tiny:  synthetic arithmetic word problems bundled in data/tiny_train.jsonl;
- gsm8k: GSM8K's train split, bundled in the environment (data/gsm8k_train.jsonl);
- math:  MATH's train split from the hub (`datasets`), answers taken from the boxed solution.

The held-out problems the reward is measured on are not here: training never sees them.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

from answers import last_boxed

HERE = Path(__file__).resolve().parent
MATH_DATASET = "DigitalLearningGmbH/MATH-lighteval"  # MATH train split, with full solutions


def env_dir() -> Path:
    """The environment folder: prompts, bundled data and the base policy live there."""
    return Path(os.environ.get("EXECUTOR_ENV_DIR") or HERE.parent)


def read_jsonl(path: Path) -> list[dict]:
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def load_problems(dataset: str) -> list[dict]:
    if dataset == "tiny":
        return [
            {"question": p["question"], "answer": p["answer"]}
            for p in read_jsonl(HERE / "data" / "tiny_train.jsonl")
        ]
    if dataset == "gsm8k":
        rows = read_jsonl(env_dir() / "data" / "gsm8k_train.jsonl")
        return [{"question": r["question"], "answer": gsm8k_answer(r["answer"])} for r in rows]
    if dataset == "math":
        return load_math()
    raise SystemExit(f"unknown dataset {dataset!r}: use tiny, gsm8k or math")


def gsm8k_answer(solution: str) -> str:
    """The final answer after GSM8K's '####' marker, without thousands separators."""
    return solution.rsplit("####", 1)[-1].strip().replace(",", "")


def load_math() -> list[dict]:
    try:
        from datasets import load_dataset
    except ImportError:
        raise SystemExit("the math dataset needs `datasets`: pip install datasets") from None
    rows = load_dataset(MATH_DATASET, split="train")
    problems = []
    for r in rows:
        answer = last_boxed(r["solution"])
        if answer:  # a few solutions have no boxed answer: nothing to grade against
            problems.append({"question": r["problem"], "answer": answer})
    return problems


def prompt_template(name: str) -> str:
    path = env_dir() / "prompts" / f"{name}.txt"
    if not path.exists():
        raise SystemExit(f"no prompt template {path}; choose one of prompts/*.txt")
    return path.read_text()


def render_prompt(template: str, question: str) -> str:
    """The template with the question in place of `{question}` (not str.format: templates
    contain LaTeX braces such as \\boxed{})."""
    return template.replace("{question}", question)


def split_dev(problems: list[dict], n_dev: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, dev): `n_dev` problems set aside, the same ones for every seed of a run."""
    order = list(range(len(problems)))
    random.Random(seed).shuffle(order)
    dev = [problems[i] for i in order[:n_dev]]
    train = [problems[i] for i in order[n_dev:]]
    return train, dev


def batches(problems: list[dict], per_step: int, seed: int) -> Iterator[list[dict]]:
    """Endless batches of distinct problems: reshuffled every pass, seeded."""
    rng = random.Random(seed)
    while True:
        order = list(problems)
        rng.shuffle(order)
        for i in range(0, len(order) - per_step + 1, per_step):
            yield order[i : i + per_step]
