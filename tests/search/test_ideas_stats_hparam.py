"""Reading ideas from ideator answers, the screening baseline's interval, and the hparam ideator."""

from __future__ import annotations

import math
import shutil

import pytest

from agent.implementer.edits import parse_edits
from agent.knobs import knobs_for, propose
from agent.search.ideas_parse import IdeaParseError, parse_ideas
from agent.search.stats import interval, t95
from environments import load_environment


def test_tagged_ideas() -> None:
    text = (
        "Here you go.\n<idea>Use a cosine schedule\nwith warmup.</idea>\n"
        "<IDEA>Add QK-norm to attention</IDEA>"
    )
    assert parse_ideas(text) == ["Use a cosine schedule with warmup.", "Add QK-norm to attention"]


def test_json_ideas_plain_fenced_and_objects() -> None:
    assert parse_ideas('["Use label smoothing 0.1", "Tie input and output embeddings"]') == [
        "Use label smoothing 0.1",
        "Tie input and output embeddings",
    ]
    fenced = (
        '```json\n{"ideas": [{"title": "SwiGLU", "description": "Replace GELU with SwiGLU"}]}\n```'
    )
    assert parse_ideas(fenced) == ["SwiGLU: Replace GELU with SwiGLU"]


def test_numbered_ideas_span_lines() -> None:
    text = (
        "1. Use a cosine schedule\n   decaying to 10%.\n2) Add dropout of 0.1 to attention\n"
        "- Use RMSNorm instead of LayerNorm"
    )
    assert parse_ideas(text) == [
        "Use a cosine schedule decaying to 10%.",
        "Add dropout of 0.1 to attention",
        "Use RMSNorm instead of LayerNorm",
    ]


@pytest.mark.parametrize("text", ["", "I have no ideas today.", "<idea>ok</idea>", "[]", "1. hi"])
def test_no_ideas_is_an_error_naming_the_formats(text) -> None:
    with pytest.raises(IdeaParseError, match="no parseable idea"):
        parse_ideas(text)


def test_interval_and_t_quantiles() -> None:
    assert t95(1) == 12.706 and t95(30) == 2.042 and t95(2.7) == t95(2)
    assert abs(t95(200) - 1.972) < 0.005
    iv = interval([1.0, 2.0, 3.0])
    assert iv.mean == 2.0 and iv.half_width == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert math.isinf(interval([5.0]).half_width) and "n=1" in str(interval([5.0]))


@pytest.fixture
def toy(tmp_path):
    from tests.conftest import TOY_ENV

    dst = tmp_path / "toy"
    shutil.copytree(TOY_ENV, dst)
    return load_environment(dst)


def test_hparam_proposals_are_valid_edits_within_the_knob_ranges(toy) -> None:
    proposals = propose(toy, "tiny", [], 4)
    assert len({p.idea for p in proposals}) == 4
    for p in proposals:
        assert 0.0001 <= p.values["lr"] <= 1.0 and 10 <= p.values["steps"] <= 2000
        edits = parse_edits(p.edits)
        assert [e.path for e in edits] == ["train.py", "train.py"]
        assert f"STEPS = {p.values['steps']}" in edits[1].replace


def test_hparam_edits_apply_to_the_baseline(toy, tmp_path) -> None:
    p = propose(toy, "tiny", [], 1)[0]
    text = (toy.repo / "train.py").read_text()
    for e in parse_edits(p.edits):
        assert text.count(e.search) == 1
        text = text.replace(e.search, e.replace)
    compile(text, "train.py", "exec")
    assert f"STEPS = {p.values['steps']}" in text


def test_hparam_is_deterministic_given_the_history(toy) -> None:
    history = [
        ({"lr": 0.01, "steps": 100}, 0.5),
        ({"lr": 0.1, "steps": 300}, 0.9),
        ({"lr": 0.5, "steps": 50}, None),
    ]
    a = [p.values for p in propose(toy, "tiny", history, 3, seed=1)]
    b = [p.values for p in propose(toy, "tiny", history, 3, seed=1)]
    assert a == b


def test_an_environment_without_knobs_says_what_to_do(toy) -> None:
    toy.manifest.knobs.clear()
    with pytest.raises(ValueError, match=r"needs \[\[knobs\]\]"):
        knobs_for(toy, "tiny")


def test_hparam_edits_of_every_knob_kind_keep_the_real_environment_valid(tmp_path) -> None:
    """pretrain_nanogpt's knobs: floats, ints, and a quoted choice (`schedule`)."""
    from environments import resolve_environment
    from environments.manifest import knob_regex

    env = resolve_environment("pretrain_nanogpt")
    proposal = propose(env, "tiny", [], 1, seed=3)[0]
    text = (env.repo / "config.py").read_text()
    for e in parse_edits(proposal.edits):
        assert text.count(e.search) == 1
        text = text.replace(e.search, e.replace)
    compile(text, "config.py", "exec")
    schedule = next(k for k in env.manifest.knobs if k.name == "schedule")
    written = knob_regex(schedule).search(text)
    assert written is not None and written.group(1) == proposal.values["schedule"]
    assert proposal.values["schedule"] in ("linear", "cosine", "constant")


def test_hparam_starts_with_one_knob_moves_then_tpe(toy) -> None:
    from agent.knobs import one_knob_moves

    moves = one_knob_moves(knobs_for(toy, "tiny"))
    # lr is log-scaled: x3 and /3; steps is linear in [10, 2000]: half-way up and down.
    assert moves == [
        {"lr": 0.03, "steps": 100},
        {"lr": 0.01, "steps": 1050},
        {"lr": 0.003333, "steps": 100},
        {"lr": 0.01, "steps": 55},
    ]
    first = propose(toy, "tiny", [], 3)
    assert [p.values for p in first] == moves[:3]
    history = [(m, 0.5) for m in moves]
    after = propose(toy, "tiny", history, 2)  # the moves are used up: TPE proposes
    assert all(p.values not in moves for p in after)
