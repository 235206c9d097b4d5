"""The posttrain_grpo answer grader: extraction, normalization, exact numbers, and grading."""

from __future__ import annotations

import dataclasses
import time
from fractions import Fraction
from pathlib import Path

import pytest

from tests.env_modules import load_file

ENV = Path(__file__).resolve().parents[2] / "environments" / "posttrain_grpo"


grader = load_file(ENV / "grader.py", "grpo_grader")


# --- extraction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (r"So the result is \boxed{42}.", "42"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{\frac{\sqrt{2}}{\sqrt{3}}}", r"\frac{\sqrt{2}}{\sqrt{3}}"),
        (r"First \boxed{3}, but on reflection \boxed{4}.", "4"),
        (r"$\boxed 5$.", "5"),
        (r"\boxed{-5}", "-5"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),  # escaped braces do not close the box
        (r"\fbox{7}", "7"),
        (r"\boxed{3} then a truncated \boxed{\frac{1}{", "3"),
        ("The answer is 7 but #### 9 and \\boxed{11}", "11"),  # the box outranks everything
        ("Janet has 9 eggs.\n#### 18", "18"),
        ("#### 5\nlater on\n#### 6", "6"),
        ("#### 1,234", "1,234"),
        ("#### Step 1\nWe add.\nThe answer is 42.", "42"),  # a markdown heading is not ####
        ("#### Final Answer\nAnswer: 17", "17"),
        ("The answer is 42.", "42"),
        ("the ANSWER IS 3.5. Done.", "3.5"),
        ("The answer is: $\\frac{1}{2}$. Next we check.", "$\\frac{1}{2}$"),
        ("Answer: 12\nSome trailing chatter", "12"),
        ("**Answer:** 7", "7"),
        ("The answer is **13**!", "13"),
        ("Answer:\n42", "42"),
        ("I thought the answer is 3. Actually the answer is 5.", "5"),
    ],
)
def test_extract_answer(completion: str, expected: str) -> None:
    assert grader.extract_answer(completion) == expected


@pytest.mark.parametrize(
    "completion",
    [
        "",
        "I am not sure how to solve this.",
        r"\boxed{}",
        r"\boxed{   }",
        r"\boxed{3} but then \boxed{}",  # the last box decides, and it is empty
        "####   ",
        "The answer is",
        r"an unfinished \boxed{12",
        "The answer isn't obvious",
    ],
)
def test_extract_answer_abstains(completion: str) -> None:
    assert grader.extract_answer(completion) is None


# --- normalization ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  42  ", "42"),
        ("$18$", "18"),
        (r"\$18", "18"),
        ("18 dollars", "18"),
        (r"18\text{ dollars}", "18"),
        ("1 dollar", "1"),
        ("50 cents", "50"),
        ("50%", "50"),
        (r"50\%", "50"),
        ("50 percent", "50"),
        (r"90^\circ", "90"),
        (r"90^{\circ}", "90"),
        ("90 degrees", "90"),
        ("12 square units", "12"),
        ("12 units", "12"),
        (r"\(x^2\)", "x^2"),
        (r"\left( 1, 2 \right)", "(1,2)"),
        (r"10\!000", "10000"),
        (r"1\,000", "1000"),
        (r"\dfrac{1}{2}", r"\frac{1}{2}"),
        (r"\tfrac34", r"\frac34"),
        (r"\text{(B)}", "b"),
        (r"\textbf{(C)}", "c"),
        (r"\mathrm{Hello}", "hello"),
        (r"\text{\textbf{nested}}", "nested"),
        ("5.", "5"),
        ("x = 5", "5"),
        (r"y=\frac{1}{2}", r"\frac{1}{2}"),
        ("x + y = 5", "x+y=5"),  # not a single-variable assignment
        ("1,234,567", "1234567"),
        ("-1,234.5", "-1234.5"),
        (r"1{,}000", "1000"),
        ("1,23", "1,23"),  # commas off the thousands positions stay
        ("12,3456", "12,3456"),
        ("(1,234)", "(1,234)"),  # an ordered pair, not a thousands number
        ("\u22125", "-5"),
        ("1 1/2", "1 1/2"),  # the one space kept: a mixed number
        ("(1, 2)", "(1,2)"),
    ],
)
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
    ("raw", "expected"),
    [
        ("42", Fraction(42)),
        ("-5", Fraction(-5)),
        ("\u22125", Fraction(-5)),
        ("+5", Fraction(5)),
        ("0.50", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("3/4", Fraction(3, 4)),
        ("-3/4", Fraction(-3, 4)),
        (r"\frac{3}{4}", Fraction(3, 4)),
        (r"\frac34", Fraction(3, 4)),
        (r"\dfrac{3}{4}", Fraction(3, 4)),
        (r"-\frac{3}{4}", Fraction(-3, 4)),
        (r"\frac{-3}{4}", Fraction(-3, 4)),
        ("1 1/2", Fraction(3, 2)),
        ("-1 1/2", Fraction(-3, 2)),
        (r"2\frac{1}{4}", Fraction(9, 4)),
        ("11/2", Fraction(11, 2)),  # no space: a plain fraction, not a mixed number
        ("1e3", Fraction(1000)),
        ("1.5E-3", Fraction(3, 2000)),
        (r"1.5 \times 10^{3}", Fraction(1500)),
        ("$1,234.00", Fraction(1234)),
        ("x = -2", Fraction(-2)),
    ],
)
def test_to_number(raw: str, expected: Fraction) -> None:
    assert grader.to_number(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "1,23",
        "1/0",
        r"\frac{1}{0}",
        r"\sqrt{2}",
        "(1,2)",
        "--5",
        "1e99999999",  # refused rather than built
        "9" * 5000,  # beyond Python's int-from-string limit: None, not an exception
        "1.2.3",
        r"1\frac{-1}{2}",
    ],
)
def test_to_number_rejects(raw: str) -> None:
    assert grader.to_number(raw) is None


