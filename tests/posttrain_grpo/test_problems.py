"""The synthetic problems of the tiny scale: every variant keeps the answer, the bundled
files are what the generator makes, and held-out problems never occur in training."""

from __future__ import annotations

import json
import random
from collections import Counter
from fractions import Fraction

import pytest

from tests.env_modules import load_file
from tests.posttrain_grpo.conftest import ENV, REPO

perturb = load_file(ENV / "perturb_gsm8k.py", "grpo_perturb_for_problems")


def _numbers(text: str) -> Counter[Fraction]:
    return Counter(perturb.numbers_in(text))


@pytest.mark.parametrize("seed", range(300))
def test_every_variant_keeps_the_numbers_and_answer(problems, seed: int) -> None:
    rng = random.Random(seed)
    spec = problems.sample_spec(rng)
    original = problems.render(spec)
    base = _numbers(original)
    assert base == Counter([Fraction(spec.x), Fraction(spec.y)])
    for kind in problems.KINDS:
        text = problems.render(spec, kind, random.Random(seed))
        found = _numbers(text)
        if kind == "distractor":
            assert sum((found - base).values()) == 1 and not base - found, text
        else:
            assert found == base, (kind, text)
    assert spec.solution().endswith(f"\\boxed{{{spec.answer}}}.")


@pytest.mark.parametrize(
    ("family", "answer"),
    [("add", 19), ("sub", 5), ("mul", 84), ("total", 19), ("more_than", 31), ("price", 84)],
)
def test_answers_are_the_familys_arithmetic(problems, family: str, answer: int) -> None:
    spec = problems.Spec(family, "Tom", "Ann", "pens", "boxes", 12, 7)
    assert spec.answer == answer and f"= {answer}." in spec.solution()


def test_variants_change_what_they_say_they_change(problems) -> None:
    spec = problems.Spec("total", "Tom", "Ann", "pens", "boxes", 12, 7)
    rng = random.Random(0)
    assert (
        problems.render(spec)
        == "Tom has 12 pens. Ann has 7 pens. How many pens do Tom and Ann have in total?"
    )
    renamed = problems.render(spec, "rename", rng)
    assert "Tom" not in renamed and "Ann" not in renamed and "pens" not in renamed
    reordered = problems.render(spec, "reorder", rng)
    assert reordered.startswith("How many pens") and reordered.index("Ann has") < reordered.index(
        "Tom has"
    )
    assert "twelve" in problems.render(spec, "words", rng) and "seven" in problems.render(
        spec, "words", rng
    )
    assert problems.render(spec, "notation", rng) != problems.render(spec)
    price = problems.Spec("price", "Tom", "Ann", "pens", "boxes", 3, 4)
    assert "$4" in problems.render(price) and "4 dollars" in problems.render(price, "notation", rng)


def test_number_words(problems) -> None:
    assert [problems.number_words(n) for n in (0, 13, 40, 58, 100, 112)] == [
        "zero", "thirteen", "forty", "fifty-eight", "one hundred", "one hundred twelve",
    ]  # fmt: skip


def test_bundled_files_are_what_the_generator_makes(problems) -> None:
    train = [json.loads(x) for x in (REPO / "data" / "tiny_train.jsonl").open()]
    assert train[:50] == problems.make_problems(50, seed=1, variant_rate=0.3)
    heldout = [json.loads(x) for x in (ENV / "heldout" / "tiny_test.jsonl").open()]
    assert len(heldout) == 500 and all(set(h["variants"]) == set(problems.KINDS) for h in heldout)
    seen = {p["question"] for p in train}
    assert not any(h["question"] in seen for h in heldout)
    kinds = Counter(p["kind"] for p in train)
    assert 0.6 < kinds["original"] / len(train) < 0.8, "30% of training questions are variants"
