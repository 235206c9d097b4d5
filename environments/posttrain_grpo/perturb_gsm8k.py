"""Rule-based, answer-preserving perturbations of GSM8K word problems.

Used by the protected evaluator to measure robustness: each rule rewrites a question so that its
gold answer is unchanged. Standard library only; loaded by file path, not imported as a package.
"""

from __future__ import annotations

import hashlib
import random
import re
import runpy
from fractions import Fraction
from pathlib import Path

KINDS = ("rename", "reorder", "words", "distractor", "notation")

# Names swap only within their group, so pronouns ("he", "she") and titles ("Mr.") stay right.
# Names that are also common words or months (May, Will, Bill, Penny, Rose) are left out.
_MALE = (
    "John",
    "James",
    "Mark",
    "Peter",
    "Tom",
    "Mike",
    "Tim",
    "Robert",
    "Adam",
    "Jason",
    "Bob",
    "Paul",
    "Billy",
    "Charlie",
    "Jim",
    "George",
    "David",
    "Jack",
    "Raymond",
    "Ben",
    "Steve",
    "Carl",
    "Jake",
    "Joe",
    "Richard",
    "Harry",
    "Jerry",
    "Marcus",
    "Carlos",
    "Fred",
    "Brian",
    "Bobby",
    "Jeff",
    "Henry",
    "Aaron",
    "Daniel",
    "Juan",
    "Gary",
    "Andy",
    "Stanley",
    "Luke",
    "Tony",
    "Nick",
    "Anthony",
    "Walter",
    "Kevin",
    "Eric",
    "Brandon",
    "Kyle",
    "Oliver",
    "Thomas",
    "Michael",
    "Greg",
    "Larry",
    "Sean",
    "Josh",
    "Johnny",
    "Joey",
    "Jimmy",
    "Ted",
    "Ryan",
    "Andrew",
    "Matthew",
    "Stephen",
    "Gerald",
    "Seth",
    "Dylan",
    "Mason",
    "Cody",
    "Russell",
)
_FEMALE = (
    "Janet",
    "Sally",
    "Sarah",
    "Martha",
    "Amy",
    "Mary",
    "Jane",
    "Hannah",
    "Julie",
    "Julia",
    "Maria",
    "Jenny",
    "Dora",
    "Anne",
    "Susan",
    "Ashley",
    "Sharon",
    "Ellen",
    "Melanie",
    "Jill",
    "Samantha",
    "Cindy",
    "Sandra",
    "Sophia",
    "Lily",
    "Jenna",
    "Carla",
    "Emma",
    "Naomi",
    "Betty",
    "Wendy",
    "Erica",
    "Alice",
    "Nancy",
    "Andrea",
    "Laura",
    "Rachel",
    "Linda",
    "Karen",
    "Lisa",
    "Monica",
    "Olivia",
    "Emily",
    "Rebecca",
    "Vanessa",
    "Claire",
    "Brianna",
    "Heather",
    "Judy",
    "Marissa",
    "Brittany",
    "Carly",
    "Erin",
    "Madeline",
    "Greta",
    "Christina",
    "Jessica",
    "Sue",
    "Sara",
    "Carmen",
    "Shannon",
    "Anna",
    "Carol",
    "Beatrice",
)
_UNISEX = ("Alex", "Sam", "Chris", "Jordan", "Taylor", "Jamie", "Casey", "Riley", "Morgan", "Kelly")
_GROUPS = (_MALE, _FEMALE, _UNISEX)

# The number words problems.py writes its "words" variants with, from that file beside this
# one, by path: the evaluator loads both files that way (the candidate's repo is not on the path).
_number_words = runpy.run_path(str(Path(__file__).with_name("problems.py")))["number_words"]
_ONES = tuple(_number_words(n) for n in range(20))  # zero .. nineteen
_TENS = tuple(_number_words(n) for n in range(20, 100, 10))  # twenty .. ninety

# A sentence ends at . ! ? (plus closing quotes) followed by space and a capital, digit or "$".
_BOUNDARY = re.compile(r"[.!?][\"”’')]*(\s+)(?=[\"“$€£]?[A-Z0-9])")
_ABBREV = {
    "mr.",
    "mrs.",
    "ms.",
    "dr.",
    "st.",
    "jr.",
    "sr.",
    "prof.",
    "vs.",
    "etc.",
    "e.g.",
    "i.e.",
    "a.m.",
    "p.m.",
    "no.",
    "inc.",
    "co.",
    "mt.",
    "ft.",
    "oz.",
    "lb.",
    "lbs.",
}

