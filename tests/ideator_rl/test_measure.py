"""The full-budget measurement of a training's first and last steps (agent/ideator_rl/measure.py):
which samples count, how they are weighed, and the runs it makes, on a real store and real runs
of the toy environment."""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import asdict

import pytest

from agent.executor import RunRequest
from agent.ideator_rl.budget import TIMEOUT_KEY
from agent.ideator_rl.config import TrainIdeatorConfig
from agent.ideator_rl.execution import ExecutionReward
from agent.ideator_rl.measure import aggregate, measure, select_steps
from agent.ideator_rl.records import CachedResult, Records
from agent.store import Store
from environments import resolve_environment
from tests.conftest import assert_store_consistent, store_rows


def test_select_steps_takes_the_first_and_last_recorded_steps() -> None:
    assert select_steps([3, 1, 2, 2, 5, 4], 1, 2) == {"first": [1], "last": [4, 5]}
    assert select_steps([1, 2], 2, 5) == {"first": [1, 2], "last": [1, 2]}  # overlap
    with pytest.raises(ValueError, match="no step"):
        select_steps([], 1, 1)
    with pytest.raises(ValueError, match="at least 1"):
        select_steps([1], 0, 1)


def test_aggregate_weighs_each_sample_and_scores_failures() -> None:
    def row(step: int, idea: str, training: float) -> dict:
        return {"step": step, "idea": idea, "execution_reward": training}

    samples = [row(1, "a", 0.1), row(1, "b", 0.2), row(2, "a", 0.1), row(2, "a", 0.1),
               row(2, "a", 0.1), row(2, "", -1.0), row(2, "c", -1.0)]  # fmt: skip
    full = {
        "a": CachedResult("i1", "succeeded", None, 0.5),
        "b": CachedResult("i2", "succeeded", None, 0.8),
        "c": CachedResult("i3", "failed", "diverged", None),
    }
    first = aggregate("first", [1], samples, full, failure_reward=-1.0)
    assert (first.samples, first.distinct, first.mean, first.max) == (2, 2, 0.65, 0.8)
    assert first.training_mean == pytest.approx(0.15) and first.training_max == 0.2
    last = aggregate("last", [2], samples, full, failure_reward=-1.0)
    # Three samples of a, one without an idea and one failed idea: each sample counts once.
    assert last.samples == 5 and last.distinct == 2
    assert last.mean == pytest.approx((3 * 0.5 - 1 - 1) / 5) and last.max == 0.5
    assert [(i.idea, i.samples, i.status) for i in last.ideas] == [
        ("a", 3, "succeeded"), ("", 1, "no_idea"), ("c", 1, "failed")
    ]  # fmt: skip


@pytest.mark.slow
def test_measure_reruns_the_distinct_ideas_at_the_full_budget(toy_env, run_dir) -> None:
    env = resolve_environment(str(toy_env))
    cfg = TrainIdeatorConfig(group_size=2, failure_reward=-0.5)
    with closing(Store(run_dir)) as store:
        records = Records(store)
        tid = records.start(env.name, env.repo_hash, "tiny", {**asdict(cfg), TIMEOUT_KEY: 30.0})
        short = RunRequest(env, "tiny", timeout_s=30.0, seed=0, run_dir=run_dir, slots=2)
        reward = ExecutionReward(
            config=cfg, req=short, store=store, records=records, training_id=tid, baseline=None
        )
        try:
            for step, batch in enumerate(
                [
                    ["lr=0.1 steps=500", "lr=0.0001 steps=10"],
                    ["lr=0.3", "lr=0.3"],
                    ["lr=0.3", "<think>cut off"],
                ],
                start=1,
            ):
                reward.score(step, batch, [[0, 1]], [3, 3])
        finally:
            reward.close()
        assert len(store_rows(run_dir, "runs")) == 3  # three distinct ideas at --timeout 30

        req = RunRequest(env, "tiny", timeout_s=30.0, seed=0, run_dir=run_dir, slots=2)
        m = measure(req, store, first=1, last=2)
        runs = store_rows(run_dir, "runs")
        full = [r for r in runs if json.loads(r["conditions"])["timeout_s"] is None]
        # Each distinct idea once more at the full budget (the scale's timeout), and the
        # baseline there, on the training's seed.
        assert len(full) == 4 and {r["seed"] for r in full} == {0}
        assert m.baseline is not None and m.training_baseline is None  # none at --timeout 30
        first, last = m.groups
        assert (first.name, first.steps, first.samples, first.distinct) == ("first", [1], 2, 2)
        assert (last.name, last.steps, last.samples, last.distinct) == ("last", [2, 3], 4, 1)
        by_idea = {i.idea: i for i in last.ideas}
        r = by_idea["lr=0.3"].full_reward
        assert by_idea["lr=0.3"].samples == 3 and by_idea[""].status == "no_idea"
        assert last.mean == pytest.approx((3 * r - 0.5) / 4) and last.max == r
        full_rewards = {float(x["reward"]) for x in full}
        assert {i.full_reward for i in first.ideas} <= full_rewards and r in full_rewards

        again = measure(req, store, first=1, last=2)  # all cached: nothing runs again
        assert len(store_rows(run_dir, "runs")) == len(runs)
        assert again.groups == m.groups and again.baseline == m.baseline
    assert_store_consistent(run_dir)
