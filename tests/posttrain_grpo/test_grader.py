"""The posttrain_grpo answer grader: extraction, normalization, exact numbers, and grading."""

from __future__ import annotations

import dataclasses
import time
import tomllib
from fractions import Fraction
from pathlib import Path

import pytest

from tests.env_modules import load_file

ENV = Path(__file__).resolve().parents[2] / "environments" / "posttrain_grpo"


grader = load_file(ENV / "grader.py", "grpo_grader")
# The cases as tables (literal strings there are raw), beside the tests that read them.
CASES = tomllib.loads(Path(__file__).with_name("grader_cases.toml").read_text())


# --- extraction -------------------------------------------------------------------------


@pytest.mark.parametrize(("completion", "expected"), CASES["extract_answer"])
def test_extract_answer(completion: str, expected: str) -> None:
    assert grader.extract_answer(completion) == expected


@pytest.mark.parametrize("completion", CASES["extract_answer_abstains"])
def test_extract_answer_abstains(completion: str) -> None:
    assert grader.extract_answer(completion) is None


# --- normalization ----------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), CASES["normalize"])
def test_normalize(raw: str, expected: str) -> None:
    assert grader.normalize(raw) == expected


@pytest.mark.parametrize(
    "raw", ["$1,234$", r"\text{(B)}", "x = 5", "18 dollars", "1 1/2", r"\left(1, 2\right)."]
)
def test_normalize_is_idempotent(raw: str) -> None:
    once = grader.normalize(raw)
    assert grader.normalize(once) == once


# --- numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"), [(raw, Fraction(value)) for raw, value in CASES["to_number"]]
)
def test_to_number(raw: str, expected: Fraction) -> None:
    assert grader.to_number(raw) == expected


# And one beyond Python's int-from-string limit: None, not an exception.
@pytest.mark.parametrize("raw", [*CASES["to_number_rejects"], "9" * 5000])
def test_to_number_rejects(raw: str) -> None:
    assert grader.to_number(raw) is None


# --- equivalence ------------------------------------------------------------------------


@pytest.mark.parametrize(("pred", "gold"), CASES["equivalent"])
def test_equivalent(pred: str, gold: str) -> None:
    assert grader.is_equivalent(pred, gold)
    assert grader.is_equivalent(gold, pred)


@pytest.mark.parametrize(("pred", "gold"), CASES["not_equivalent"])
def test_not_equivalent(pred: str, gold: str) -> None:
    assert not grader.is_equivalent(pred, gold)


# --- grading ----------------------------------------------------------------------------


@pytest.mark.parametrize(("completion", "gold"), CASES["grade_correct"])
def test_grade_correct(completion: str, gold: str) -> None:
    result = grader.grade(completion, gold)
    assert result == grader.Grade(
        answered=True, correct=True, extracted=grader.extract_answer(completion)
    )


@pytest.mark.parametrize(("completion", "gold", "extracted"), CASES["grade_wrong"])
def test_grade_wrong(completion: str, gold: str, extracted: str) -> None:
    result = grader.grade(completion, gold)
    assert result.answered
    assert not result.correct
    assert result.extracted == extracted


@pytest.mark.parametrize(
    ("completion", "extracted"),
    [
        ("I give up.", None),
        (r"\boxed{}", None),
        ("", None),
        (r"\boxed{\text{}}", r"\text{}"),  # extracted, but nothing left once normalized
        (r"\boxed{\$}", r"\$"),
    ],
)
def test_grade_abstains(completion: str, extracted: str | None) -> None:
    result = grader.grade(completion, "18")
    assert result == grader.Grade(answered=False, correct=False, extracted=extracted)


def test_grade_is_frozen() -> None:
    result = grader.grade("#### 18", "18")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.correct = False  # type: ignore[misc]


@pytest.mark.parametrize(
    "completion",
    [
        r"\boxed{" * 20_000,  # many unclosed boxes: one brace pass, not one per box
        "answer is " * 20_000,
        "#### " + "9" * 50_000,
        "{" * 50_000 + r"\boxed{1}",
        r"\boxed{" + r"\text{" * 20_000 + "1" + "}" * 20_001,  # deep wrappers unwrap in one pass
    ],
)
def test_hostile_completions_are_fast(completion: str) -> None:
    start = time.perf_counter()
    grader.grade(completion, "1")
    assert time.perf_counter() - start < 2.0
