"""Synthetic arithmetic word problems for the `tiny` scale, each with perturbed variants.

A problem is built from a structured spec (family, names, item, numbers), so every variant is
the same spec rendered differently and keeps the answer by construction:

- rename:     other people and items;
- reorder:    the question first, then the facts (commutative facts also swap);
- words:      numbers written as words ("twenty-one");
- distractor: an irrelevant sentence with a number of its own;
- notation:   the same facts written another way ("+7 pens", "6 pens / box", "3 dollars").

`make_base.py` writes the training problems (repo/data/) and warms the base policy up on
problems of its own; the evaluator draws the held-out problems afresh for each run directory
(`heldout_problems`, from a seed derived from a secret that training never sees), leaving out
every text that occurs in either training set.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

# The seeds and sizes make_base.py used for the bundled training set and the warm-up set: the
# evaluator regenerates the warm-up questions from them, so held-out problems avoid those too.
TRAIN_SEED, WARMUP_SEED = 1, 3
TRAIN_PROBLEMS, WARMUP_PROBLEMS = 8000, 20000
VARIANT_RATE = 0.3


def _words(table: str) -> tuple[str, ...]:
    """A table of single words, written as running text."""
    return tuple(table.split())


KINDS = ("rename", "reorder", "words", "distractor", "notation")
FAMILIES = ("add", "sub", "mul", "total", "more_than", "price")

NAMES = _words("""
    Tom Ann Sam Lily Ben Emma Max Mia Leo Zoe Jack Ella Noah Ava Omar Ivy Ravi Nora Luis Kate
    Paul Rosa Ian Amy
""")
ITEMS = _words("""
    apples pens books cards shells stickers marbles coins eggs cookies stamps balloons pencils
    toys flowers rocks
""")
CONTAINERS = ("boxes", "bags", "jars", "packs", "crates", "baskets")
DISTRACTORS = (
    "{name} is {n} years old.",
    "{name} lives {n} miles from school.",
    "{name} has a dog that weighs {n} pounds.",
    "{name} read {n} pages yesterday.",
    "The shop opened {n} days ago.",
)
_ONES = _words("""
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen
""")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(n: int) -> str:
    """0..999 in English words."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    hundreds, rest = divmod(n, 100)
    return f"{_ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")


@dataclass(frozen=True)
class Spec:
    family: str
    a: str  # first person
    b: str  # second person
    item: str
    container: str
    x: int
    y: int

    @property
    def answer(self) -> int:
        x, y = self.x, self.y
        return {
            "add": x + y,
            "sub": x - y,
            "mul": x * y,
            "total": x + y,
            "more_than": x + (x + y),
            "price": x * y,
        }[self.family]

    def solution(self) -> str:
        """The worked solution the warm-up teaches: the arithmetic, then the boxed answer."""
        x, y = self.x, self.y
        work = {
            "add": f"{x} + {y} = {x + y}.",
            "sub": f"{x} - {y} = {x - y}.",
            "mul": f"{x} * {y} = {x * y}.",
            "total": f"{x} + {y} = {x + y}.",
            "more_than": f"{x} + {y} = {x + y}. {x} + {x + y} = {2 * x + y}.",
            "price": f"{x} * {y} = {x * y}.",
        }[self.family]
        return f"{work} The answer is \\boxed{{{self.answer}}}."


# Each family's two facts and question, over the spec's people {a} and {b}, {item},
# {container} and numbers {x} and {y}; {alt} stands for the one phrase the "notation" variant
# writes another way, given in _ALT as (plain, notation). Only "total"'s facts commute.
_TEXT = {
    "add": ("{a} has {x} {item}.", "{a} buys {alt}.", "How many {item} does {a} have now?"),
    "sub": ("{a} has {x} {item}.", "{a} gives {alt}.", "How many {item} does {a} have left?"),
    "mul": ("{a} buys {x} {container}.", "{alt}.", "How many {item} does {a} get?"),
    "total": (
        "{a} has {x} {item}.",
        "{b} has {y} {item}.",
        "How many {item} do {a} and {b} have {alt}?",
    ),
    "more_than": (
        "{a} has {x} {item}.",
        "{b} has {alt} {item} than {a}.",
        "How many {item} do they have together?",
    ),
    "price": ("{a} buys {x} {item}.", "Each costs {alt}.", "How many dollars does {a} spend?"),
}
_ALT = {
    "add": ("{y} more {item}", "+{y} {item}"),
    "sub": ("{y} {item} to {b}", "{b} {y} {item}"),
    "mul": ("Each of them holds {y} {item}", "Each holds {y} {item} / box"),
    "total": ("in total", "combined"),
    "more_than": ("{y} more", "(+{y}) more"),
    "price": ("${y}", "{y} dollars"),  # x items at y dollars each
}


def _facts(s: Spec, num: Callable[[int], str], symbols: bool) -> tuple[list[str], str, bool]:
    """(fact sentences, question, whether the facts commute) of a spec, numbers via `num`."""
    fields = {"a": s.a, "b": s.b, "item": s.item, "container": s.container}
    fields |= {"x": num(s.x), "y": num(s.y)}
    alt = _ALT[s.family][symbols].format(**fields)
    first, second, question = (t.format(alt=alt, **fields) for t in _TEXT[s.family])
    return [first, second], question, s.family == "total"


