"""A 2-epoch LLM search on the toy environment, against a local OpenAI-protocol server.

The server answers by what it is asked: ideation prompts get scripted ideas (including a
duplicate), implementation prompts get edits (one idea cannot be implemented, one passes
validation but fails its run).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from agent.executor import RunRequest
from agent.llm import make_client
from agent.search.archive import Archive
from agent.search.config import SearchConfig
from agent.search.ideators import LLMIdeator
from agent.search.loop import run_search
from agent.store import Store
from environments import load_environment
from tests.llm_server import llm_server_fixture  # noqa: F401

# Searches with an LLM ideator against a local server, runs in the local sandbox.
pytestmark = pytest.mark.slow

GOOD = "Raise the learning rate to 0.1 and train for 300 steps"
IMPOSSIBLE = "Replace gradient descent with a closed-form quantum solver"
FAILING = "Train for 150 steps with a guard that aborts on divergence"
DUPLICATE = "Raise the learning rate to 0.1, and train for 300 steps."
BETTER = "Raise the learning rate to 0.2 and train for 400 steps"
EXPLORE = "Initialize the weights at zero instead of small random values"


def edit(search: str, replace: str) -> str:
    return f"train.py\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


EDITS = {
    GOOD: edit("LR = 0.01\nSTEPS = 100", "LR = 0.1\nSTEPS = 300"),
    FAILING: edit(
        "STEPS = 100",
        'STEPS = 150\nif "--smoke" not in sys.argv:\n'
        '    raise RuntimeError("diverged: loss is nan")',
    ),
    BETTER: edit("LR = 0.01\nSTEPS = 100", "LR = 0.2\nSTEPS = 400"),
    EXPLORE: edit(
        "w = np.random.default_rng(seed).normal(scale=0.01, size=N_FEATURES)",
        "w = np.zeros(N_FEATURES)",
    ),
}


def tagged(*ideas: str) -> str:
    return "\n".join(f"<idea>{i}</idea>" for i in ideas)


def answer(request: dict[str, Any]) -> str:
    text = json.dumps(request)
    if "research scientist proposing" in text:  # the ideation system prompt
        if "The best ideas so far" in text:
            return tagged(DUPLICATE, BETTER)
        if "Ideas tried so far" in text:
            return tagged(EXPLORE)
        return tagged(GOOD, IMPOSSIBLE, FAILING)
    for idea, edits in EDITS.items():
        if idea in text:
            return f"Here is the change.\n\n{edits}"
    return "I am not able to implement this idea in this codebase."


def test_two_epoch_llm_search(llm_server, toy_env, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")  # the SDK sends it; the server ignores it
    llm_server.default = answer
    client = make_client("openai:gpt-4.1", base_url=llm_server.openai_base_url)
    ideator = LLMIdeator(client)
    env = load_environment(toy_env)
    run_dir = tmp_path / "runs"
    store = Store(run_dir)
    config = SearchConfig(
        epochs=2,
        ideas_per_epoch=3,
        baseline_seeds=2,
        rerun_top=1,
        rerun_seeds=2,
        ideator="openai:gpt-4.1",
    )
    try:
        result = asyncio.run(
            run_search(
                config, RunRequest(env, "tiny", run_dir=run_dir), store, ideator, implementer=client
            )
        )
        archive = Archive(store)
        ideas = {i.text: i for i in archive.ideas(result.search_id)}
        candidates = {text: store.candidates(idea.idea_id) for text, idea in ideas.items()}
    finally:
        store.close()

    status = {text: i.status for text, i in ideas.items()}
    assert status == {
        GOOD: "succeeded",
        IMPOSSIBLE: "rejected",
        FAILING: "failed",
        DUPLICATE: "duplicate",
        BETTER: "succeeded",
        EXPLORE: "succeeded",
    }
    assert [ideas[t].role for t in (GOOD, DUPLICATE, BETTER, EXPLORE)] == [
        "fresh",
        "exploit",
        "exploit",
        "explore",
    ]
    # The duplicate never cost a run, nor even an implementation.
    assert candidates[DUPLICATE] == [] and "repeats" in str(ideas[DUPLICATE].reason)
    assert "diverged: loss is nan" in str(ideas[FAILING].reason)

    _fresh, exploit, explore = ideator.prompts
    assert "The best ideas so far" in exploit
    assert f"reward {ideas[GOOD].reward:.4g}: {GOOD}" in exploit
    assert IMPOSSIBLE not in exploit  # failures are not shown as successes
    # The failure reasons reach the next explore prompt.
    assert "FAILED (failed" in explore and "diverged: loss is nan" in explore
    assert "FAILED (rejected" in explore
    # The confirmation table holds the best idea of screening, confirmed with the baseline on
    # the same two fresh seeds.
    assert result.confirmation is not None
    (top,) = result.confirmation.rows
    best = max(i.reward for i in ideas.values() if i.reward is not None)
    assert top.screen_reward == pytest.approx(best) and top.seeds == [1000, 1001]
    assert result.confirmation.baseline.seeds == [1000, 1001]


def test_an_llm_budget_stops_the_search_cleanly(llm_server, toy_env, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
    llm_server.default = answer
    client = make_client("openai:gpt-4.1", base_url=llm_server.openai_base_url)
    run_dir = tmp_path / "runs"
    store = Store(run_dir)
    client.on_call = lambda record: store.add_llm_call(None, record)
    config = SearchConfig(
        epochs=2, ideas_per_epoch=3, baseline_seeds=1, rerun_top=0, budget_usd=1e-9
    )
    try:
        result = asyncio.run(
            run_search(
                config,
                RunRequest(load_environment(toy_env), "tiny", run_dir=run_dir),
                store,
                LLMIdeator(client),
                implementer=client,
            )
        )
        ideas = Archive(store).ideas(result.search_id)
    finally:
        store.close()
    assert result.status == "stopped" and "LLM budget reached" in (result.reason or "")
    assert result.spend["usd"] > 0
    # The epoch's ideas are archived, none of them ran: nothing lost, nothing half-run.
    assert [i.status for i in ideas] == ["proposed"] * 3


def test_a_zero_budget_is_bad_input(cli, toy_env, tmp_path) -> None:
    from tests.conftest import assert_one_line_error

    res = cli("search", "--env", toy_env, "--budget-usd", "0", "--run-dir", tmp_path / "r")
    assert res.rc == 2
    assert_one_line_error(res, "--budget-usd must be above 0")
    assert not (tmp_path / "r").exists()
