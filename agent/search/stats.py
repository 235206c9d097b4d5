"""Mean ± 95% Student-t interval of a few rewards (a search's screening baseline, as text).

Comparisons with the baseline are never made here: they are paired, over matched seeds and
items, in agent/significance.py, and a search's verdicts come from its confirmation table
(agent/search/verdicts.py). Student-t quantiles come from a small table.
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
