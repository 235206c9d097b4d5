"""Mean ± 95% interval, and Welch's unpaired interval of an idea against the baseline.

Paired comparisons over matched seeds and items (bootstrap, exact McNemar, Holm) are in
agent/significance.py; the search moves onto them with matched seeds and per-item outcomes.

A single lucky run is never a win: an idea beats the baseline only when the 95% interval of
the difference (Welch's t, per seed) lies entirely above zero, which needs two runs or more
on each side. Student-t quantiles come from a small table (no SciPy dependency).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

# Two-sided 95% quantiles of Student's t by degrees of freedom (1..30); above 30, normal-ish.
_T95 = [
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
]


def t95(df: float) -> float:
    if df < 1:
        return math.inf
    if df <= 30:
        lo = math.floor(df)
        return _T95[lo - 1]  # conservative: the quantile at the lower whole df
    return 1.960 + 2.4 / df  # within 0.2% of the true quantile above 30


@dataclass(frozen=True)
class Interval:
    mean: float
    half_width: float  # inf with a single run: there is no interval
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def __str__(self) -> str:
        if math.isinf(self.half_width):
            return f"{self.mean:.4g} (n=1)"
        return f"{self.mean:.4g} ± {self.half_width:.2g} (n={self.n})"


def interval(xs: list[float]) -> Interval:
    if not xs:
        raise ValueError("an interval needs at least one value")
    if len(xs) == 1:
        return Interval(xs[0], math.inf, 1)
    sd = statistics.stdev(xs)
    return Interval(statistics.fmean(xs), t95(len(xs) - 1) * sd / math.sqrt(len(xs)), len(xs))


@dataclass(frozen=True)
class Comparison:
    difference: Interval  # idea minus baseline
    wins: bool  # the whole interval is above zero (for a maximized reward)


def compare(idea: list[float], baseline: list[float]) -> Comparison:
    """Welch's interval for mean(idea) - mean(baseline); a win needs it above zero."""
    if len(idea) < 2 or len(baseline) < 2:
        diff = statistics.fmean(idea) - statistics.fmean(baseline)
        return Comparison(Interval(diff, math.inf, min(len(idea), len(baseline))), False)
    va, vb = statistics.variance(idea) / len(idea), statistics.variance(baseline) / len(baseline)
    diff = statistics.fmean(idea) - statistics.fmean(baseline)
    se = math.sqrt(va + vb)
    if se == 0:
        return Comparison(Interval(diff, 0.0, len(idea)), diff > 0)
    df = (va + vb) ** 2 / (va**2 / (len(idea) - 1) + vb**2 / (len(baseline) - 1))
    half = t95(df) * se
    return Comparison(Interval(diff, half, len(idea)), diff - half > 0)
