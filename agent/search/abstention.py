"""F1 bought by abstention: a score that rose because the model answered less, not better.

An answer the grader cannot parse abstains (posttrain_grpo's evaluator writes precision,
recall, f1, format_rate and accuracy). Precision counts only answered items, so answering only
where sure raises precision, and F1 with it, while fewer items are answered right. A reward
that teaches the model to abstain can then look better by F1 (or whatever ranks the search)
without being better: the tell is the answered share (format_rate) falling while accuracy and
recall do not rise.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping

FORMAT_RATE = "format_rate"
CORRECTNESS = ("accuracy", "recall")  # the shares of ALL items answered right


def mean_metrics(runs: Iterable[Mapping[str, object]]) -> dict[str, float]:
    """Each numeric metric's mean over the runs that report it (booleans are not numbers)."""
    values: dict[str, list[float]] = {}
    for run in runs:
        for name, value in run.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                values.setdefault(name, []).append(float(value))
    return {name: statistics.fmean(xs) for name, xs in sorted(values.items())}


def abstention_note(
    metrics: Mapping[str, float],
    base_metrics: Mapping[str, float],
    rank_by: str = "f1",
    arm: str | None = None,
) -> str | None:
    """A one-line note when `rank_by` rose over the baseline while the format rate fell and
    neither accuracy nor recall rose; None otherwise, or when a metric it needs is missing
    (at least one of accuracy and recall must be reported by both). `arm` names the arm."""
    needed = (rank_by, FORMAT_RATE)
    if any(name not in metrics or name not in base_metrics for name in needed):
        return None
    shared = [n for n in CORRECTNESS if n in metrics and n in base_metrics]
    if not shared:
        return None
    rose = metrics[rank_by] > base_metrics[rank_by]
    fell = metrics[FORMAT_RATE] < base_metrics[FORMAT_RATE]
    if not (rose and fell) or any(metrics[n] > base_metrics[n] for n in shared):
        return None
    who = f"{rank_by} of {arm}" if arm else rank_by
    moves = ", ".join(
        f"{name.replace('_', ' ')} {base_metrics[name]:.3g} -> {metrics[name]:.3g}"
        for name in (FORMAT_RATE, *shared)
    )
    return f"{who} rose by abstention: {moves}"


def watched_note(
    metrics: Mapping[str, float],
    base_metrics: Mapping[str, float],
    rank_by: str | None,
    arm: str | None = None,
) -> str | None:
    """The first abstention note for f1, then for the metric ideas are ranked by (`rank_by`;
    the reward is not watched): what the table, the report and the ideator's rounds show."""
    for name in dict.fromkeys(m for m in ("f1", rank_by) if m and m != "reward"):
        if note := abstention_note(metrics, base_metrics, name, arm):
            return note
    return None
