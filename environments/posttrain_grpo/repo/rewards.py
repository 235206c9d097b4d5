"""Reward functions of the training loop: each maps (completion, reference answer) to a float.

train.py calls `reward_functions(format_weight, answer_weight)` once and rewards a completion
with the weighted sum of the functions' values. These shape training only. The score that
counts is computed by the environment's own grader on held-out problems, so a reward change
helps only if the policy really improves.
"""

from __future__ import annotations

from collections.abc import Callable

from answers import has_answer, is_correct

RewardFn = Callable[[str, str], float]


def format_reward(completion: str, reference: str) -> float:
    r"""1 when the completion ends its reasoning with a non-empty \boxed{} answer."""
    return float(has_answer(completion))


def answer_reward(completion: str, reference: str) -> float:
    """1 when the boxed answer equals the reference answer."""
    return float(is_correct(completion, reference))


def reward_functions(format_weight: float, answer_weight: float) -> list[tuple[RewardFn, float]]:
    """The (function, weight) pairs whose weighted sum is a completion's reward."""
    return [(format_reward, format_weight), (answer_reward, answer_weight)]
