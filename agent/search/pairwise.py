"""Pairwise tests among a confirmation table's finalists: is one idea better than another?

The baseline rows (agent/search/verdicts.py) say whether each finalist beats the baseline;
two finalists that both do may still be indistinguishable from each other. For every pair of
finalists (A listed before B in the table, so usually the better), on the seeds where both
succeeded and the items common to those runs, with the same statistics as the baseline rows
(agent/significance.py, the same bootstrap samples and seed):
- the difference A - B (mean over seeds x items) and its paired bootstrap interval;
- exact McNemar on the discordant (seed, item) pairs for a 0/1 metric, else the bootstrap p;
- Holm across the pairs (a family of its own: the baseline rows' adjustment is unchanged);
- the verdict: "A better" or "B better" needs what a win needs (adjusted p below alpha, the
  interval on that side of zero, two matched seeds or more, a result on every confirmation
  seed either ran) and, when the null control differs from the baseline, an interval beyond
  that band. Else "no difference shown": failing to reject is NOT equivalence, and a pair
  with "no difference shown" may well differ by more than the table can resolve.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from agent.results import Result
from agent.significance import (
    BOOTSTRAP_SAMPLES,
    BOOTSTRAP_SEED,
    BootstrapInterval,
    holm,
    mcnemar_exact,
    paired_bootstrap,
    verdict,
)

if TYPE_CHECKING:
    from agent.search.verdicts import Direction, Outcomes

PairVerdict = Literal["A better", "B better", "no difference shown"]
NO_DIFFERENCE: PairVerdict = "no difference shown"


def rounded(x: float | None) -> float | None:
    """Rounded to 12 significant digits: the table's numbers are for reading, and rounding
    keeps their JSON stable across platforms' last-bit differences in summation."""
    return None if x is None else float(f"{x:.12g}")


@dataclass(frozen=True)
class Pair(Result):
    a: str  # idea id, listed first in the table
    b: str
    seeds: list[int]  # confirmation seeds on which both succeeded
    items: int  # matched items per seed
    diff: float | None  # A minus B
    diff_low: float | None
    diff_high: float | None
    test: Literal["mcnemar", "bootstrap"] | None
    a_only: int | None  # McNemar: A right, B wrong (pooled over seeds)
    b_only: int | None  # McNemar: A wrong, B right
    p: float | None
    p_holm: float | None
    verdict: PairVerdict
    reason: str


def matrix(by_seed: dict[int, dict[str, float]], seeds: list[int], ids: list[str]) -> np.ndarray:
    """Seeds x items: row s holds seed s's values of `ids`, in that order."""
    return np.array([[by_seed[s][i] for i in ids] for s in seeds], dtype=np.float64)


@dataclass(frozen=True)
class Matched:
    """Two arms' outcomes matched seed by seed and item by item, and tested: what a baseline
    row (agent/search/verdicts.py) and a pair both report."""

    seeds: list[int]  # seeds on which both have a result
    missing: Literal["seeds", "items"] | None  # nothing to compare: no common seed, or item
    items: int = 0
    x: np.ndarray | None = None  # seeds x items of the first arm
    diff: BootstrapInterval | None = None  # first minus second
    test: Literal["mcnemar", "bootstrap"] | None = None
    counts: tuple[int | None, int | None] = (None, None)  # McNemar: only first right / second
    p: float | None = None


def matched(a: Outcomes, b: Outcomes) -> Matched:
    """`a` against `b` on their common seeds and items: the paired bootstrap interval of the
    difference, and exact McNemar for a 0/1 metric (else the bootstrap's p)."""
    seeds = sorted(a.values.keys() & b.values.keys())
    if not seeds:
        return Matched(seeds, "seeds")
    ids = sorted(set.intersection(*(set(a.values[s]) & set(b.values[s]) for s in seeds)))
    if not ids:
        return Matched(seeds, "items")
    x, y = matrix(a.values, seeds, ids), matrix(b.values, seeds, ids)
    diff = paired_bootstrap(x, y, BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED)
    if bool(np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all()):
        first, second = int(np.sum((x == 1) & (y == 0))), int(np.sum((x == 0) & (y == 1)))
        p = mcnemar_exact(first, second).p
        return Matched(seeds, None, len(ids), x, diff, "mcnemar", (first, second), p)
    assert diff.p is not None
    return Matched(seeds, None, len(ids), x, diff, "bootstrap", (None, None), diff.p)


