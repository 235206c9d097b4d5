"""The evaluator's cheaper paths, on models whose losses are known: the leakage check scores
the training windows in stages (stopping early only far above the floor), the causality checks
compare against the scoring pass's own output, and the smoke check runs one checked batch.
A model here is a function of its input (a bet that the next token repeats this one), so the
losses of val and training text follow from how often their tokens repeat."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from tests.pretrain_nanogpt.conftest import ENV

T = 128  # the tiny scale's context
Forward = Callable[[torch.Tensor], torch.Tensor]


def _text(n: int, repeat: float, seed: int, low: int = 0, high: int = 256) -> np.ndarray:
    """n tokens in [low, high): each repeats the one before with probability `repeat`."""
    rng = np.random.default_rng(seed)
    fresh = rng.integers(low, high, n)
    keep = rng.random(n) < repeat
    out = fresh.copy()
    for i in range(1, n):
        if keep[i]:
            out[i] = out[i - 1]
    return out.astype(np.uint8)


def repeat_guess(idx: torch.Tensor) -> torch.Tensor:
    """Causal, rows independent: a loss 1 nat lower where the next token repeats this one."""
    return torch.nn.functional.one_hot(idx, 256).float()


def _assess(
    evaluator: ModuleType,
    forward: Forward,
    val_repeat: float,
    val_tokens: tuple[int, int] = (0, 256),
    train_tokens: tuple[int, int] = (0, 256),
) -> tuple[dict, list[str], dict]:
    """assess() at the tiny scale: 448 val windows, 1024 training windows at random places."""
    s = evaluator.SCALES["tiny"]
    gen = torch.Generator().manual_seed(0)
    val = evaluator.windows(_text(448 * T + 1, val_repeat, 1, *val_tokens), T)
    train_text = _text(200_000, 0.2, 2, *train_tokens)
    train = evaluator.random_windows(train_text, T, s.train_tokens // T, gen)
    metrics, flags, record, _ = evaluator.assess(forward, val, train, s, gen)
    return metrics, flags, record


def test_honest_model_stops_after_a_quarter_of_the_training_windows(
    evaluator: ModuleType,
) -> None:
    """Same text statistics on both sides: the gap sits near 0, far above the floor (-0.02)
    for a per-window spread of 0.035 (5 standard errors of 256 windows: 0.011)."""
    calls = []

    def counted(idx: torch.Tensor) -> torch.Tensor:
        calls.append(idx)
        return repeat_guess(idx)

    metrics, flags, record = _assess(evaluator, counted, val_repeat=0.2)
    assert flags == [] and abs(metrics["val_loss"] - metrics["train_loss"]) < 0.01
    assert record["train_windows"] == 256
    # 14 val batches; per checked batch one more pass of its rows (the scoring pass is the
    # other), 2 split and 4 cut passes; 8 batches of training windows.
    assert len(calls) == 14 + 2 * (1 + 2 + 4) + 8


def test_leaking_model_is_flagged_on_every_training_window(evaluator: ModuleType) -> None:
    """Val text that repeats more is 0.2 nats easier: far below the floor, never an early stop."""
    metrics, flags, record = _assess(evaluator, repeat_guess, val_repeat=0.4)
    assert metrics["val_loss"] - metrics["train_loss"] < -0.15
    assert len(flags) == 1 and "seen the held-out text" in flags[0]
    assert record["train_windows"] == 1024


def test_near_the_floor_the_whole_sample_decides(evaluator: ModuleType) -> None:
    s = evaluator.SCALES["tiny"]
    gen = torch.Generator().manual_seed(3)
    train = evaluator.random_windows(_text(200_000, 0.2, 4), T, 1024, gen)
    every = evaluator.window_losses(repeat_guess, train, s.batch)
    for above in (0.0, 0.005, -0.005):  # at the floor, one deviation above it and below
        val_loss = float(every.mean()) + s.min_gap + above
        mean, scored = evaluator.train_loss_in_stages(repeat_guess, train, s, val_loss)
        assert scored == 1024 and mean == float(every.mean())
    # Far above: the first quarter decides, and its mean is the loss reported.
    mean, scored = evaluator.train_loss_in_stages(repeat_guess, train, s, every.mean() + 0.1)
    assert scored == 256 and mean == float(every[:256].mean())


def test_early_pass_needs_a_margin_of_standard_errors(evaluator: ModuleType) -> None:
    losses = np.array([2.0, 2.2] * 128)  # mean 2.1, standard error 0.00626
    floor = -0.02
    assert evaluator.clears_floor(2.1 + floor + 0.032, losses, floor)
    assert not evaluator.clears_floor(2.1 + floor + 0.030, losses, floor)
    assert not evaluator.clears_floor(5.0, np.append(losses, np.nan), floor)
    assert not evaluator.clears_floor(np.nan, losses, floor)


def test_train_loss_that_is_not_a_number_is_flagged(evaluator: ModuleType) -> None:
    """A model that knew the held-out text could return NaN on all other text: NaN compares as
    no gap at all, so the leakage check would say nothing."""

    def nan_off_heldout(idx: torch.Tensor) -> torch.Tensor:
        logits = repeat_guess(idx)
        return torch.where((idx >= 128)[..., None], torch.nan, logits)

    metrics, flags, record = _assess(evaluator, nan_off_heldout, 0.2, (0, 128), (128, 256))
    assert np.isfinite(metrics["val_loss"]) and np.isnan(metrics["train_loss"])
    assert len(flags) == 1 and "train_loss is not finite" in flags[0]
    assert record["train_windows"] == 1024


def test_checks_compare_against_what_was_scored(evaluator: ModuleType) -> None:
    """A model that answers differently the first time it sees a batch (when it is scored)
    than when the checks send it again is caught by the determinism check."""
    seen: set[bytes] = set()

    def first_call_differs(idx: torch.Tensor) -> torch.Tensor:
        key = idx.numpy().tobytes()
        logits = repeat_guess(idx)
        if key not in seen:
            seen.add(key)
            logits = logits + 0.01 * torch.nn.functional.one_hot((idx + 1) % 256, 256)
        return logits

    metrics, flags, _ = _assess(evaluator, first_call_differs, val_repeat=0.2)
    assert len(flags) == 1 and "not deterministic" in flags[0]
    assert np.isnan(metrics["val_loss"])


def test_smoke_check_takes_one_batch_with_every_cut(
    evaluator: ModuleType, smoke_output: Path
) -> None:
    """The smoke check: early feedback (the evaluate step repeats every check in full)."""
    result = evaluator.evaluate(smoke_output, ENV, "tiny", "cpu", check_only=True)
    assert result["flags"] == []
    record = result["checks"]["ckpt.pt"]
    assert len(record["batches"]) == len(record["replacements"]) == 1
    assert set(np.ravel(record["cuts"]).tolist()) == set(range(T - 1))
    assert len(record["kept_rows"]) == 1


@pytest.mark.parametrize("scale", ["tiny", "gpu"])
def test_smoke_settings_keep_the_cut_passes(evaluator: ModuleType, scale: str) -> None:
    s = evaluator.SCALES[scale]
    smoke = evaluator.smoke_settings(s)
    assert (smoke.check_batches, smoke.split_passes) == (1, 1)
    assert smoke.cut_passes == s.cut_passes and smoke.min_gap == s.min_gap


def test_smoke_export_runs_the_candidates_exit_handlers(
    evaluator: ModuleType, output_copy: Path
) -> None:
    """The smoke check's export child (a fork of the checker) behaves as the export step's own
    process: exit handlers that the model code registers run, and what they do to the graph
    is seen (here, a record added to the archive after it was saved)."""
    path = output_copy / "code" / "model.py"
    handler = (
        "import atexit, os, zipfile\n"
        "def _append():\n"
        "    for name in os.listdir('.'):\n"
        "        if name.endswith('.pt2'):\n"
        "            with zipfile.ZipFile(name, 'a') as z:\n"
        "                z.writestr('ckpt/extra/payload.so', b'x')\n"
        "atexit.register(_append)\n"
    )
    text = path.read_text()
    assert "import math\n" in text
    path.write_text(text.replace("import math\n", "import math\n" + handler, 1))
    result = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", check_only=True)
    assert len(result["flags"]) == 1 and "rejected" in result["flags"][0], result["flags"]
