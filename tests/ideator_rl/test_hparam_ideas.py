"""The `hparam` implementer: ideas written as NAME=VALUE become the edits that set them."""

from __future__ import annotations

import pytest

from agent.knobs import HparamIdeaError, edits_for, values_from_text
from environments import resolve_environment


def test_assignments_become_knob_values_and_edits(toy_env) -> None:
    env = resolve_environment(str(toy_env))
    assert values_from_text(env, "tiny", "lr=3e-3 steps=200") == {"lr": 0.003, "steps": 200}
    assert values_from_text(env, "tiny", "set LR: 0.1, and st=50.") == {"lr": 0.1, "steps": 50}
    edits = edits_for(env, values_from_text(env, "tiny", "lr=0.1"))
    assert "LR = 0.01\n=======\nLR = 0.1" in edits


@pytest.mark.parametrize(
    ("idea", "message"),
    [
        ("lr=5", "outside its range [0.0001, 1]"),
        ("momentum=0.9", "'momentum' is not a knob of toy"),
        ("steps=12.5", "not a whole number"),
        ("lr=fast", "not a number"),
        ("lr=0.1 lr=0.2", "set twice"),
        ("use a cosine schedule", "sets no knob"),
    ],
)
def test_ideas_it_cannot_implement_say_why(toy_env, idea: str, message: str) -> None:
    env = resolve_environment(str(toy_env))
    with pytest.raises(HparamIdeaError, match=message.replace("[", r"\[").replace("]", r"\]")):
        values_from_text(env, "tiny", idea)
