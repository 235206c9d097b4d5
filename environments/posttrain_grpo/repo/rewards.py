"""Reward functions of the training loop: each maps (completion, reference answer) to a float.

These shape training only. The score that counts is computed by the environment's own
grader on held-out problems, so a reward change helps only if the policy really improves.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

RewardFn = Callable[[str, str], float]


def last_boxed(text: str) -> str | None:
    r"""Contents of the last \boxed{...} in `text` (nested braces allowed), None if none."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed{") - 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def _as_number(s: str) -> Fraction | None:
    s = s.replace(",", "").replace("$", "").replace("\\%", "").replace("%", "").strip()
    m = re.fullmatch(r"\\frac\{(-?\d+)\}\{(\d+)\}", s)
    if m:
        s = f"{m.group(1)}/{m.group(2)}"
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def answers_match(predicted: str, reference: str) -> bool:
    a, b = _as_number(predicted), _as_number(reference)
    if a is not None and b is not None:
        return a == b
    return predicted.replace(" ", "") == reference.replace(" ", "")


def format_reward(completion: str, reference: str) -> float:
    r"""1 when the completion ends its reasoning with a non-empty \boxed{} answer."""
    return float(bool(last_boxed(completion)))


def answer_reward(completion: str, reference: str) -> float:
    """1 when the boxed answer equals the reference answer."""
    answer = last_boxed(completion)
    return float(answer is not None and answers_match(answer, reference))


def reward_functions(format_weight: float, answer_weight: float) -> list[tuple[RewardFn, float]]:
    """The (function, weight) pairs whose weighted sum is a completion's reward."""
    return [(format_reward, format_weight), (answer_reward, answer_weight)]


def score(
    completions: list[str], references: list[str], funcs: list[tuple[RewardFn, float]]
) -> dict[str, list[float]]:
    """Each function's score per completion, and their weighted `total`."""
    out: dict[str, list[float]] = {fn.__name__: [] for fn, _ in funcs}
    total = []
    for completion, ref in zip(completions, references, strict=True):
        r = 0.0
        for fn, weight in funcs:
            v = fn(completion, ref)
            out[fn.__name__].append(v)
            r += weight * v
        total.append(r)
    out["total"] = total
    return out