def render(s: Spec, kind: str | None = None, rng: random.Random | None = None) -> str:
    """The question text of `s`, original (kind None) or one perturbed variant."""
    rng = rng or random.Random(0)
    if kind == "rename":
        s = _renamed(s, rng)
    num: Callable[[int], str] = number_words if kind == "words" else str
    facts, question, commute = _facts(s, num, symbols=kind == "notation")
    if kind == "distractor":
        other = rng.choice([n for n in NAMES if n not in (s.a, s.b)])
        line = rng.choice(DISTRACTORS).format(name=other, n=rng.randint(2, 60))
        facts = [*facts, line]
    if kind == "reorder":
        return " ".join([question, *(reversed(facts) if commute else facts)])
    return " ".join([*facts, question])


def _renamed(s: Spec, rng: random.Random) -> Spec:
    a, b = rng.sample([n for n in NAMES if n not in (s.a, s.b)], 2)
    item = rng.choice([i for i in ITEMS if i != s.item])
    container = rng.choice([c for c in CONTAINERS if c != s.container])
    return Spec(s.family, a, b, item, container, s.x, s.y)


def sample_spec(rng: random.Random) -> Spec:
    family = rng.choice(FAMILIES)
    a, b = rng.sample(NAMES, 2)
    item, container = rng.choice(ITEMS), rng.choice(CONTAINERS)
    x, y = _sample_numbers(family, rng)
    return Spec(family, a, b, item, container, x, y)


def _sample_numbers(family: str, rng: random.Random) -> tuple[int, int]:
    if family in ("add", "total", "more_than"):
        return rng.randint(2, 60), rng.randint(2, 40)
    if family == "sub":
        x = rng.randint(10, 99)
        return x, rng.randint(1, x - 1)
    return rng.randint(2, 12), rng.randint(2, 9)  # mul, price


def renumbered(spec: Spec, rng: random.Random) -> Spec:
    """`spec` with other numbers from the same ranges, so another answer: a twin that takes
    the same skill as `spec` but cannot be answered from a memory of it."""
    while True:
        x, y = _sample_numbers(spec.family, rng)
        if (x, y) != (spec.x, spec.y):
            return replace(spec, x=x, y=y)


def make_problem(
    rng: random.Random, with_variants: bool = False, variant_rate: float = 0.0
) -> dict:
    """One problem as a JSON-ready dict: question, answer (a string), solution, family, kind
    (the question is a random variant with probability `variant_rate`), and with
    `with_variants` a `variants` mapping kind -> question."""
    return _problem(rng, with_variants, variant_rate)[0]


def _problem(rng: random.Random, with_variants: bool, variant_rate: float) -> tuple[dict, Spec]:
    spec = sample_spec(rng)
    kind = rng.choice(KINDS) if rng.random() < variant_rate else None
    problem: dict = {
        "question": render(spec, kind, rng),
        "kind": kind or "original",
        "answer": str(spec.answer),
        "solution": spec.solution(),
        "family": spec.family,
    }
    if with_variants:
        problem["variants"] = {k: render(spec, k, rng) for k in KINDS}
    return problem, spec


def make_problems(
    n: int, seed: int, with_variants: bool = False, variant_rate: float = 0.0
) -> list[dict]:
    rng = random.Random(seed)
    return [make_problem(rng, with_variants, variant_rate) for _ in range(n)]


def warmup_questions() -> set[str]:
    """The questions the shipped base policy was warmed up on (make_base.py's defaults)."""
    return {p["question"] for p in make_problems(WARMUP_PROBLEMS, WARMUP_SEED, False, VARIANT_RATE)}


def heldout_problems(n: int, seed: int, exclude: set[str]) -> list[dict]:
    """`n` distinct problems with every variant, none of whose texts (question or variant)
    is in `exclude`: the held-out set, drawn from `seed` by the same generator as training.
    Each keeps its `spec` (not JSON) for `twins`."""
    rng = random.Random(seed)
    seen = set(exclude)
    out: list[dict] = []
    while len(out) < n:
        p, spec = _problem(rng, with_variants=True, variant_rate=0.0)
        p["spec"] = spec
        texts = [p["question"], *p["variants"].values()]
        if any(t in seen for t in texts):
            continue
        seen.update(texts)
        out.append(p)
    return out


def twins(specs: list[Spec], seed: int, exclude: set[str]) -> list[dict]:
    """For each spec a twin {question, answer}: the same people, items and wording with other
    numbers (`renumbered`), its question in neither `exclude` nor another twin. An honest
    policy answers twins as often as the originals, which come from the same generator."""
    rng = random.Random(seed)
    seen = set(exclude)
    out = []
    for spec in specs:
        for _ in range(1000):  # a family has hundreds of number pairs: this always ends early
            twin = renumbered(spec, rng)
            question = render(twin, None, rng)
            if question not in seen:
                break
        seen.add(question)
        out.append({"question": question, "answer": str(twin.answer)})
    return out