def _compare(a_id: str, b_id: str, a: Outcomes, b: Outcomes) -> tuple[Pair, float | None]:
    """One pair before Holm (p_holm and the verdict come later)."""
    m = matched(a, b)
    empty = Pair(a_id, b_id, m.seeds, 0, None, None, None, None, None, None, None, None,
                 NO_DIFFERENCE, "")  # fmt: skip
    if m.missing == "seeds":
        return replace(empty, reason="no confirmation seed on which both succeeded"), None
    if m.missing == "items":
        return replace(empty, reason="no items common to both"), None
    assert m.diff is not None and m.p is not None
    diff, p, test, counts = m.diff, m.p, m.test, m.counts
    pair = replace(
        empty,
        items=m.items,
        diff=rounded(diff.estimate),
        diff_low=rounded(diff.low),
        diff_high=rounded(diff.high),
        test=test,
        a_only=counts[0],
        b_only=counts[1],
        p=rounded(p),
    )
    return pair, p


def _judge(
    pair: Pair,
    p_holm: float,
    missing: list[int],
    direction: Direction,
    alpha: float,
    band: float | None,
) -> Pair:
    assert pair.diff is not None and pair.diff_low is not None and pair.diff_high is not None
    interval = BootstrapInterval(
        pair.diff, pair.diff_low, pair.diff_high, BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED
    )
    pair = replace(pair, p_holm=rounded(p_holm))
    if missing:
        why = f"no result on confirmation seed(s) {missing} for one of them"
        return replace(pair, reason=f"{why}: a verdict needs every one")
    other: Direction = "minimize" if direction == "maximize" else "maximize"
    sides: tuple[tuple[Direction, PairVerdict], ...] = (
        (direction, "A better"),
        (other, "B better"),
    )
    for side, name in sides:
        v = verdict(interval, p_holm, len(pair.seeds), side, alpha)
        if not v.wins:
            continue
        near = min(abs(interval.low), abs(interval.high))  # the end nearest zero
        if band is not None and near <= band:
            return replace(
                pair,
                reason=f"the null control differs from the baseline by up to {band:.4g}, and "
                f"this interval [{interval.low:.4g}, {interval.high:.4g}] does not clear that",
            )
        return replace(pair, verdict=name, reason=v.reason)
    # Neither side: the reason is why A is not shown better (p, seeds, or the interval).
    reason = verdict(interval, p_holm, len(pair.seeds), direction, alpha).reason
    return replace(pair, reason=reason.replace("a win needs", "a verdict needs"))


def compare_pairs(
    arms: list[tuple[str, Outcomes]],
    direction: Direction,
    alpha: float,
    band: float | None = None,
) -> list[Pair]:
    """Every pair of `arms` (idea id, its confirmation outcomes; in table order), Holm-adjusted
    across the pairs. `band`: the null control's largest difference from the baseline, which a
    verdict's interval must clear (None when the null control matched the baseline)."""
    pending = []
    for (a_id, a), (b_id, b) in itertools.combinations(arms, 2):
        # Seeds either ran on where not both succeeded: dropping them would let an arm that
        # crashes where it would lose choose its own sample.
        both = a.values.keys() & b.values.keys()
        ran = a.values.keys() | b.values.keys() | a.failed | b.failed
        pending.append((_compare(a_id, b_id, a, b), sorted(ran - both)))
    tested = [k for k, ((_, p), _) in enumerate(pending) if p is not None]
    adjusted = holm([pending[k][0][1] for k in tested])  # type: ignore[misc]
    by_k = dict(zip(tested, adjusted, strict=True))
    return [
        _judge(pair, by_k[k], missing, direction, alpha, band) if k in by_k else pair
        for k, ((pair, _), missing) in enumerate(pending)
    ]
