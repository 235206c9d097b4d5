"""Catching duplicate ideas before they cost a run.

Two cheap signals always: the normalized text (case, punctuation, stop words and word order
of a bag of words ignored), and word-shingle plus character-trigram Jaccard similarity, which
catches rewordings like "use a cosine LR schedule" vs "switch the learning rate schedule to
cosine". An embedding model, when one is available locally, adds a semantic signal.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_NUMBER = re.compile(r"(?<![a-z_])-?\d+(?:\.\d+)?(?:e-?\d+)?", re.IGNORECASE)
# Words that change nothing about what an idea does.
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "of",
        "in",
        "on",
        "for",
        "and",
        "or",
        "with",
        "by",
        "from",
        "into",
        "at",
        "as",
        "is",
        "are",
        "be",
        "we",
        "our",
        "use",
        "using",
        "try",
        "apply",
        "add",
        "adding",
        "instead",
        "replace",
        "replacing",
        "switch",
        "change",
        "changing",
        "it",
        "its",
        "this",
        "that",
        "than",
        "then",
        "so",
        "which",
        "will",
        "should",
    ]
)
# Spellings of the same thing.
_SYNONYMS = {
    "lr": "learning_rate",
    "learning": "learning_rate",
    "rate": "",
    "warm": "warmup",
    "optimiser": "optimizer",
    "normalisation": "normalization",
}

Embed = Callable[[Sequence[str]], list[list[float]]]


def tokens(text: str) -> list[str]:
    """Lower-case content words, synonyms merged."""
    out = []
    for w in _WORD.findall(text.lower()):
        w = _SYNONYMS.get(w, w)
        if w[:1].isdigit():
            with contextlib.suppress(ValueError):
                w = repr(float(w))  # 0.030 and 0.03 are the same value
        if w and w not in _STOP:
            out.append(w)
    return out


def normalized(text: str) -> str:
    """A key equal for ideas that differ only in case, punctuation, stop words or word order."""
    return " ".join(sorted(set(tokens(text))))


def shingles(text: str) -> set[str]:
    words = tokens(text)
    grams = set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}
    squashed = " ".join(words)
    grams |= {squashed[i : i + 3] for i in range(max(0, len(squashed) - 2))}
    return grams


def _numbers(text: str) -> frozenset[str]:
    """The numbers an idea names, normalized (0.10 == 0.1)."""
    out = set()
    for m in _NUMBER.findall(text):
        try:
            out.add(repr(float(m)))
        except ValueError:
            continue
    return frozenset(out)


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _cosine(u: list[float], v: list[float]) -> float:
    dot = sum(x * y for x, y in zip(u, v, strict=True))
    nu, nv = math.sqrt(sum(x * x for x in u)), math.sqrt(sum(y * y for y in v))
    return dot / (nu * nv) if nu and nv else 0.0


@dataclass
class Duplicate:
    of: str  # the id of the earlier idea
    similarity: float
    signal: str  # "normalized" | "ngram" | "embedding"


@dataclass
class DuplicateIndex:
    """The ideas seen so far; `check` says whether a new one repeats one of them."""

    ngram_threshold: float = 0.8
    embedding_threshold: float = 0.92
    embed: Embed | None = None
    _keys: dict[str, str] = field(default_factory=dict)
    _normal: dict[str, str] = field(default_factory=dict)
    _grams: dict[str, set[str]] = field(default_factory=dict)
    _words: dict[str, set[str]] = field(default_factory=dict)
    _numbers: dict[str, frozenset[str]] = field(default_factory=dict)
    _vectors: dict[str, list[float]] = field(default_factory=dict)

    def check(self, text: str) -> Duplicate | None:
        key = normalized(text)
        if key in self._keys:
            return Duplicate(self._keys[key], 1.0, "normalized")
        grams, words = shingles(text), set(tokens(text))
        numbers = _numbers(text)
        best = (0.0, "")
        for idea, g in self._grams.items():
            if self._numbers[idea] != numbers:
                continue  # other values are another experiment: lr 0.03 is not lr 0.003
            sim = jaccard(grams, g)
            # Shingles catch rewordings; the word set catches reorderings ("cosine LR
            # schedule" vs "LR schedule: cosine") once there are enough words to judge.
            if len(words) >= 3 and len(self._words[idea]) >= 3:
                sim = max(sim, jaccard(words, self._words[idea]))
            best = max(best, (sim, idea))
        if best[0] >= self.ngram_threshold:
            return Duplicate(best[1], best[0], "ngram")
        same_numbers = {i: v for i, v in self._vectors.items() if self._numbers[i] == numbers}
        if self.embed is not None and same_numbers:
            vec = self.embed([text])[0]
            sim, idea = max((_cosine(vec, v), i) for i, v in same_numbers.items())
            if sim >= self.embedding_threshold:
                return Duplicate(idea, sim, "embedding")
        return None

    def matches(self, text: str) -> set[str]:
        """Every stored idea that `text` near-duplicates (by the same signals as `check`), the
        text's n-grams and embedding computed once for all of them."""
        key, numbers = normalized(text), _numbers(text)
        grams, words = shingles(text), set(tokens(text))
        vec: list[float] | None = None
        found = set()
        for idea, g in self._grams.items():
            if self._normal[idea] == key:
                found.add(idea)
                continue
            if self._numbers[idea] != numbers:
                continue
            sim = jaccard(grams, g)
            if len(words) >= 3 and len(self._words[idea]) >= 3:
                sim = max(sim, jaccard(words, self._words[idea]))
            if sim >= self.ngram_threshold:
                found.add(idea)
            elif self.embed is not None and idea in self._vectors:
                vec = vec if vec is not None else self.embed([text])[0]
                if _cosine(vec, self._vectors[idea]) >= self.embedding_threshold:
                    found.add(idea)
        return found

    def add(self, idea_id: str, text: str) -> None:
        self._keys.setdefault(normalized(text), idea_id)
        self._normal[idea_id] = normalized(text)
        self._grams[idea_id] = shingles(text)
        self._words[idea_id] = set(tokens(text))
        self._numbers[idea_id] = _numbers(text)
        if self.embed is not None:
            self._vectors[idea_id] = self.embed([text])[0]

    def __len__(self) -> int:
        return len(self._grams)


def local_embedder() -> Embed | None:
    """A sentence-embedding model if one is installed with its weights (no downloads)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    try:
        model = SentenceTransformer("all-MiniLM-L6-v2", local_files_only=True)
    except Exception:  # no weights on disk: the cheap signals still run
        return None
    return lambda texts: [list(map(float, v)) for v in model.encode(list(texts))]