# Reorder safety. Neither sentence of a swap may start with a word that leans on an earlier
# sentence, nor contain a word that marks time or a prior quantity.
_SEQ_START = {
    "he",
    "she",
    "they",
    "it",
    "his",
    "her",
    "their",
    "its",
    "this",
    "that",
    "these",
    "those",
    "then",
    "after",
    "afterwards",
    "later",
    "next",
    "finally",
    "so",
    "if",
    "but",
    "also",
    "each",
    "when",
    "now",
    "however",
    "meanwhile",
    "and",
    "or",
    "therefore",
    "thus",
    "another",
    "both",
    "all",
    "while",
    "since",
    "as",
    "first",
    "second",
    "third",
    "last",
    "together",
    "instead",
    "additionally",
    "still",
    "once",
    "such",
    "what",
    "how",
    "every",
    "half",
}
_REF_WORDS = re.compile(
    r"\b(?:remaining|remainder|rest|then|left|after|afterwards|that|this|these|those|before|"
    r"another|again|additional|extra|still|now|already|total|too|also|same|other|others|"
    r"instead|new|original|originally|initially|later|previous|next|first|last|finally|end|"
    r"until|both|together|whole|all)\b",
    re.IGNORECASE,
)
# "more"/"less" without "than" is a change over time ("buys 3 more"), not a comparison.
_CHANGE = re.compile(r"\b(?:more|less|fewer)\b(?!.*\bthan\b)", re.IGNORECASE)
# The sentence that moves earlier must not point back with a pronoun.
_PRONOUN = re.compile(r"\b(?:he|she|him|her|his|hers|they|them|their|it|its)\b", re.IGNORECASE)
# Nor with a determiner to something the other sentence introduced ("the cake", "each box").
_DEFINITE = re.compile(r"\b(?:the|each|every|its)\s+(\w+)(?:\s+(\w+))?", re.IGNORECASE)

# Irrelevant facts about places and things, never people: a new person before the question
# would give its "he"/"she" a second possible referent. Each lists words that must not occur in
# the question, so the fact cannot be mistaken for part of the problem.
_DISTRACTORS: tuple[tuple[str, frozenset[str]], ...] = tuple(
    (text, frozenset(keys.split()))
    for text, keys in (
        ("The town library down the road has {n} public computers.", "library computer computers"),
        ("A lighthouse on the northern coast is {n} meters tall.", "lighthouse lighthouses coast"),
        ("The local museum opened {n} years ago.", "museum museums"),
        ("The bakery across town sells {n} kinds of bread.", "bakery bread breads"),
        ("A nearby zoo is home to {n} penguins.", "zoo penguin penguins"),
        ("The weather station recorded {n} rainy days last year.", "weather rain rainy days"),
        ("The neighbors' dog is {n} years old.", "dog dogs neighbor neighbors"),
        ("The old bridge over the river has {n} stone arches.", "bridge river arch arches"),
        ("A popular podcast has released {n} episodes so far.", "podcast episode episodes"),
        ("The community garden down the street has {n} rose bushes.", "garden rose roses"),
        ("The city aquarium keeps {n} kinds of jellyfish.", "aquarium jellyfish fish"),
        ("A mountain trail in the national park is {n} kilometers long.", "trail park mountain"),
        ("The train station downtown has {n} platforms.", "train station platform"),
        ("A chess club in the capital has {n} members.", "chess club member members"),
        ("The cinema on the main street has {n} seats.", "cinema seat seats movie theater"),
        ("A tall oak tree in the town square is {n} years old.", "oak tree trees square"),
    )
)

# Number words 0..100 and their values; "hundred" alone reads as 100 ("a hundred").
_WORD_VALUE = (
    {w: i for i, w in enumerate(_ONES)}
    | {
        t + (f"-{_ONES[u]}" if u else ""): 20 + 10 * i + u
        for i, t in enumerate(_TENS)
        for u in range(10)
    }
    | {"hundred": 100, "one hundred": 100}
)
_INT_WORDS = {v: w for w, v in _WORD_VALUE.items() if w != "hundred"}
# Tens with an optional hyphenated unit ("twenty-one"), "one hundred", then the single words.
_NUM_WORD = "|".join(
    [rf"(?:{'|'.join(_TENS)})(?:-(?:{'|'.join(_ONES[1:10])}))?", "(?:one )?hundred", *_ONES]
)
_NUMBER = re.compile(
    rf"(?<![\w.])(\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)|\b({_NUM_WORD})\b",
    re.IGNORECASE,
)


