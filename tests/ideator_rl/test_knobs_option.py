"""--knobs: the tiny ideator's idea space narrowed to some of the environment's knobs."""

from __future__ import annotations

import json
import random
import re

import pytest

from agent.ideator_rl.config import TrainIdeatorConfig
from agent.ideator_rl.tiny_ideator import PROMPT_FILE, build_tiny_ideator, example, ideator_knobs
from environments import resolve_environment
from tests.conftest import assert_one_line_error


def test_ideator_knobs_picks_in_manifest_order_and_names_unknown_ones(toy_env) -> None:
    env = resolve_environment(str(toy_env))
    assert [k.name for k in ideator_knobs(env, "tiny")] == ["lr", "steps"]
    assert [k.name for k in ideator_knobs(env, "tiny", ["steps", "lr"])] == ["lr", "steps"]
    assert [k.name for k in ideator_knobs(env, "tiny", ["steps"])] == ["steps"]
    with pytest.raises(
        ValueError, match=r"toy has no knob momentum at scale tiny; choose from lr, steps"
    ):
        ideator_knobs(env, "tiny", ["lr", "momentum"])
    with pytest.raises(ValueError, match="names no knob"):
        ideator_knobs(env, "tiny", [])


def test_config_parses_knobs_and_keeps_them_to_the_tiny_model() -> None:
    assert TrainIdeatorConfig().knob_names is None  # the default: every knob
    assert TrainIdeatorConfig(knobs="lr, warmup_steps,").knob_names == ["lr", "warmup_steps"]
    with pytest.raises(ValueError, match="--knobs shapes the tiny ideator"):
        TrainIdeatorConfig(model="some/hub-model", knobs="lr")


def test_warm_up_examples_prompt_and_card_hold_only_the_chosen_knobs(toy_env, tmp_path) -> None:
    env = resolve_environment(str(toy_env))
    chosen = ideator_knobs(env, "tiny", ["steps"])
    rng = random.Random(0)
    for _ in range(50):
        assigned = re.findall(r"(\w+)=", example(chosen, rng).split("</think>")[1])
        assert assigned == ["steps"]
    out = build_tiny_ideator(env, "tiny", tmp_path / "tiny", examples=40, steps=2, knobs=["steps"])
    prompt = (out / PROMPT_FILE).read_text()
    assert "Knobs: steps." in prompt and "lr" not in prompt
    card = json.loads((out / "ideator_card.json").read_text())
    assert list(card["grid"]) == ["steps"]


def test_bad_knobs_are_one_line_errors_before_anything_is_written(cli, toy_env, tmp_path) -> None:
    runs = tmp_path / "runs"
    res = cli("train-ideator", "--env", toy_env, "--run-dir", runs, "--knobs", "lr,momentum")
    assert res.rc == 2, res
    assert_one_line_error(res, "--knobs: toy has no knob momentum", "choose from lr, steps")
    res = cli(
        "train-ideator", "--env", toy_env, "--run-dir", runs, "--knobs", "lr", "--model", "a/b"
    )
    assert res.rc == 2, res
    assert_one_line_error(res, "--knobs shapes the tiny ideator")
    assert not list(runs.glob("ideator/*")), "a refused training left files behind"
