"""The execution reward on real runs of the toy environment: every idea implemented and run
once (the cache), failures scored with the failure reward, everything in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.executor import RunRequest
from agent.ideator_rl.config import TrainIdeatorConfig
from agent.ideator_rl.execution import ExecutionReward
from agent.ideator_rl.records import Records
from agent.llm import make_client
from agent.store import Store
from environments import resolve_environment
from tests.conftest import GOOD_EDIT, assert_store_consistent, store_rows

# Each test runs ideas for real on the toy environment, in the local sandbox.
pytestmark = pytest.mark.slow


def make_reward(
    toy_env: Path, run_dir: Path, client: Any = None, seed: int = 0, **cfg: Any
) -> ExecutionReward:
    env = resolve_environment(str(toy_env))
    store = Store(run_dir)
    records = Records(store)
    config = TrainIdeatorConfig(group_size=4, **cfg)
    training = records.start(env.name, env.repo_hash, "tiny", {})
    req = RunRequest(env, "tiny", seed=seed, run_dir=run_dir, slots=2)
    return ExecutionReward(
        config=config,
        req=req,
        store=store,
        records=records,
        training_id=training,
        baseline=0.68,
        client=client,
    )


def test_a_batch_runs_each_distinct_idea_once_and_scores_failures(toy_env, run_dir) -> None:
    reward = make_reward(toy_env, run_dir, failure_reward=-0.5)
    try:
        batch = [
            "<think>raise lr</think> lr=0.1 steps=500",
            "<think>same again</think> steps=500 lr=0.1",  # the same knob values
            "<think>momentum</think> momentum=0.9",  # not a knob: rejected, never run
            "<think>cut off while thinking about lr",  # no idea at all
        ]
        rewards, inst = reward.score(1, batch, [[0, 1, 2, 3]], [10, 11, 12, 13])
        assert rewards[0] == rewards[1] > 0.9  # one run, its reward shared
        assert rewards[2:] == [-0.5, -0.5]
        assert inst["executed"] == 2 and inst["cache_hits"] == 1  # the run and the rejection
        assert inst["execution_rate"] == 0.5 and inst["no_idea_rate"] == 0.25
        assert inst["top2_cluster_share"] == 0.75  # the two copies, then one other
        assert inst["flat_groups"] == 0.0
        runs = store_rows(run_dir, "runs")
        ideas = {r["id"]: r for r in store_rows(run_dir, "ideas")}
        idea_runs = [r for r in runs if r["seed"] == 0 and r["status"] == "succeeded"]
        assert len(idea_runs) == 1 and idea_runs[0]["reward"] == rewards[0]
        rejected = [c for c in store_rows(run_dir, "candidates") if c["status"] == "rejected"]
        assert len(rejected) == 1 and "'momentum' is not a knob" in rejected[0]["error"]
        assert ideas[rejected[0]["idea_id"]]["text"] == "momentum=0.9"

        # The next step repeats the idea: served from the cache, nothing runs again.
        rewards2, inst2 = reward.score(
            2, ["<think>x</think> lr=0.1 steps=500"] * 4, [[0, 1, 2, 3]], [9] * 4
        )
        assert rewards2 == [rewards[0]] * 4
        assert inst2["executed"] == 0 and inst2["cache_hits"] == 4
        assert inst2["top2_cluster_share"] == 1.0
        assert inst2["flat_groups"] == 1.0  # one idea only: nothing for GRPO to learn
        assert len(store_rows(run_dir, "runs")) == len(runs)
    finally:
        reward.close()
    samples = store_rows(run_dir, "rl_samples")
    assert len(samples) == 8
    assert {s["status"] for s in samples} == {"succeeded", "rejected", "no_idea"}
    for s in samples:  # every sample with an idea points at the stored idea it trained on
        if s["idea"]:
            assert s["idea_id"] is not None
    assert [s["step"] for s in store_rows(run_dir, "rl_steps")] == [1, 2]
    assert_store_consistent(run_dir)


def test_the_cache_is_per_seed(toy_env, run_dir) -> None:
    executed = []
    for seed in (0, 0, 1):  # the same idea: run, cached, and run again under another seed
        reward = make_reward(toy_env, run_dir, seed=seed)
        try:
            _, inst = reward.score(1, ["lr=0.3", "lr=0.3"], [[0, 1]], [3, 3])
        finally:
            reward.close()
        executed.append(inst["executed"])
    assert executed == [1, 0, 1]
    assert sorted(r["seed"] for r in store_rows(run_dir, "runs")) == [0, 1]


def test_diverging_ideas_get_the_failure_reward_and_no_shaping(toy_env, run_dir) -> None:
    reward = make_reward(toy_env, run_dir, failure_reward=0.0, diversity_weight=0.5)
    try:
        rewards, _ = reward.score(
            1,
            ["lr=1 steps=2000", "lr=1 steps=2000", "lr=0.1 steps=200", "lr=0.1 steps=200"],
            [[0, 1, 2, 3]],
            [5] * 4,
        )
    finally:
        reward.close()
    samples = {s["idea"]: s for s in store_rows(run_dir, "rl_samples")}
    assert samples["lr=1 steps=2000"]["status"] in ("flagged", "failed")
    assert samples["lr=1 steps=2000"]["execution_reward"] == 0.0
    # Failed copies keep exactly the failure reward; the working copies pay the diversity
    # penalty: half of the 1/3 of their group that repeats them.
    assert rewards[:2] == [0.0, 0.0]
    ran = samples["lr=0.1 steps=200"]["execution_reward"]
    assert rewards[2] == rewards[3] == pytest.approx(ran - 0.5 / 3)


def test_llm_implementer_ideas_are_implemented_through_the_sdk(
    toy_env, run_dir, llm_server, monkeypatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    llm_server.script(GOOD_EDIT)
    client = make_client("openai:m", base_url=llm_server.openai_base_url)
    reward = make_reward(toy_env, run_dir, client=client, implementer="openai:m")
    try:
        idea = "Idea: raise the learning rate to 0.1 and train for 300 steps"
        rewards, inst = reward.score(1, [idea, idea], [[0, 1]], [12, 12])
    finally:
        reward.close()
    assert rewards[0] == rewards[1] > 0.9 and inst["executed"] == 1
    assert llm_server.pending == 0 and len(llm_server.requests) == 1  # implemented once
    (cand,) = store_rows(run_dir, "candidates")
    assert cand["status"] == "validated" and "+LR = 0.1" in cand["diff"]