def numbers_in(text: str) -> list[Fraction]:
    """Every numeric value in `text`: digits (with commas, decimals, "$", "%") and the number
    words zero..one hundred. "50%" reads as 50 and "twenty-one" as 21."""
    values: list[Fraction] = []
    for m in _NUMBER.finditer(text):
        if m.group(1):
            values.append(Fraction(m.group(1).replace(",", "")))
        else:
            values.append(Fraction(_WORD_VALUE[m.group(2).lower()]))
    return values


def gold_answer(answer_field: str) -> str:
    """The final answer of a GSM8K answer field: text after the last "####", no commas."""
    return answer_field.rsplit("####", 1)[-1].replace(",", "").strip()


def split_sentences(text: str) -> tuple[list[str], list[str]]:
    """Sentences and the whitespace between them (one fewer), so that joining them back
    alternately restores `text` exactly. Decimals and abbreviations do not split."""
    sentences: list[str] = []
    gaps: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        last_word = text[start : m.start(1)].rsplit(None, 1)[-1].rstrip("\"”’')").lower()
        if last_word in _ABBREV or re.fullmatch(r"[a-z]\.", last_word):  # "Mr.", "J. K."
            continue
        sentences.append(text[start : m.start(1)])
        gaps.append(m.group(1))
        start = m.end(1)
    sentences.append(text[start:])
    return sentences, gaps


def _join(sentences: list[str], gaps: list[str]) -> str:
    """Inverse of split_sentences."""
    return "".join(s + g for s, g in zip(sentences, [*gaps, ""], strict=True))


def _is_question(sentence: str) -> bool:
    return sentence.rstrip("\"”’') ").endswith("?")


def _question_index(sentences: list[str]) -> int:
    """Index of the final question sentence (the last one ending in "?", else the last)."""
    asks = [i for i, s in enumerate(sentences) if _is_question(s)]
    return asks[-1] if asks else len(sentences) - 1


def _tokens(text: str) -> set[str]:
    """The words of `text`, as a set (cheaper than one regex search per name)."""
    return set(re.findall(r"[A-Za-z]+", text))


def _rename(question: str, rng: random.Random) -> str | None:
    """Known first names -> unused names of the same group, everywhere they occur."""
    tokens = _tokens(question)
    lowered = {t.lower() for t in tokens}
    mapping: dict[str, str] = {}
    for group in _GROUPS:
        present = [n for n in group if n in tokens]
        if present:
            free = [n for n in group if n.lower() not in lowered]
            # A name with no free partner left keeps its name.
            picks = rng.sample(free, min(len(present), len(free)))
            mapping.update(zip(present, picks, strict=False))
    if not mapping:
        return None
    # One pass with all names at once, so a new name is never renamed again.
    pattern = re.compile(rf"\b({'|'.join(mapping)})\b")
    return pattern.sub(lambda m: mapping[m.group(1)], question)


def _first_word(sentence: str) -> str:
    m = re.search(r"[A-Za-z]+", sentence)
    return m.group(0) if m else ""


def _reorder(question: str, rng: random.Random) -> str | None:
    """Swap two adjacent self-contained statements that come before the question."""
    sentences, gaps = split_sentences(question)
    # Only statements before the first question (and before the last sentence) may move.
    stop = next((i for i, s in enumerate(sentences) if _is_question(s)), len(sentences) - 1)

    def movable(s: str) -> bool:
        first = re.match(r"[\"“]?([A-Z][A-Za-z]*)", s)  # a capital, so it re-splits the same
        return (
            first is not None
            and first.group(1).lower() not in _SEQ_START
            and not _REF_WORDS.search(s)
            and not _CHANGE.search(s)
        )

    def refers_to(later: str, earlier: str) -> bool:
        if _PRONOUN.search(later):
            return True
        words = {w.lower().rstrip("s") for w in re.findall(r"[A-Za-z]+", earlier)}
        return any(
            w.lower().rstrip("s") in words
            for m in _DEFINITE.finditer(later)
            for w in m.groups()
            if w
        )

    pairs = [
        i
        for i in range(stop - 1)
        if movable(sentences[i])
        and movable(sentences[i + 1])
        and not refers_to(sentences[i + 1], sentences[i])
        and _first_word(sentences[i]) != _first_word(sentences[i + 1])  # same actor: a sequence
    ]
    if not pairs:
        return None
    i = rng.choice(pairs)
    sentences[i], sentences[i + 1] = sentences[i + 1], sentences[i]
    return _join(sentences, gaps)


