"""Duplicate ideas are caught before they cost a run; different ideas are not."""

from __future__ import annotations

import pytest

from agent.dedup import DuplicateIndex, normalized

SEEN = {
    "cos": "Use a cosine learning-rate schedule with warmup",
    "lr": "Set the learning rate to 0.001",
    "swiglu": "Replace the GELU MLP with a SwiGLU MLP",
}


@pytest.fixture
def index() -> DuplicateIndex:
    idx = DuplicateIndex()
    for idea_id, text in SEEN.items():
        idx.add(idea_id, text)
    return idx


@pytest.mark.parametrize(
    ("text", "of", "signal"),
    [
        ("use a Cosine LR schedule, with warmup.", "cos", "normalized"),
        ("Switch the learning rate schedule to cosine with warm up", "cos", "ngram"),
        ("replace the gelu mlp with a swiglu mlp!!", "swiglu", "normalized"),
    ],
)
def test_rewordings_are_duplicates(index, text, of, signal) -> None:
    dup = index.check(text)
    assert dup is not None and dup.of == of and dup.signal == signal


@pytest.mark.parametrize(
    "text",
    [
        "Use a linear learning-rate schedule with warmup",  # one word, a different idea
        "Set the learning rate to 0.002",  # another value is another experiment
        "cosine schedule",  # too short to call a reordering
        "Add QK-norm to attention",
    ],
)
def test_different_ideas_are_not(index, text) -> None:
    assert index.check(text) is None


def test_embedding_signal_when_a_model_is_given() -> None:
    # A stand-in embedding that maps two unrelated-looking texts to the same direction, to
    # check the wiring; real models come from local_embedder().
    def embed(texts):
        return [[1.0, 0.0] if "momentum" in t or "heavy ball" in t else [0.0, 1.0] for t in texts]

    idx = DuplicateIndex(embed=embed)
    idx.add("m", "Add Nesterov momentum")
    dup = idx.check("use heavy ball updates")
    assert dup is not None and dup.signal == "embedding"
    assert idx.check("Add dropout") is None


def test_normalized_ignores_order_case_and_filler() -> None:
    assert normalized("Use the AdamW optimizer") == normalized("adamw optimizer, use it")
    assert len(DuplicateIndex()) == 0


def test_hyperparameter_ideas_with_other_values_are_different_experiments() -> None:
    idx = DuplicateIndex()
    idx.add("a", "Hyper-parameters: lr=0.03, steps=100")
    assert idx.check("Hyper-parameters: lr=0.003333, steps=100") is None
    assert idx.check("Hyper-parameters: lr=0.01, steps=55") is None
    dup = idx.check("Hyper-parameters: steps=100, lr=0.030")
    assert dup is not None and dup.of == "a"


def test_matches_lists_every_near_duplicate() -> None:
    index = DuplicateIndex()
    for n, text in enumerate(
        ["lr=0.1 steps=500", "steps=500 lr=0.1", "lr=0.3", "lr=0.1 steps=500"]
    ):
        index.add(str(n), text)
    assert index.matches("lr=0.1 steps=500") == {"0", "1", "3"}
    assert index.matches("use dropout") == set()