# --- equivalence ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("1,234", "1234"),
        ("1,234,567", "1234567"),
        ("$18", "18"),
        ("18 dollars", "18"),
        ("18.00", "18"),
        (r"\$18.00", "18"),
        ("50%", "50"),
        ("3/4", r"\frac{3}{4}"),
        (r"\dfrac34", "3/4"),
        ("0.75", r"\frac{3}{4}"),
        ("0.5", r"\frac{1}{2}"),
        ("-5", "\u22125"),
        (r"-\frac{1}{2}", "-0.5"),
        ("1 1/2", "3/2"),
        ("1e3", "1000"),
        ("x = 5", "5"),
        ("(1, 2)", "(1,2)"),
        (r"\text{(B)}", "B"),
        ("(B)", "b"),
        (r"\left[0, 1\right)", "[0,1)"),
        (r"\sqrt{2}", r"\sqrt{2}"),
        (r"\frac{\sqrt{3}}{2}", r"\dfrac{\sqrt{3}}{2}"),
        (r"90^\circ", "90"),
    ],
)
def test_equivalent(pred: str, gold: str) -> None:
    assert grader.is_equivalent(pred, gold)
    assert grader.is_equivalent(gold, pred)


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("1,23", "123"),
        ("2/3", "0.67"),
        ("0.33", r"\frac{1}{3}"),
        ("5", "-5"),
        ("43", "42"),
        ("11/2", "1 1/2"),
        ("(C)", "B"),
        ("(1,2)", "(2,1)"),
        ("(1,234)", "1234"),
        ("", ""),
        ("dollars", "dollars"),  # nothing left after normalization never matches
        (r"\sqrt{2}/2", r"\frac{\sqrt{2}}{2}"),  # symbolic forms are compared as strings
    ],
)
def test_not_equivalent(pred: str, gold: str) -> None:
    assert not grader.is_equivalent(pred, gold)


# --- grading ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "gold"),
    [
        ("She earns 9 * 2 = 18 dollars a day.\n#### 18", "18"),
        ("Total: 1,234 apples.\n#### 1,234", "1234"),
        ("#### $18", "18"),
        ("The answer is 42.", "42"),
        ("The answer is $\\$18.00$.", "18"),
        (r"Thus $x = \boxed{\dfrac{3}{4}}$.", r"\frac{3}{4}"),
        (r"We get \boxed{0.75}", r"\frac34"),
        (r"\boxed{-5}", "-5"),
        (r"\boxed{\text{(B)}}", "B"),
        (r"Try \boxed{3}. No wait: \boxed{\frac{1}{2}}", "0.5"),
        (r"\boxed{(1, 2)}", "(1,2)"),
        (r"\boxed{50\%}", "50"),
    ],
)
def test_grade_correct(completion: str, gold: str) -> None:
    result = grader.grade(completion, gold)
    assert result == grader.Grade(
        answered=True, correct=True, extracted=grader.extract_answer(completion)
    )


@pytest.mark.parametrize(
    ("completion", "gold", "extracted"),
    [
        ("#### 17", "18", "17"),
        ("The answer is 41.", "42", "41"),
        (r"\boxed{\frac{1}{2}} then \boxed{3}", "0.5", "3"),  # the last box wins, even if wrong
        (r"\boxed{5}", "-5", "5"),
        (r"\boxed{0.67}", "2/3", "0.67"),
        (r"\boxed{\text{(C)}}", "B", r"\text{(C)}"),
    ],
)
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
