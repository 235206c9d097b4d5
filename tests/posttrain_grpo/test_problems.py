"""The synthetic problems of the tiny scale: every variant keeps the answer, the bundled
file is what the generator makes, and held-out problems never occur in training."""

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
        "zero",
        "thirteen",
        "forty",
        "fifty-eight",
        "one hundred",
        "one hundred twelve",
    ]


def test_bundled_files_are_what_the_generator_makes(problems) -> None:
    train = [json.loads(x) for x in (REPO / "data" / "tiny_train.jsonl").open()]
    assert len(train) == problems.TRAIN_PROBLEMS
    assert train[:50] == problems.make_problems(
        50, seed=problems.TRAIN_SEED, variant_rate=problems.VARIANT_RATE
    )
    kinds = Counter(p["kind"] for p in train)
    assert 0.6 < kinds["original"] / len(train) < 0.8, "30% of training questions are variants"
    # No held-out file to read, copy or memorise: the evaluator draws them per run directory.
    assert not list((ENV / "heldout").glob("tiny*"))


def test_held_out_problems_avoid_every_training_text_and_never_repeat(problems) -> None:
    first = problems.heldout_problems(200, seed=7, exclude=set())
    assert first == problems.heldout_problems(200, seed=7, exclude=set()), "seeded"
    assert first != problems.heldout_problems(200, seed=8, exclude=set())
    assert all(set(p["variants"]) == set(problems.KINDS) for p in first)
    texts = [t for p in first for t in (p["question"], *p["variants"].values())]
    assert len(texts) == len(set(texts)), "no text is asked twice"
    # A question, or only a variant, seen in training drops the whole problem.
    banned = {first[0]["question"], first[1]["variants"]["rename"]}
    again = problems.heldout_problems(200, seed=7, exclude=banned)
    assert len(again) == 200 and again[:2] != first[:2] and again[0] == first[2]
    assert not banned & {t for p in again for t in (p["question"], *p["variants"].values())}


def test_warm_up_questions_are_the_base_policys(problems) -> None:
    warmup = problems.warmup_questions()
    assert len(warmup) > 0.9 * problems.WARMUP_PROBLEMS
    expected = problems.make_problems(30, seed=problems.WARMUP_SEED, variant_rate=0.3)
    assert {p["question"] for p in expected} <= warmup
    make_base = (ENV / "make_base.py").read_text()
    assert "seed=WARMUP_SEED" in make_base and "default=WARMUP_PROBLEMS" in make_base


RANGES = {  # the numbers sample_spec draws, per family: (x range, y range)
    "add": ((2, 60), (2, 40)),
    "total": ((2, 60), (2, 40)),
    "more_than": ((2, 60), (2, 40)),
    "sub": ((10, 99), (1, 98)),
    "mul": ((2, 12), (2, 9)),
    "price": ((2, 12), (2, 9)),
}


@pytest.mark.parametrize("seed", range(50))
def test_a_twin_is_the_same_problem_with_other_numbers(problems, seed: int) -> None:
    rng = random.Random(seed)
    spec = problems.sample_spec(rng)
    twin = problems.renumbered(spec, rng)
    assert (twin.family, twin.a, twin.b, twin.item, twin.container) == (
        spec.family,
        spec.a,
        spec.b,
        spec.item,
        spec.container,
    )
    assert (twin.x, twin.y) != (spec.x, spec.y)
    # from the family's own ranges, so a twin is an ordinary problem of the generator
    (x_lo, x_hi), (y_lo, y_hi) = RANGES[twin.family]
    assert x_lo <= twin.x <= x_hi and y_lo <= twin.y <= y_hi
    assert twin.family != "sub" or twin.y < twin.x
    assert problems.render(twin) != problems.render(spec)


def test_twins_avoid_what_they_must_and_each_other(problems) -> None:
    held = problems.heldout_problems(300, seed=11, exclude=set())
    specs = [p["spec"] for p in held]
    twins = problems.twins(specs, seed=5, exclude=set())
    assert twins == problems.twins(specs, seed=5, exclude=set())
    assert twins != problems.twins(specs, seed=6, exclude=set())
    questions = [t["question"] for t in twins]
    assert len(set(questions)) == len(questions)
    banned = {questions[0], questions[1]}
    again = problems.twins(specs, seed=5, exclude=banned)
    assert not banned & {t["question"] for t in again}
    # each twin's answer is its own numbers' arithmetic, and mostly not the original's
    for spec, t in zip(specs, twins, strict=True):
        x, y = (int(n) for n in perturb.numbers_in(t["question"]))
        assert t["answer"] == str(problems.Spec(spec.family, "A", "B", "i", "c", x, y).answer)
    assert sum(t["answer"] != p["answer"] for t, p in zip(twins, held, strict=True)) > 250
