"""posttrain_grpo's GSM8K perturbations: every rule keeps the answer on all 1,319 held-out
questions, is deterministic, applies often enough, and rewrites hand-written inputs as stated."""

from __future__ import annotations

import json
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from tests.env_modules import load_file

ENV = Path(__file__).resolve().parents[2] / "environments" / "posttrain_grpo"


pg = load_file(ENV / "perturb_gsm8k.py", "posttrain_grpo_perturb_gsm8k")

ROWS = [json.loads(line) for line in (ENV / "heldout" / "gsm8k_test.jsonl").open()]
QUESTIONS = [row["question"] for row in ROWS]


@pytest.fixture(scope="module")
def seed0() -> list[dict[str, str]]:
    return [pg.variants(q, 0) for q in QUESTIONS]


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]+", text)


def test_bundled_data() -> None:
    assert len(QUESTIONS) == 1319
    assert (ENV / "heldout" / "LICENSE-gsm8k").is_file()
    assert (ENV / "data" / "LICENSE-gsm8k").is_file()
    with (ENV / "data" / "gsm8k_train.jsonl").open() as f:
        assert sum(1 for _ in f) == 7473
    # Every gold answer is a plain number once commas are gone.
    for row in ROWS:
        Fraction(pg.gold_answer(row["answer"]))


def test_gold_answer() -> None:
    assert pg.gold_answer("She makes 9 * 2 = $<<9*2=18>>18.\n#### 1,234") == "1234"
    assert pg.gold_answer("a #### b #### -5 ") == "-5"


def test_numbers_in() -> None:
    text = "Pay $1,200.50, 50% of twenty-one, one hundred, 2.5 kg, .5 l and three at 5:30."
    want = ["2401/2", "50", "21", "100", "5/2", "1/2", "3", "5", "30"]
    assert pg.numbers_in(text) == [Fraction(w) for w in want]
    assert pg.numbers_in("Someone lay down once, alone.") == []


def test_every_variant_keeps_the_numbers(seed0: list[dict[str, str]]) -> None:
    for question, out in zip(QUESTIONS, seed0, strict=True):
        before = Counter(pg.numbers_in(question))
        for kind, text in out.items():
            after = Counter(pg.numbers_in(text))
            assert text != question, (kind, question)
            if kind == "distractor":
                assert not before - after and sum((after - before).values()) == 1, text
            else:
                assert after == before, (kind, question, text)


def test_rename_changes_only_names(seed0: list[dict[str, str]]) -> None:
    for question, out in zip(QUESTIONS, seed0, strict=True):
        if "rename" not in out:
            continue
        old, new = _words(question), _words(out["rename"])
        assert len(old) == len(new)
        changed = {(a, b) for a, b in zip(old, new, strict=True) if a != b}
        assert changed and all(a[0].isupper() and b[0].isupper() for a, b in changed)
        # Consistent: each old name has one new name, which the question did not use.
        assert len(dict(changed)) == len(changed)
        assert not {b for _, b in changed} & set(old)


def test_rename_possessives() -> None:
    q = "Janet’s ducks lay 16 eggs. Janet's hens lay 3. Tom eats 2. How many eggs are left?"
    out = pg.perturb(q, "rename", 0)
    assert out is not None and "Janet" not in out and "Tom" not in out
    assert out.count("’s ducks") == 1 and out.count("'s hens") == 1
    assert pg.perturb("A robe takes 2 bolts. How many bolts?", "rename", 0) is None


def test_reorder_swaps_two_statements(seed0: list[dict[str, str]]) -> None:
    for question, out in zip(QUESTIONS, seed0, strict=True):
        if "reorder" not in out:
            continue
        old, _ = pg.split_sentences(question)
        new, _ = pg.split_sentences(out["reorder"])
        assert sorted(old) == sorted(new) and old[-1] == new[-1]
        moved = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
        assert len(moved) == 2 and moved[1] == moved[0] + 1
        assert not any(old[i].rstrip().endswith("?") for i in moved)