# A plain integer: not part of a decimal, money, time, percentage, fraction, range or ordinal.
_PLAIN_INT = re.compile(r"(?<![\w$€£#.,:/])(?<!\d-)(\d+)(?![\w%¢°/:$]|[.,-]\d| \d+/\d| hundred)")


def _words(question: str, rng: random.Random) -> str | None:
    """Plain integers 0..100 spelled out ("21" -> "twenty-one"); the same for every seed."""

    def spell(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n > 100:
            return m.group(0)
        word = _INT_WORDS[n]
        # Capitalise at the start of the text or of a sentence.
        if m.start() == 0 or re.search(r"[.!?]\s+$", question[: m.start()]):
            word = word[0].upper() + word[1:]
        return word

    out = _PLAIN_INT.sub(spell, question)
    return None if out == question else out


def _distractor(question: str, rng: random.Random) -> str | None:
    """One irrelevant fact with one number, inserted just before the final question."""
    lowered = {t.lower() for t in _tokens(question)}
    options = [text for text, keys in _DISTRACTORS if lowered.isdisjoint(keys)]
    if not options:
        return None
    sentence = rng.choice(options).format(n=rng.randint(3, 95))
    sentences, gaps = split_sentences(question)
    q = _question_index(sentences)
    sentences.insert(q, sentence)
    gaps.insert(q, " ")
    return _join(sentences, gaps)


def _toggle_commas(num: str) -> str:
    """Numbers with thousands separators lose them; plain integers >= 1000 gain them."""
    if "," in num:
        return num.replace(",", "")
    whole, dot, _ = num.partition(".")
    if dot or int(whole) < 1000 or whole.startswith("0"):
        return num
    return f"{int(whole):,}"


_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
# One pass over all notations, so that no number is rewritten twice.
_NOTATION = re.compile(
    rf"(?P<cur>[$€])\s?(?P<money>{_NUM})(?P<scale>\s+(?:thousand|million|billion))?"
    rf"(?P<bill>\s+(?:bills?|notes?)\b)?"
    rf"|(?P<money2>{_NUM})\$"
    rf"|(?P<pct>{_NUM})\s?%"
    r"|(?<![\w$€.,:/\-])(?P<big>\d{1,3}(?:,\d{3})+|\d{4,})(?![\w.,:/\-]?\d|\w)"
)


def _notation(question: str, rng: random.Random) -> str | None:
    """Money and percent in words ("$5" -> "5 dollars", "50%" -> "50 percent") and thousands
    separators toggled ("1200" <-> "1,200"); the same for every seed."""

    def rewrite(m: re.Match[str]) -> str:
        if m.group("money"):
            unit = "dollar" if m.group("cur") == "$" else "euro"
            num, scale = _toggle_commas(m.group("money")), m.group("scale") or ""
            if m.start() and question[m.start() - 1].isalnum():  # "for$ 4" -> "for 4 dollars"
                num = " " + num
            if m.group("bill"):  # "$20 bills" -> "20-dollar bills"
                return f"{num}{scale}-{unit}{m.group('bill')}"
            return f"{num}{scale} {unit}s"
        if m.group("money2"):  # "6000$"
            return f"{_toggle_commas(m.group('money2'))} dollars"
        if m.group("pct"):
            return f"{_toggle_commas(m.group('pct'))} percent"
        num = m.group("big")
        # Years ("in 2010", "a 1959 penny") and model names ("Widgeteer 3000") stay as they are.
        year = "," not in num and 1900 <= int(num) <= 2099
        named = re.search(r"[A-Z]\w* $", question[: m.start()])
        return num if year or named else _toggle_commas(num)

    out = _NOTATION.sub(rewrite, question)
    return None if out == question else out


_RULES = dict(zip(KINDS, (_rename, _reorder, _words, _distractor, _notation), strict=True))


def _rng(question: str, kind: str, seed: int) -> random.Random:
    # Stable across processes, unlike hash(): derived from the seed, the kind and the text.
    digest = hashlib.sha256(f"{seed}\x00{kind}\x00{question}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def perturb(question: str, kind: str, seed: int) -> str | None:
    """A variant of `question` with the same answer, or None when rule `kind` cannot apply."""
    if kind not in _RULES:
        raise ValueError(f"unknown perturbation kind {kind!r}; expected one of {KINDS}")
    return _RULES[kind](question, _rng(question, kind, seed))


def variants(question: str, seed: int) -> dict[str, str]:
    """Every kind that applies to `question`, mapped to its variant."""
    out = {kind: perturb(question, kind, seed) for kind in KINDS}
    return {kind: text for kind, text in out.items() if text is not None}
