r"""Reading and grading a completion's final answer: the last \boxed{...} it writes.

train.py grades its rollouts and the live dev evaluation with these (train_accuracy,
format_rate, dev_accuracy), and the reward functions in rewards.py may use them too. The
score that counts is computed by the environment's own grader on held-out problems.
"""

from __future__ import annotations

import re
from fractions import Fraction


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


def as_number(s: str) -> Fraction | None:
    r"""`s` as an exact number (commas, $ and % dropped, \frac{a}{b} read), None if not one."""
    s = s.replace(",", "").replace("$", "").replace("\\%", "").replace("%", "").strip()
    m = re.fullmatch(r"\\frac\{(-?\d+)\}\{(\d+)\}", s)
    if m:
        s = f"{m.group(1)}/{m.group(2)}"
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def answers_match(predicted: str, reference: str) -> bool:
    """Equal as numbers when both are numbers, else equal as text up to spaces."""
    a, b = as_number(predicted), as_number(reference)
    if a is not None and b is not None:
        return a == b
    return predicted.replace(" ", "") == reference.replace(" ", "")


def has_answer(completion: str) -> bool:
    r"""Whether the completion ends its reasoning with a non-empty \boxed{} answer."""
    return bool(last_boxed(completion))


def is_correct(completion: str, reference: str) -> bool:
    """Whether the completion's boxed answer equals the reference answer."""
    answer = last_boxed(completion)
    return answer is not None and answers_match(answer, reference)
