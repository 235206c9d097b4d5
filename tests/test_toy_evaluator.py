"""The toy environment's evaluator: the split it scores and the per-item outcomes it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TOY_ENV, clean_environ


def _evaluate(tmp_path: Path, w: np.ndarray, split: str | None) -> subprocess.CompletedProcess:
    out, result = tmp_path / "output", tmp_path / "eval" / (split or "default") / "result.json"
    out.mkdir(exist_ok=True)
    result.parent.mkdir(parents=True)
    np.savez(out / "model.npz", w=w)
    env = clean_environ(
        EXECUTOR_ENV_DIR=str(TOY_ENV),
        EXECUTOR_OUTPUT_DIR=str(out),
        EXECUTOR_RESULT_PATH=str(result),
    )
    if split is not None:
        env["EXECUTOR_EVAL_SPLIT"] = split
    return subprocess.run(
        [sys.executable, str(TOY_ENV / "evaluate.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _read(tmp_path: Path, split: str | None) -> tuple[float, list[dict]]:
    """(val_mse, items) that the evaluation of `split` wrote."""
    folder = tmp_path / "eval" / (split or "default")
    metrics = json.loads((folder / "result.json").read_text())["metrics"]
    items = [json.loads(x) for x in (folder / "items.jsonl").read_text().splitlines()]
    return metrics["val_mse"], items


def test_splits_are_disjoint_and_items_average_to_the_metric(tmp_path: Path) -> None:
    w = np.random.default_rng(0).normal(size=8)
    seen: dict[str | None, list[dict]] = {}
    for split in (None, "screen", "confirm"):
        proc = _evaluate(tmp_path, w, split)
        assert proc.returncode == 0, proc.stderr
        mse, items = _read(tmp_path, split)
        ids = [r["id"] for r in items]
        assert len(ids) == len(set(ids)) == 2048
        values = [r["value"] for r in items]
        assert sum(values) / len(values) == pytest.approx(mse, rel=1e-9) and mse > 1
        seen[split] = items
    assert seen[None] == seen["screen"], "screen by default, the same items every time"
    assert seen["screen"][0]["id"] == "x0000" and seen["confirm"][0]["id"] == "x2048"
    assert not {r["id"] for r in seen["screen"]} & {r["id"] for r in seen["confirm"]}


def test_an_unknown_split_is_refused_in_one_line(tmp_path: Path) -> None:
    proc = _evaluate(tmp_path, np.zeros(8), "final")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "EXECUTOR_EVAL_SPLIT must be screen or confirm, not 'final'"
    assert not any((tmp_path / "eval").rglob("*.json*")), "nothing written"


def test_weights_without_a_finite_error_are_flagged_and_leave_no_items(tmp_path: Path) -> None:
    proc = _evaluate(tmp_path, np.full(8, np.nan), None)
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "eval" / "default"
    assert json.loads((folder / "result.json").read_text())["flags"] == ["val_mse is not finite"]
    assert not (folder / "items.jsonl").exists()
