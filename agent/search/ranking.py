"""How a search ranks its ideas: by the reward, or by another metric the evaluator reports
(`--rank-by`, or the focus's `rank_by`), e.g. answer F1 in a reward search.

The rank decides what the ideator is shown as best, the finalists, and the members of
ensembles; the claims still come from the confirmation table of the reward's metric.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.search.archive import ArchivedIdea
from agent.search.config import SearchConfig
from environments import Environment


def rank_metric(config: SearchConfig, env: Environment) -> str | None:
    """The metric ideas are ranked by; None: the reward."""
    if config.rank_by:
        return config.rank_by
    focus = env.focus
    return focus.rank_by if focus is not None else None


def rank_value(idea: ArchivedIdea, metric: str | None, env: Environment | None) -> float | None:
    """Higher is better: the reward, or the metric's mean over screening runs (negated for a
    metric `env`'s manifest minimizes). None: the idea has no value to rank by."""
    if metric is None:
        return idea.reward
    value = idea.metrics.get(metric)
    if value is None:
        return None
    m = env.whole.metric if env is not None else None
    return -value if m is not None and metric == m.name and m.direction == "minimize" else value


def ranked(
    ideas: Iterable[ArchivedIdea], metric: str | None, env: Environment | None
) -> list[ArchivedIdea]:
    """Succeeded ideas with a value, best first; ties keep the earlier idea first."""
    scored = [
        (v, i)
        for i in ideas
        if i.status == "succeeded" and (v := rank_value(i, metric, env)) is not None
    ]
    return [i for _, i in sorted(scored, key=lambda x: x[0], reverse=True)]


def label(metric: str | None) -> str:
    return metric or "reward"
