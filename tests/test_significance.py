"""Paired statistics (agent/significance.py) against known values and a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest

from agent.significance import (
    BootstrapInterval,
    bootstrap_mean,
    discordant,
    holm,
    mcnemar_exact,
    paired_bootstrap,
    verdict,
)


@pytest.mark.parametrize(
    ("b", "c", "p"), [(10, 2, 0.0386), (0, 5, 0.0625), (30, 12, 0.0079), (2, 10, 0.0386)]
)
def test_exact_mcnemar_known_values(b: int, c: int, p: float) -> None:
    assert round(mcnemar_exact(b, c).p, 4) == p


def test_mcnemar_edges() -> None:
    assert mcnemar_exact(0, 0).p == 1.0
    assert mcnemar_exact(7, 7).p == 1.0
    assert 0 < mcnemar_exact(2000, 1000).p < 1e-70  # large n: exact, no underflow to nan
    assert discordant([1, 1, 0, 0, 1], [0, 1, 1, 0, 0]) == (2, 1)
    with pytest.raises(ValueError, match="0/1"):
        discordant([0.5], [1])
    with pytest.raises(ValueError, match="same items"):
        discordant([1, 0], [1])


def test_holm_known_values() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == []
    with pytest.raises(ValueError, match="p-value"):
        holm([0.1, float("nan")])


def test_percentile_bootstrap_of_an_accuracy() -> None:
    correct = [1.0] * 871 + [0.0] * (1319 - 871)
    ci = bootstrap_mean(correct)
    assert ci.estimate == pytest.approx(871 / 1319)
    assert ci.low == pytest.approx(0.635, abs=0.003) and ci.high == pytest.approx(0.686, abs=0.003)
    assert (ci.samples, ci.seed) == (10_000, 0)


def _brute_force(idea: np.ndarray, base: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """The same draws as paired_bootstrap, applied by materialising each resampled matrix."""
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, idea.shape[0], size=(samples, idea.shape[0]))
    items = rng.integers(0, idea.shape[1], size=(samples, idea.shape[1]))
    diff = idea - base
    return np.array([diff[s][:, i].mean() for s, i in zip(seeds, items, strict=True)])


def test_paired_bootstrap_matches_the_brute_force_resampling() -> None:
    rng = np.random.default_rng(1)
    idea = rng.integers(0, 2, size=(3, 40)).astype(float)
    base = rng.integers(0, 2, size=(3, 40)).astype(float)
    ci = paired_bootstrap(idea, base, samples=500, seed=7)
    reference = np.percentile(_brute_force(idea, base, 500, 7), [2.5, 97.5])
    assert (ci.low, ci.high) == pytest.approx(tuple(reference), abs=1e-12)
    assert ci.estimate == pytest.approx((idea - base).mean())


def test_paired_bootstrap_is_reproducible_and_paired() -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(size=(2, 300))
    same = paired_bootstrap(base, base)
    assert (same.low, same.high, same.estimate) == (0.0, 0.0, 0.0)  # pairing cancels noise
    shifted = base + 0.05  # a small, consistent gain on every item: paired, it is clear
    first, again = paired_bootstrap(shifted, base), paired_bootstrap(shifted, base)
    assert first == again  # a stored seed: recomputing gives identical numbers
    assert first.excludes_zero("maximize") and not first.excludes_zero("minimize")
    assert paired_bootstrap(shifted, base, seed=1) != first


def test_paired_bootstrap_refuses_unmatched_arms() -> None:
    with pytest.raises(ValueError, match="not matched"):
        paired_bootstrap([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="finite"):
        paired_bootstrap([[float("inf")]], [[1.0]])


def test_a_win_needs_the_test_the_interval_and_two_matched_seeds() -> None:
    up = BootstrapInterval(0.02, 0.01, 0.03, 10_000, 0)
    across = BootstrapInterval(0.02, -0.01, 0.05, 10_000, 0)
    assert verdict(up, adjusted_p=0.01, matched_seeds=2).wins
    assert not verdict(up, adjusted_p=0.01, matched_seeds=1).wins
    assert not verdict(up, adjusted_p=0.06, matched_seeds=3).wins
    assert not verdict(across, adjusted_p=0.001, matched_seeds=3).wins
    down = BootstrapInterval(-0.02, -0.03, -0.01, 10_000, 0)  # a loss that fell
    assert verdict(down, adjusted_p=0.01, matched_seeds=2, direction="minimize").wins
    assert "includes zero" in verdict(across, 0.001, 3).reason