def test_split_sentences() -> None:
    q = "Mr. Lee paid $1.50 at 8 a.m. on Monday.  Dr. Ray paid 2.5 times that. How much?"
    sentences, gaps = pg.split_sentences(q)
    assert sentences == [
        "Mr. Lee paid $1.50 at 8 a.m. on Monday.",
        "Dr. Ray paid 2.5 times that.",
        "How much?",
    ]
    assert gaps == ["  ", " "]
    assert pg.perturb("He has 5 cats. Then he buys 3. How many?", "reorder", 0) is None
    assert pg.perturb("Mary has 5 cats. Tom has 3 dogs. How many pets?", "reorder", 0) == (
        "Tom has 3 dogs. Mary has 5 cats. How many pets?"
    )


def test_distractor_goes_before_the_question(seed0: list[dict[str, str]]) -> None:
    for question, out in zip(QUESTIONS, seed0, strict=True):
        old, _ = pg.split_sentences(question)
        new, _ = pg.split_sentences(out["distractor"])
        assert len(new) == len(old) + 1 and new[-1] == old[-1]
        extra = [s for s in new if s not in old]
        assert len(extra) == 1 and len(pg.numbers_in(extra[0])) == 1, extra


def test_distractor_avoids_entities_in_the_question() -> None:
    # A question that names one entity of every template but the last leaves only the last.
    templates = [(text, sorted(keys)[0]) for text, keys in pg._DISTRACTORS]
    story = "Ann saw a " + ", a ".join(key for _, key in templates[:-1]) + "."
    for seed in range(20):
        out = pg.perturb(story + " How many did she see?", "distractor", seed)
        assert out is not None and templates[-1][0].split("{n}")[0] in out
    every = "Ann saw a " + ", a ".join(key for _, key in templates) + ". How many?"
    assert pg.perturb(every, "distractor", 0) is None


def test_words_examples() -> None:
    q = "Tom has 21 apples, $5, 2.5 kg, 5:30, 50%, the 1st, 1,200, 3/4 and 100 pens. 3 cats sit."
    assert pg.perturb(q, "words", 0) == (
        "Tom has twenty-one apples, $5, 2.5 kg, 5:30, 50%, the 1st, 1,200, 3/4 and "
        "one hundred pens. Three cats sit."
    )
    assert pg.perturb("A 3-year-old has 150 toys.", "words", 0) == (
        "A three-year-old has 150 toys."
    )
    assert pg.perturb("It costs $5 and 20% more, 1.5 times.", "words", 0) is None


def test_notation_examples() -> None:
    q = "Pay $5, $1.50, $2 million, 50% of 1200 or 1,200 pears in 2010, a $20 bill and 6000$."
    assert pg.perturb(q, "notation", 0) == (
        "Pay 5 dollars, 1.50 dollars, 2 million dollars, 50 percent of 1,200 or 1200 pears "
        "in 2010, a 20-dollar bill and 6,000 dollars."
    )
    assert pg.perturb("He has 5 apples and 999 pears.", "notation", 0) is None


def test_deterministic(seed0: list[dict[str, str]]) -> None:
    again = [pg.variants(q, 0) for q in QUESTIONS]
    assert again == seed0
    other = [pg.variants(q, 1) for q in QUESTIONS]
    for kind, share in (("rename", 0.9), ("distractor", 0.9)):
        pairs = [(a[kind], b[kind]) for a, b in zip(seed0, other, strict=True) if kind in a]
        assert sum(a != b for a, b in pairs) >= share * len(pairs), kind
    with pytest.raises(ValueError, match="unknown perturbation"):
        pg.perturb("x", "shuffle", 0)


def test_each_kind_applies_often_enough(seed0: list[dict[str, str]]) -> None:
    # Measured on the 1,319 test questions: rename 41%, reorder 9%, words 84%, distractor 100%,
    # notation 39%.
    floors = {"rename": 0.40, "reorder": 0.08, "words": 0.80, "distractor": 0.99, "notation": 0.37}
    counts = Counter(kind for out in seed0 for kind in out)
    for kind in pg.KINDS:
        assert counts[kind] >= floors[kind] * len(QUESTIONS), (kind, counts[kind])
