"""Paired comparisons of an idea with the baseline, over matched seeds and the same test items.

An arm's per-item outcomes form a seeds x items matrix: row s is the run with seed s, column i
the evaluator's score of item i (1/0 for a correct answer, or a window's loss). The idea's and
the baseline's matrices are matched: the same seeds and the same items, in the same order.

- `paired_bootstrap`: percentile interval of mean(idea - baseline), resampling seeds and items
  (the two sources of noise) with replacement, the same draws for both arms, and its two-sided
  bootstrap p (the test for a metric that is not 0/1, such as a loss);
- `mcnemar_exact`: the exact two-sided McNemar p from the discordant counts of a 0/1 outcome;
- `holm`: Holm's step-down adjustment across every comparison on a leaderboard;
- `verdict`: a win needs all three of an adjusted p below alpha, an interval wholly on the
  better side of zero, and at least two matched seeds.

Every random draw comes from a stored seed, so recomputing a verdict gives the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0
MIN_MATCHED_SEEDS = 2

Matrix = Sequence[Sequence[float]] | np.ndarray


@dataclass(frozen=True)
class BootstrapInterval:
    estimate: float  # the statistic on the data itself
    low: float
    high: float
    samples: int
    seed: int
    level: float = 0.95
    # Two-sided bootstrap p of "the statistic is 0": twice the smaller share of samples on
    # either side of zero (consistent with the interval: p < 0.05 iff it excludes 0, roughly).
    p: float | None = None

    def excludes_zero(self, direction: Literal["maximize", "minimize"]) -> bool:
        """The whole interval lies on the better side of zero."""
        return self.low > 0 if direction == "maximize" else self.high < 0


def _matrix(rows: Matrix, name: str) -> np.ndarray:
    m = np.asarray(rows, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
        raise ValueError(f"{name}: outcomes must be a non-empty seeds x items matrix")
    if not np.isfinite(m).all():
        raise ValueError(f"{name}: outcomes must be finite numbers")
    return m


def _percentiles(stats: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_mean(
    values: Sequence[float],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> BootstrapInterval:
    """Percentile interval of the mean of one arm's item outcomes (e.g. accuracy)."""
    x = _matrix([values], "values")[0]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, x.size, size=(samples, x.size))
    low, high = _percentiles(x[draws].mean(axis=1), level)
    return BootstrapInterval(float(x.mean()), low, high, samples, seed, level)


def paired_bootstrap(
    idea: Matrix,
    baseline: Matrix,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> BootstrapInterval:
    """Percentile interval of mean(idea - baseline) over matched seeds x items.

    Each bootstrap sample draws seeds and items with replacement and applies the same draw to
    both arms, so the pairing (same seed, same item) is kept. The mean over a drawn seed set
    and item set is weights_seeds @ D @ weights_items / (S * I), computed for all samples at
    once without materialising the resampled matrices.
    """
    a, b = _matrix(idea, "idea"), _matrix(baseline, "baseline")
    if a.shape != b.shape:
        raise ValueError(
            f"idea and baseline outcomes are not matched: {a.shape} vs {b.shape} "
            "(seeds x items); run both on the same seeds and items"
        )
    diff = a - b
    n_seeds, n_items = diff.shape
    rng = np.random.default_rng(seed)
    seed_weights = _counts(rng.integers(0, n_seeds, size=(samples, n_seeds)), n_seeds)
    item_weights = _counts(rng.integers(0, n_items, size=(samples, n_items)), n_items)
    means = np.einsum("bs,si,bi->b", seed_weights, diff, item_weights) / (n_seeds * n_items)
    low, high = _percentiles(means, level)
    p = min(1.0, 2 * min(float(np.mean(means <= 0)), float(np.mean(means >= 0))))
    return BootstrapInterval(float(diff.mean()), low, high, samples, seed, level, p)


def _counts(draws: np.ndarray, n: int) -> np.ndarray:
    """How often each index was drawn, per bootstrap sample (rows)."""
    offsets = np.arange(draws.shape[0])[:, None] * n
    flat = np.bincount((draws + offsets).ravel(), minlength=draws.shape[0] * n)
    return flat.reshape(draws.shape[0], n).astype(np.float64)


@dataclass(frozen=True)
class McNemar:
    b: int  # idea right, baseline wrong
    c: int  # idea wrong, baseline right
    p: float  # exact two-sided


def discordant(idea: Sequence[float], baseline: Sequence[float]) -> tuple[int, int]:
    """(b, c) of two matched 0/1 outcome vectors."""
    if len(idea) != len(baseline):
        raise ValueError("McNemar needs the same items in both arms")
    pairs = list(zip(idea, baseline, strict=True))
    if any(x not in (0, 1) or y not in (0, 1) for x, y in pairs):
        raise ValueError("McNemar needs 0/1 outcomes (correct or not)")
    return sum(1 for x, y in pairs if x and not y), sum(1 for x, y in pairs if y and not x)


def mcnemar_exact(b: int, c: int) -> McNemar:
    """Exact two-sided McNemar test: under the null each discordant pair is a fair coin.

    p = min(1, 2 * P[Binomial(b + c, 1/2) <= min(b, c)]); no discordant pair gives p = 1.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts cannot be negative")
    n = b + c
    if n == 0:
        return McNemar(b, c, 1.0)
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    # Exact integer arithmetic, then one division: no underflow for large n.
    return McNemar(b, c, min(1.0, 2 * tail / 2**n))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: the k-th smallest of m is multiplied by
    (m - k + 1), made non-decreasing along that order, and capped at 1."""
    for p in pvalues:
        if not 0 <= p <= 1 or math.isnan(p):
            raise ValueError(f"a p-value must lie in [0, 1], not {p!r}")
    m = len(pvalues)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: pvalues[j])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Verdict:
    wins: bool
    reason: str  # why it is or is not a win, one line


def verdict(
    difference: BootstrapInterval,
    adjusted_p: float,
    matched_seeds: int,
    direction: Literal["maximize", "minimize"] = "maximize",
    alpha: float = 0.05,
) -> Verdict:
    """A win needs the adjusted test, the interval and at least two matched seeds, all three."""
    if matched_seeds < MIN_MATCHED_SEEDS:
        return Verdict(False, f"{matched_seeds} matched seed(s); a win needs 2 or more")
    if adjusted_p >= alpha:
        return Verdict(False, f"adjusted p {adjusted_p:.3g} is not below {alpha:g}")
    if not difference.excludes_zero(direction):
        worse = difference.excludes_zero("minimize" if direction == "maximize" else "maximize")
        where = "lies on the worse side of zero" if worse else "includes zero"
        return Verdict(False, f"the interval [{difference.low:.4g}, {difference.high:.4g}] {where}")
    return Verdict(True, f"adjusted p {adjusted_p:.3g}, interval excludes zero")
