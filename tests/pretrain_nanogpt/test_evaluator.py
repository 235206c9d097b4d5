"""The protected evaluator: it scores honest models and flags the ones that game the reward.

Each test runs the real evaluator on a real (smoke) checkpoint, changing the saved model
code or weights the way a candidate could.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.pretrain_nanogpt.conftest import ENV


def _patch_model(output: Path, old: str, new: str) -> None:
    path = output / "code" / "model.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _add_after_embedding(output: Path, line: str) -> None:
    embed = "        x = self.wte(idx)\n"
    _patch_model(output, embed, embed + f"        {line}\n")


def test_honest_model_is_scored(evaluator: ModuleType, smoke_output: Path) -> None:
    result = evaluator.evaluate(smoke_output, ENV, "tiny", "cpu", check_only=False)
    assert result["flags"] == []
    val, train = result["metrics"]["val_loss"], result["metrics"]["train_loss"]
    # Three steps from random init: close to ln(256) = 5.55, and val close to train.
    assert 4.5 < val < 5.6 and abs(val - train) < 0.2


def test_model_that_attends_to_future_tokens_is_flagged(
    evaluator: ModuleType, output_copy: Path
) -> None:
    _patch_model(output_copy, "is_causal=True", "is_causal=False")
    result = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", check_only=False)
    assert len(result["flags"]) >= 1 and "attends to future tokens" in result["flags"][0]
    assert "val_loss" not in result["metrics"], "a peeking model gets no loss to reward"


def test_model_that_peeks_only_one_token_ahead_is_flagged(
    evaluator: ModuleType, output_copy: Path
) -> None:
    # A subtle leak: mix a little of the next token's embedding into each position.
    _add_after_embedding(output_copy, "x = x + 0.01 * torch.roll(x, -1, dims=1)")
    result = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", check_only=True)
    assert any("attends to future tokens" in f for f in result["flags"])


def test_model_that_mixes_rows_of_the_batch_is_flagged(
    evaluator: ModuleType, output_copy: Path
) -> None:
    # Consecutive evaluation windows are consecutive text: another row can hold the future.
    _add_after_embedding(output_copy, "x = x + x.mean(dim=0, keepdim=True)")
    result = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", check_only=True)
    assert any("rows are not independent" in f for f in result["flags"])


def test_nan_weights_are_flagged(evaluator: ModuleType, output_copy: Path) -> None:
    ckpt = torch.load(output_copy / "ckpt.pt", weights_only=True)
    ckpt["model"]["norm.weight"] = torch.full_like(ckpt["model"]["norm.weight"], math.nan)
    torch.save(ckpt, output_copy / "ckpt.pt")
    result = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", check_only=False)
    assert any("not finite" in f for f in result["flags"])


def test_model_code_cannot_reach_the_result_file(output_copy: Path, tmp_path: Path) -> None:
    """The candidate's code runs in the export child, which never learns the result path."""
    _patch_model(output_copy, "import math\n",
                 "import math\nimport os\n"
                 "if os.environ.get('EXECUTOR_RESULT_PATH'):\n"
                 "    open(os.environ['EXECUTOR_RESULT_PATH'], 'w').write('{\"metrics\": "
                 "{\"val_loss\": 1.01}, \"flags\": []}')\n"
                 "    raise SystemExit(0)\n")  # fmt: skip
    result_path = tmp_path / "result.json"
    env = {**os.environ, "EXECUTOR_OUTPUT_DIR": str(output_copy), "EXECUTOR_ENV_DIR": str(ENV),
           "EXECUTOR_RESULT_PATH": str(result_path), "EXECUTOR_SCALE": "tiny"}  # fmt: skip
    proc = subprocess.run([sys.executable, str(ENV / "evaluate.py")], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(result_path.read_text())["metrics"]["val_loss"] > 4


def test_unexportable_model_fails_with_the_reason(evaluator: ModuleType, output_copy: Path) -> None:
    _patch_model(output_copy, "        T = idx.size(1)\n",
                 "        T = idx.size(1)\n        if idx.sum() > 0:  # branches on data\n"
                 "            T = int(idx[0, 0]) % 7 + 1\n")  # fmt: skip
    with pytest.raises(SystemExit, match=r"exportable with torch\.export"):
        evaluator.evaluate(output_copy, ENV, "tiny", "cpu", check_only=True)


def test_missing_checkpoint_is_a_clear_failure(evaluator: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="training wrote no checkpoint"):
        evaluator.evaluate(tmp_path, ENV, "tiny", "cpu", check_only=False)


LOOKUP_BUILD = """
        import os
        import numpy as np
        path = os.path.join(os.environ["EXECUTOR_ENV_DIR"], "heldout", "shakespeare_val.txt")
        text = np.frombuffer(open(path, "rb").read(), np.uint8).astype(np.int64)
        h = np.zeros(len(text) - 10, np.int64)
        for i in range(10):
            h = (h * 257 + text[i : len(text) - 10 + i]) % 1048573
        table = np.zeros(1048573, np.int64)
        table[h] = text[10:]
        self.register_buffer("lookup", torch.from_numpy(table), persistent=False)
"""
LOOKUP_USE = """
        h = torch.zeros_like(idx)
        for i in range(10):
            h = (h * 257 + F.pad(idx, (9 - i, 0))[:, :T]) % 1048573
        logits = self.lm_head(self.norm(x))
        return logits + 8.0 * F.one_hot(self.lookup[h], logits.size(-1)).float()
"""


def test_model_that_memorized_the_heldout_text_is_flagged(
    evaluator: ModuleType, output_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A causal cheat: a 10-gram table of the validation text, built when the model is built."""
    monkeypatch.setenv("EXECUTOR_ENV_DIR", str(ENV))
    _patch_model(output_copy, "        self.apply(self._init_weights)\n",
                 LOOKUP_BUILD + "        self.apply(self._init_weights)\n")  # fmt: skip
    _patch_model(output_copy, "        return self.lm_head(self.norm(x))\n", LOOKUP_USE)
    result = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", check_only=False)
    assert result["metrics"]["val_loss"] < result["metrics"]["train_loss"] - 1.0
    assert any("seen the held-out text" in f for f in result["flags"])


def test_loss_is_mean_cross_entropy_over_non_overlapping_windows(evaluator: ModuleType) -> None:
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 8, (4097,), generator=gen).numpy().astype("uint8")

    def repeat_guess(idx: torch.Tensor) -> torch.Tensor:  # bets the next token repeats this one
        return 3.0 * torch.nn.functional.one_hot(idx, 256).float()

    data = evaluator.windows(tokens, 128)
    assert data.shape == (32, 129)
    assert torch.equal(data[1, :5], torch.from_numpy(tokens[128:133].astype("int64")))
    expected = torch.nn.functional.cross_entropy(
        repeat_guess(data[:, :-1]).flatten(0, 1), data[:, 1:].flatten()
    ).item()
    # Batches of 10 leave a padded last batch, which must not count.
    assert evaluator.mean_loss(repeat_guess, data, 10) == pytest.approx(expected, rel=1e-6)
    assert evaluator.mean_loss(repeat_guess, data, 32) == pytest.approx(expected, rel=1e-6)
