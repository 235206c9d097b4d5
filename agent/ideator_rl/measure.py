"""Did the training raise the reward of the ideas it samples, judged at the full budget?

A training may run its ideas at a screening budget (a short --timeout) to afford many steps;
what counts is the full budget. This takes the ideas a training sampled at its first steps and
over its last steps (the store's sample records), runs each distinct idea once at the scale's
full budget on the training's seed (the execution cache: an idea sampled in both groups, or
already run at the full budget, runs once), measures the baseline there too, and reports per
group the sample-weighted mean and the max of the full-budget reward: a collapsed policy's
repeated idea counts as often as it was sampled. A failed idea or a sample with no idea counts
as the training's --failure-reward, as it did in training.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from agent.executor import RunRequest
from agent.ideator_rl.budget import (
    TIMEOUT_KEY,
    describe,
    full_budget,
    matching_baseline,
    with_fidelity,
)
from agent.ideator_rl.config import TrainIdeatorConfig
from agent.ideator_rl.execution import ExecutionReward
from agent.ideator_rl.records import CachedResult, Records
from agent.results import Result
from agent.store import Store


@dataclass(frozen=True)
class IdeaFigures(Result):
    idea: str  # "" for samples with no idea
    samples: int  # how often the group sampled it
    training_reward: float  # at the training's budget, as the training scored it
    full_reward: float  # at the full budget (the failure reward when it failed)
    status: str  # of the full-budget run


@dataclass(frozen=True)
class GroupFigures(Result):
    name: str  # first, last
    steps: list[int]
    samples: int
    distinct: int
    mean: float  # sample-weighted, at the full budget
    max: float
    training_mean: float  # the same samples as the training scored them
    training_max: float
    ideas: list[IdeaFigures]


@dataclass(frozen=True)
class Measurement(Result):
    training_id: str
    training_budget: str
    full_budget: str
    seed: int
    baseline: float | None  # at the full budget, same conditions and seed
    training_baseline: float | None  # at the training's budget
    groups: list[GroupFigures]


def select_steps(steps: list[int], first: int, last: int) -> dict[str, list[int]]:
    """The first `first` and the last `last` recorded steps (they may overlap in a short
    training)."""
    if first < 1 or last < 1:
        raise ValueError("--first and --last count steps: each at least 1")
    ordered = sorted(set(steps))
    if not ordered:
        raise ValueError("the training recorded no step: nothing to measure")
    return {"first": ordered[:first], "last": ordered[-last:]}


def aggregate(
    name: str,
    steps: list[int],
    samples: list[dict[str, Any]],
    full: dict[str, CachedResult],
    failure_reward: float,
) -> GroupFigures:
    """One group's figures from its samples (rows of rl_samples) and each idea's full-budget
    result: every sample counts once, so the mean weighs an idea by how often it was drawn."""
    chosen = [s for s in samples if s["step"] in steps]
    if not chosen:
        raise ValueError(f"no samples at steps {steps}")

    def reward(idea: str) -> float:
        r = full.get(idea) if idea else None
        ok = r is not None and r.status == "succeeded" and r.reward is not None
        return float(r.reward) if ok and r is not None and r.reward is not None else failure_reward

    rewards = [reward(s["idea"] or "") for s in chosen]
    training = [float(s["execution_reward"]) for s in chosen]
    counts = Counter(s["idea"] or "" for s in chosen)
    first_training: dict[str, float] = {}
    for s in chosen:
        first_training.setdefault(s["idea"] or "", float(s["execution_reward"]))
    ideas = [
        IdeaFigures(
            idea,
            n,
            first_training[idea],
            reward(idea),
            full[idea].status if idea in full else "no_idea",
        )
        for idea, n in counts.most_common()
    ]
    return GroupFigures(
        name,
        steps,
        len(chosen),
        sum(1 for i in counts if i),
        statistics.fmean(rewards),
        max(rewards),
        statistics.fmean(training),
        max(training),
        ideas,
    )


def measure(
    req: RunRequest,
    store: Store,
    *,
    first: int = 1,
    last: int = 5,
    progress: Callable[[str], None] = lambda _: None,
) -> Measurement:
    """Run the first and last steps' ideas of the run directory's latest training at the full
    budget; `req` says where (run dir, sandbox, slots) and is put at the full budget."""
    records = Records(store)
    training = records.latest()
    if training is None:
        raise ValueError(f"no ideator training in {req.run_dir}: run train-ideator first")
    stored = dict(training["config"])
    short_timeout = stored.pop(TIMEOUT_KEY, None)
    cfg = TrainIdeatorConfig(**stored)
    full = full_budget(replace(req, seed=cfg.seed))
    short = replace(full, timeout_s=short_timeout)
    samples = records.samples(training["id"])
    groups = select_steps([s["step"] for s in samples], first, last)
    wanted = sorted(
        {s["idea"] for s in samples if s["idea"] and any(s["step"] in g for g in groups.values())}
    )
    progress(f"{len(wanted)} distinct ideas at {describe(full)}, and the baseline")
    reward = ExecutionReward(
        config=cfg,
        req=full,
        store=store,
        records=records,
        training_id=training["id"],
        baseline=None,
        progress=progress,
    )
    try:
        # The baseline (unless measured already) beside the ideas: their slots shared.
        seeds = [] if matching_baseline(store, full) else [full.seed]
        results = reward.run_ideas(wanted, baseline_seeds=seeds)
    finally:
        reward.close()
    baseline = matching_baseline(store, full)
    by_idea = dict(zip(wanted, results, strict=True))
    short_base = matching_baseline(store, with_fidelity(short))
    return Measurement(
        training["id"],
        describe(short),
        describe(full),
        cfg.seed,
        statistics.fmean(baseline) if baseline else None,
        statistics.fmean(short_base) if short_base else None,
        [
            aggregate(name, steps, samples, by_idea, cfg.failure_reward)
            for name, steps in groups.items()
        ],
    )
