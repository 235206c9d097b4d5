"""Training data for the toy task (protected: ideas may not change it)."""

import numpy as np

N_FEATURES = 8


def true_weights() -> np.ndarray:
    return np.random.default_rng(1234).normal(size=N_FEATURES)


def make_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    y = x @ true_weights() + 0.1 * rng.normal(size=n)
    return x, y


def train_split(seed: int) -> tuple[np.ndarray, np.ndarray]:
    return make_split(256, 10_000 + seed)
