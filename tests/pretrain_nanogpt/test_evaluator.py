"""The protected evaluator: it scores honest models and flags the ones that game the reward.

Each test runs the real export step (export_model.py, in a subprocess, with the environment
folder as the export step sees it: no held-out text) and the real evaluator on a real smoke
checkpoint, changing the saved model code, the weights or the exported graph the way a
candidate could.
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from torch.export.pt2_archive import PT2ArchiveReader, PT2ArchiveWriter

from tests.env_modules import import_repo, run_script
from tests.pretrain_nanogpt.conftest import ENV, export, run_export

T = 128  # the tiny scale's context


def _patch_model(output: Path, old: str, new: str) -> None:
    path = output / "code" / "model.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _add_after_embedding(output: Path, line: str) -> None:
    embed = "        x = self.wte(idx)\n"
    _patch_model(output, embed, embed + f"        {line}\n")


def _add_to_init(output: Path, code: str) -> None:
    init = "        self.apply(self._init_weights)\n"
    _patch_model(output, init, code + init)


def _evaluate(evaluator: ModuleType, output: Path, export_dir: Path) -> dict:
    return evaluator.evaluate(output, ENV, "tiny", "cpu", export_dir=export_dir)


def _no_loss(result: dict) -> bool:
    """A flagged model's only metric is val_loss = NaN (the harness reads flags beside it)."""
    metrics = result["metrics"]
    return list(metrics) == ["val_loss"] and math.isnan(metrics["val_loss"])


def tiny_scale(evaluator: ModuleType, monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    """The evaluator's tiny scale with `changes`, for this test."""
    monkeypatch.setitem(evaluator.SCALES, "tiny", replace(evaluator.SCALES["tiny"], **changes))


@pytest.fixture
def fast(evaluator: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Less text scored (8 batches of held-out text, 4 of training text), the same checks."""
    tiny_scale(evaluator, monkeypatch, val_tokens=32_768, train_tokens=16_384)


# --- honest models ---------------------------------------------------------------------------


def test_honest_model_is_scored_and_every_cut_is_checked(
    evaluator: ModuleType, smoke_output: Path, smoke_export: Path
) -> None:
    result = _evaluate(evaluator, smoke_output, smoke_export)
    assert result["flags"] == []
    val, train = result["metrics"]["val_loss"], result["metrics"]["train_loss"]
    # Two steps from random init: close to ln(256) = 5.55, and val close to train.
    assert 4.5 < val < 5.6 and abs(val - train) < 0.05
    # What was checked is recorded: two scored batches, each with every cut position 0..T-2.
    record = result["checks"]["ckpt.pt"]
    assert isinstance(result["checks"]["seed"], int)
    assert len(record["batches"]) == 2 and not set(record["batches"]) & set(record["replacements"])
    windows = (len(ENV.joinpath("heldout/shakespeare_val.txt").read_bytes()) - 1) // T
    assert result["checks"]["val_windows"] == (windows + 1) // 2 == 436, "screen: even windows"
    full_batches = 436 // 32
    assert all(0 <= b < full_batches for b in record["batches"] + record["replacements"])
    for cuts in record["cuts"]:
        assert set(np.ravel(cuts).tolist()) == set(range(T - 1))
    assert len(record["kept_rows"]) == 4 and all(len(rows) == 16 for rows in record["kept_rows"])
    # Far above the leakage floor: the first quarter of the training windows decides.
    assert record["train_windows"] == 256


def test_checked_batches_and_cuts_are_drawn_fresh(
    evaluator: ModuleType, smoke_output: Path, smoke_export: Path, fast: None
) -> None:
    first, second = (_evaluate(evaluator, smoke_output, smoke_export) for _ in range(2))
    assert first["checks"]["seed"] != second["checks"]["seed"]
    assert first["checks"]["ckpt.pt"]["cuts"] != second["checks"]["ckpt.pt"]["cuts"]
    assert first["metrics"]["val_loss"] == second["metrics"]["val_loss"]


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
    losses = evaluator.window_losses(repeat_guess, data, 10)
    assert losses.mean() == pytest.approx(expected, rel=1e-6)
    assert evaluator.window_losses(repeat_guess, data, 32).mean() == pytest.approx(
        expected, rel=1e-6
    )
    # Each window's own loss, and their mean is the loss.
    assert losses.shape == (32,) and losses.dtype == np.float64
    third = torch.nn.functional.cross_entropy(repeat_guess(data[3:4, :-1])[0], data[3, 1:])
    assert losses[3] == pytest.approx(third.item(), rel=1e-6) and losses.std() > 0


def test_splits_take_alternate_windows(evaluator: ModuleType, capsys) -> None:
    tokens = np.arange(5000)  # each token its own position
    every = evaluator.windows(tokens, 128)
    assert len(every) == 39
    # 2 x 1024 tokens: 16 windows, 8 a split, the even ones screen's, the odd ones confirm's.
    screen, s_windows = evaluator.split_windows(tokens, 128, 1024, "screen")
    confirm, c_windows = evaluator.split_windows(tokens, 128, 1024, "confirm")
    assert screen == list(range(0, 16, 2)) and confirm == list(range(1, 16, 2))
    assert torch.equal(s_windows, every[screen]) and torch.equal(c_windows, every[confirm])
    # Their targets (what is scored) share no token position.
    assert not set(s_windows[:, 1:].ravel().tolist()) & set(c_windows[:, 1:].ravel().tolist())
    assert capsys.readouterr().err == ""
    # No cap: alternate windows of all the text.
    assert evaluator.split_windows(tokens, 128, None, "confirm")[0] == list(range(1, 39, 2))
    # Too little text for two full splits: half each, and a note saying so.
    index, _ = evaluator.split_windows(tokens, 128, 4096, "screen")
    assert index == list(range(0, 39, 2)) and "fewer than the 64" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="EXECUTOR_EVAL_SPLIT must be screen or confirm"):
        evaluator.split_windows(tokens, 128, 1024, "holdout")


def test_items_are_the_split_windows_losses(
    evaluator: ModuleType, smoke_output: Path, smoke_export: Path, fast: None
) -> None:
    ids = {}
    for split in ("screen", "confirm"):
        result = evaluator.evaluate(
            smoke_output, ENV, "tiny", "cpu", export_dir=smoke_export, split=split
        )
        assert result["flags"] == [] and result["checks"]["split"] == split
        items = result["items"]
        ids[split] = [r["id"] for r in items]
        assert len(set(ids[split])) == len(items) == 256, "2 x 32,768 tokens, every other window"
        assert all(r["tokens"] == T and math.isfinite(r["value"]) for r in items)
        values = [r["value"] for r in items]
        assert sum(values) / len(values) == pytest.approx(result["metrics"]["val_loss"], rel=1e-9)
        assert len(set(values)) > 200, "each window's own loss"
        again = evaluator.evaluate(
            smoke_output, ENV, "tiny", "cpu", export_dir=smoke_export, split=split
        )
        assert again["items"] == items, "same split, same windows and losses"
    assert ids["screen"][:3] == ["w000000", "w000002", "w000004"]
    assert ids["confirm"][:3] == ["w000001", "w000003", "w000005"]
    assert not set(ids["screen"]) & set(ids["confirm"])
    with pytest.raises(SystemExit, match="EXECUTOR_EVAL_SPLIT must be screen or confirm"):
        evaluator.evaluate(smoke_output, ENV, "tiny", "cpu", export_dir=smoke_export, split="x")


def test_evaluate_step_writes_items_only_for_a_model_with_a_loss(
    evaluator: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """items.jsonl before result.json, both whole; a model without a loss leaves none (not
    even one from an earlier evaluation). The split comes from EXECUTOR_EVAL_SPLIT."""
    result_path = tmp_path / "result.json"
    monkeypatch.setenv("EXECUTOR_RESULT_PATH", str(result_path))
    monkeypatch.setattr("sys.argv", ["evaluate.py"])
    items = [{"id": "w000001", "value": 2.0, "tokens": T}, {"id": "w000003", "value": 3.0}]
    outcome = {"metrics": {"val_loss": 2.5}, "flags": [], "checks": {}, "items": items}
    asked: list[str] = []

    def fake_evaluate(*args: Any) -> dict:
        asked.append(args[-1])
        return json.loads(json.dumps(outcome))

    replaced: list[str] = []
    real_replace = os.replace

    def recording_replace(src: Any, dst: Any) -> None:
        replaced.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(evaluator, "evaluate", fake_evaluate)
    monkeypatch.setattr(evaluator.os, "replace", recording_replace)
    monkeypatch.setenv("EXECUTOR_EVAL_SPLIT", "confirm")
    evaluator.main()
    assert asked == ["confirm"] and replaced == ["items.jsonl", "result.json"]
    lines = (tmp_path / "items.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == items
    assert "items" not in json.loads(result_path.read_text())
    # Flagged: no loss, no items.
    outcome.update(metrics={"val_loss": math.nan}, flags=["peeks"], items=[])
    monkeypatch.delenv("EXECUTOR_EVAL_SPLIT")
    evaluator.main()
    assert asked[-1] == "screen" and not (tmp_path / "items.jsonl").exists()
    assert json.loads(result_path.read_text())["flags"] == ["peeks"]
    monkeypatch.setenv("EXECUTOR_EVAL_SPLIT", "Screen")
    with pytest.raises(SystemExit, match="EXECUTOR_EVAL_SPLIT must be screen or confirm"):
        evaluator.main()
    assert len(asked) == 2, "refused before evaluating"


# --- models that peek ------------------------------------------------------------------------


def test_model_that_attends_to_future_tokens_is_flagged(
    evaluator: ModuleType, output_copy: Path, env_without_heldout: Path, fast: None
) -> None:
    _patch_model(output_copy, "is_causal=True", "is_causal=False")
    result = _evaluate(evaluator, output_copy, export(output_copy, env_without_heldout))
    assert len(result["flags"]) == 1 and "attends to future tokens" in result["flags"][0]
    assert _no_loss(result), "a peeking model gets no loss to reward"
    assert result["items"] == [], "nor items"


def test_model_that_peeks_only_one_token_ahead_is_flagged_by_the_smoke_check(
    evaluator: ModuleType, output_copy: Path
) -> None:
    # A subtle leak: mix a little of the next token's embedding into each position.
    _add_after_embedding(output_copy, "x = x + 0.01 * torch.roll(x, -1, dims=1)")
    result = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", check_only=True)
    assert any("attends to future tokens" in f for f in result["flags"])


def test_model_that_peeks_at_a_few_positions_only_is_flagged(
    evaluator: ModuleType, output_copy: Path, env_without_heldout: Path, fast: None
) -> None:
    # The old check cut at 0, 64, 126 and three seeded positions (42, 93, 96): peeking from
    # positions 5, 41 and 100 at the next token passed it.
    _add_after_embedding(
        output_copy,
        "x = x + 0.01 * torch.roll(x, -1, dims=1) * torch.isin(torch.arange(x.size(1), "
        "device=x.device), torch.tensor([5, 41, 100], device=x.device)).to(x.dtype)[None, :, None]",
    )
    result = _evaluate(evaluator, output_copy, export(output_copy, env_without_heldout))
    assert any("attends to future tokens" in f for f in result["flags"]), result["flags"]


# A persistent buffer, filled in the checkpoint by "training": which 10-grams of training text
# the model has seen. The model peeks at the next token only where the context is new to it.
SEEN_INIT = """
        self.register_buffer("seen", torch.zeros(16777216, dtype=torch.bool))
"""
SEEN_GATE = """
        h = torch.zeros_like(idx)
        for i in range(10):
            h = (h * 257 + F.pad(idx, (9 - i, 0))[:, :T]) % 16777216
        new = ~self.seen[h] & (torch.arange(T, device=idx.device) >= 9)
        x = x + 0.01 * torch.roll(x, -1, dims=1) * new[..., None].to(x.dtype)
"""


def _ten_gram_hashes(text: bytes, modulus: int) -> np.ndarray:
    tokens = np.frombuffer(text, np.uint8).astype(np.int64)
    h = np.zeros(len(tokens) - 9, np.int64)
    for i in range(10):
        h = (h * 257 + tokens[i : len(tokens) - 9 + i]) % modulus
    return h


def test_model_causal_on_training_text_but_peeking_on_other_text_is_flagged(
    evaluator: ModuleType, output_copy: Path, env_without_heldout: Path, fast: None
) -> None:
    _add_to_init(output_copy, SEEN_INIT)
    _add_after_embedding(output_copy, SEEN_GATE.strip())
    ckpt = torch.load(output_copy / "ckpt.pt", weights_only=True)
    seen = torch.zeros(16777216, dtype=torch.bool)
    train_text = (ENV / "data" / "shakespeare" / "train.txt").read_bytes()
    seen[torch.from_numpy(_ten_gram_hashes(train_text, 16777216))] = True
    ckpt["model"]["seen"] = seen
    torch.save(ckpt, output_copy / "ckpt.pt")
    # On training text it is causal: checks there (the smoke check) cannot see the peeking.
    assert evaluator.evaluate(output_copy, ENV, "tiny", "cpu", check_only=True)["flags"] == []
    # The evaluate step checks the held-out batches it scores.
    result = _evaluate(evaluator, output_copy, export(output_copy, env_without_heldout))
    assert any("attends to future tokens" in f for f in result["flags"]), result["flags"]


def test_model_that_mixes_rows_of_the_batch_is_flagged(
    evaluator: ModuleType, output_copy: Path, env_without_heldout: Path, fast: None
) -> None:
    # A split's consecutive windows are nearby text: the next row holds the near future.
    _add_after_embedding(output_copy, "x = x + 0.01 * torch.roll(x, -1, dims=0)")
    result = _evaluate(evaluator, output_copy, export(output_copy, env_without_heldout))
    assert any("rows are not independent" in f for f in result["flags"]), result["flags"]


# --- held-out text ------------------------------------------------------------------------


LOOKUP_INIT = """
        table = torch.zeros(1048573, dtype=torch.long)
        self.register_buffer("lookup", table, persistent={persistent})
{fill}"""
READ_HELDOUT = """
        import os
        import numpy as np
        path = os.path.join(os.environ["EXECUTOR_ENV_DIR"], "heldout", "shakespeare_val.txt")
        text = np.frombuffer(open(path, "rb").read(), np.uint8).astype(np.int64)
        h = np.zeros(len(text) - 10, np.int64)
        for i in range(10):
            h = (h * 257 + text[i : len(text) - 10 + i]) % 1048573
        table = np.zeros(1048573, np.int64)
        table[h] = text[10:]
        self.lookup.copy_(torch.from_numpy(table))
"""
LOOKUP_USE = """
        h = torch.zeros_like(idx)
        for i in range(10):
            h = (h * 257 + F.pad(idx, (9 - i, 0))[:, :T]) % 1048573
        logits = self.lm_head(self.norm(x))
        return logits + {boost} * F.one_hot(self.lookup[h], logits.size(-1)).float()
"""


def _lookup_model(output: Path, persistent: bool, fill: str, boost: float) -> None:
    """A causal cheat: the next byte after each 10-gram of the held-out text."""
    _add_to_init(output, LOOKUP_INIT.format(persistent=persistent, fill=fill))
    final = "        return self.lm_head(self.norm(x))\n"
    _patch_model(output, final, LOOKUP_USE.format(boost=boost))


def test_export_step_cannot_read_the_heldout_text(
    output_copy: Path, env_without_heldout: Path, tmp_path: Path
) -> None:
    """Model code that reads held-out text while the model is built fails in the export step."""
    _lookup_model(output_copy, persistent=False, fill=READ_HELDOUT, boost=8.0)
    proc = run_export(output_copy, tmp_path / "export", env_without_heldout)
    assert proc.returncode != 0 and "shakespeare_val.txt" in proc.stderr
    assert not (tmp_path / "export" / "ckpt.pt2").exists()


def test_tables_built_outside_training_are_rejected(
    evaluator: ModuleType, output_copy: Path
) -> None:
    """Had the export step seen held-out text, the table it built would not reach the score:
    it is no weight that training saved, and too large to pass as a constant."""
    _lookup_model(output_copy, persistent=False, fill=READ_HELDOUT, boost=8.0)
    result = _evaluate(evaluator, output_copy, export(output_copy, ENV))
    assert _no_loss(result) and len(result["flags"]) == 1
    assert "numbers besides the checkpoint's weights" in result["flags"][0]


def test_model_trained_on_heldout_text_is_flagged_by_the_gap_floor(
    evaluator: ModuleType, output_copy: Path, env_without_heldout: Path, fast: None
) -> None:
    """A table that training wrote into the checkpoint (training that read held-out text):
    a small boost moves val_loss about 0.15 below train_loss, which the old fixed margin
    (0.25) let through and the floor measured on the baseline does not."""
    _lookup_model(output_copy, persistent=True, fill="", boost=0.2)
    ckpt = torch.load(output_copy / "ckpt.pt", weights_only=True)
    val_text = (ENV / "heldout" / "shakespeare_val.txt").read_bytes()
    table = torch.zeros(1048573, dtype=torch.long)
    table[torch.from_numpy(_ten_gram_hashes(val_text, 1048573)[:-1])] = torch.tensor(
        list(val_text[10:]), dtype=torch.long
    )
    ckpt["model"]["lookup"] = table
    torch.save(ckpt, output_copy / "ckpt.pt")
    result = _evaluate(evaluator, output_copy, export(output_copy, env_without_heldout))
    gap = result["metrics"]["val_loss"] - result["metrics"]["train_loss"]
    assert -0.25 < gap < evaluator.SCALES["tiny"].min_gap, gap
    assert len(result["flags"]) == 1 and "seen the held-out text" in result["flags"][0]
    assert result["checks"]["ckpt.pt"]["train_windows"] == 128, "below the floor: every window"


def test_nan_weights_are_flagged(
    evaluator: ModuleType, output_copy: Path, env_without_heldout: Path, fast: None
) -> None:
    ckpt = torch.load(output_copy / "ckpt.pt", weights_only=True)
    ckpt["model"]["norm.weight"] = torch.full_like(ckpt["model"]["norm.weight"], math.nan)
    torch.save(ckpt, output_copy / "ckpt.pt")
    result = _evaluate(evaluator, output_copy, export(output_copy, env_without_heldout))
    assert len(result["flags"]) == 1 and "not finite" in result["flags"][0]
    assert result["items"] == []


# --- the export step and its graph ---------------------------------------------------------


def test_evaluate_step_runs_no_candidate_code(
    output_copy: Path, env_without_heldout: Path, tmp_path: Path
) -> None:
    """Model code runs in the export step; the evaluate step only loads the graph."""
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'a').write('model code ran\\n')\n"
    _patch_model(output_copy, "import math\n", "import math\n" + code)
    export_dir = export(output_copy, env_without_heldout)
    assert marker.read_text() == "model code ran\n"
    marker.unlink()
    result_path = tmp_path / "result.json"
    proc = run_script(
        [ENV / "evaluate.py"],
        tmp_path,
        timeout=600,
        EXECUTOR_OUTPUT_DIR=str(output_copy),
        EXECUTOR_ENV_DIR=str(ENV),
        EXECUTOR_EXPORT_DIR=str(export_dir),
        EXECUTOR_RESULT_PATH=str(result_path),
        EXECUTOR_SCALE="tiny",
        EXECUTOR_EVAL_SPLIT="confirm",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(result_path.read_text())
    assert result["flags"] == [] and result["metrics"]["val_loss"] > 4
    items = [json.loads(x) for x in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert len(items) == 435 and items[0]["id"] == "w000001", "confirm: the odd windows"
    mean = sum(r["value"] for r in items) / len(items)
    assert mean == pytest.approx(result["metrics"]["val_loss"], rel=1e-6)
    assert not marker.exists()


def test_export_that_changes_the_weights_is_flagged(
    evaluator: ModuleType, output_copy: Path, env_without_heldout: Path
) -> None:
    """The export step runs after the budget: weights it changes (more training, say) are not
    the ones training saved, and are not scored."""
    _patch_model(
        output_copy,
        "    def forward(self, idx: torch.Tensor) -> torch.Tensor:\n",
        "    def load_state_dict(self, state, *args, **kwargs):\n"
        "        state = {k: v * 1.01 for k, v in state.items()}\n"
        "        return super().load_state_dict(state, *args, **kwargs)\n\n"
        "    def forward(self, idx: torch.Tensor) -> torch.Tensor:\n",
    )
    result = _evaluate(evaluator, output_copy, export(output_copy, env_without_heldout))
    assert _no_loss(result) and len(result["flags"]) == 1
    assert "is not the" in result["flags"][0] and "saved in ckpt.pt" in result["flags"][0]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("x = x + self.calls.add_(1)", "mutate no state"),
        ("x = F.dropout(x, 0.1, training=True)", "draws random numbers"),
    ],
)
def test_graphs_that_keep_state_or_draw_random_numbers_are_rejected(
    evaluator: ModuleType, output_copy: Path, env_without_heldout: Path, line: str, reason: str
) -> None:
    """Either could tell a check's call from a scoring call."""
    _add_to_init(output_copy, '        self.register_buffer("calls", torch.zeros(()))\n')
    _add_after_embedding(output_copy, line)
    ckpt = torch.load(output_copy / "ckpt.pt", weights_only=True)
    ckpt["model"]["calls"] = torch.zeros(())
    torch.save(ckpt, output_copy / "ckpt.pt")
    result = _evaluate(evaluator, output_copy, export(output_copy, env_without_heldout))
    assert _no_loss(result) and len(result["flags"]) == 1
    assert "rejected" in result["flags"][0] and reason in result["flags"][0]


def _rewrite_graph(export_dir: Path, change) -> None:
    """Edit the records of the exported archive, as code in the export step could."""
    path = export_dir / "ckpt.pt2"
    with PT2ArchiveReader(str(path)) as reader:
        records = {n: reader.read_bytes(n) for n in reader.get_file_names()}
    change(records)
    with PT2ArchiveWriter(str(path)) as writer:
        for name, data in records.items():
            if not name.startswith(".data/"):
                writer.write_bytes(name, data)


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # unpickling this calls os.system
        return (os.system, (f"touch {self.marker}",))


def _pickle_a_weight(records: dict[str, bytes], payload: bytes) -> None:
    config = json.loads(records["data/weights/model_weights_config.json"])
    entry = config["config"]["norm.weight"]
    entry["use_pickle"] = True
    records["data/weights/" + entry["path_name"]] = payload
    records["data/weights/model_weights_config.json"] = json.dumps(config).encode()


def _pickle_the_example_inputs(records: dict[str, bytes], payload: bytes) -> None:
    records["data/sample_inputs/model.pt"] = payload


@pytest.mark.parametrize(
    ("plant", "reason"),
    [
        (_pickle_a_weight, "not stored as a plain tensor"),
        (_pickle_the_example_inputs, "example inputs are not plain tensors"),
    ],
)
def test_graph_with_a_pickled_payload_is_rejected_without_unpickling(
    evaluator: ModuleType, smoke_output: Path, smoke_export: Path, tmp_path: Path, plant, reason
) -> None:
    """torch.export.load unpickles tensors marked use_pickle, and falls back to unpickling
    the example inputs when the safe load fails; the evaluator does neither."""
    marker = tmp_path / "unpickled"
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "ckpt.pt2").write_bytes((smoke_export / "ckpt.pt2").read_bytes())
    buffer = io.BytesIO()
    torch.save(_RunsCode(str(marker)), buffer)
    _rewrite_graph(export_dir, lambda records: plant(records, buffer.getvalue()))
    result = _evaluate(evaluator, smoke_output, export_dir)
    assert _no_loss(result) and len(result["flags"]) == 1
    assert reason in result["flags"][0], result["flags"]
    assert not marker.exists()


def _read_a_file(program: dict, node: dict) -> None:
    """An operator that reads a file (relative to the evaluator's folder, say)."""
    node["target"] = "torch.ops.aten.from_file.default"
    node["inputs"] = [
        {"name": "filename", "arg": {"as_string": "shakespeare_val.txt"}, "kind": 1},
        {"name": "size", "arg": {"as_int": 4096}, "kind": 1},
    ]


def _code_in_a_name(program: dict, node: dict) -> None:
    """torch.fx prints names into the Python it generates and runs."""
    node["name"] = 'x"); import os; os.system("true'


def _symbolic_shape(program: dict, node: dict) -> None:
    """The loader parses symbolic sizes with sympy, which evaluates Python."""
    meta = program["graph_module"]["graph"]["tensor_values"][
        node["outputs"][0]["as_tensor"]["name"]
    ]
    meta["sizes"][0] = {"as_expr": {"expr_str": "__import__('os').getpid()"}}


def _function_as_argument(program: dict, node: dict) -> None:
    """An operator argument that the loader looks up by name under `torch`."""
    node["inputs"][0]["arg"] = {"as_operator": "torch.os.system"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_read_a_file, "takes a string 'filename'"),
        (_code_in_a_name, "unexpected string"),
        (_symbolic_shape, "symbolic shapes"),
        (_function_as_argument, "passes operator arguments"),
    ],
)
def test_graph_with_file_access_or_code_in_names_is_rejected(
    evaluator: ModuleType, smoke_output: Path, smoke_export: Path, tmp_path: Path, change, reason
) -> None:
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "ckpt.pt2").write_bytes((smoke_export / "ckpt.pt2").read_bytes())

    def edit(records: dict[str, bytes]) -> None:
        program = json.loads(records["models/model.json"])
        nodes = program["graph_module"]["graph"]["nodes"]
        change(program, next(n for n in nodes if n["target"] == "torch.ops.aten.gelu.default"))
        records["models/model.json"] = json.dumps(program).encode()

    _rewrite_graph(export_dir, edit)
    result = _evaluate(evaluator, smoke_output, export_dir)
    assert _no_loss(result) and len(result["flags"]) == 1
    assert "rejected" in result["flags"][0] and reason in result["flags"][0], result["flags"]


def test_archive_with_extra_records_is_rejected(
    evaluator: ModuleType, smoke_output: Path, smoke_export: Path, tmp_path: Path
) -> None:
    """An archive can carry AOTInductor libraries, which torch.export.load would load."""
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "ckpt.pt2").write_bytes((smoke_export / "ckpt.pt2").read_bytes())
    _rewrite_graph(export_dir, lambda r: r.update({"data/aotinductor/model/model.so": b"\x7fELF"}))
    result = _evaluate(evaluator, smoke_output, export_dir)
    assert "unexpected records" in result["flags"][0]


def test_unexportable_model_fails_with_the_reason(evaluator: ModuleType, output_copy: Path) -> None:
    _patch_model(
        output_copy,
        "        T = idx.size(1)\n",
        "        T = idx.size(1)\n        if idx.sum() > 0:  # branches on data\n"
        "            T = int(idx[0, 0]) % 7 + 1\n",
    )
    with pytest.raises(SystemExit, match=r"exportable with torch\.export"):
        evaluator.evaluate(output_copy, ENV, "tiny", "cpu", check_only=True)


def test_missing_checkpoint_or_graph_is_a_clear_failure(
    evaluator: ModuleType, smoke_output: Path, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit, match="training wrote no checkpoint"):
        evaluator.evaluate(tmp_path, ENV, "tiny", "cpu", export_dir=tmp_path)
    with pytest.raises(SystemExit, match="the export step wrote no graph"):
        evaluator.evaluate(smoke_output, ENV, "tiny", "cpu", export_dir=tmp_path)


# --- speedrun: time to target from the harness's times -------------------------------------


def test_only_checkpoints_the_harness_timed_count(evaluator: ModuleType, tmp_path: Path) -> None:
    for name in ("ckpt_000010.pt", "ckpt_000020.pt", "ckpt_000030.pt", "ckpt.pt", "other.pt"):
        (tmp_path / name).write_bytes(b"")
    times = {
        "ckpt_000020.pt": 240.5,
        "ckpt_000010.pt": 120.0,
        "ckpt.pt": 300.0,
        "ckpt_000040.pt": 60.0,  # timed but gone
        "other.pt": 1.0,
        "../ckpt_000010.pt": 1.0,
        "ckpt_000030.pt": math.nan,
    }
    (tmp_path / "times.json").write_text(json.dumps(times))
    timed = evaluator.timed_checkpoints(tmp_path, tmp_path / "times.json")
    assert [(t, p.name) for t, p in timed] == [
        (120.0, "ckpt_000010.pt"),
        (240.5, "ckpt_000020.pt"),
        (300.0, "ckpt.pt"),
    ]


def test_time_to_target_is_the_harness_time_of_the_first_checkpoint_at_target(
    evaluator: ModuleType,
    output_copy: Path,
    env_without_heldout: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Two steps of training moved the loss from ~5.55 (initial weights) to ~5.3; a target
    between the two is reached by the trained weights only."""
    ckpt = torch.load(output_copy / "ckpt.pt", weights_only=True)
    model = import_repo(output_copy / "code", ("model",)).model
    torch.manual_seed(0)
    initial = model.GPT(model.GPTConfig(**ckpt["config"])).state_dict()
    # Training claims (elapsed_s) it was early; only the harness's times count.
    torch.save({**ckpt, "model": initial, "elapsed_s": 1.0}, output_copy / "ckpt_000001.pt")
    torch.save({**ckpt, "elapsed_s": 2.0}, output_copy / "ckpt_000002.pt")
    torch.save({**ckpt, "elapsed_s": 0.5}, output_copy / "ckpt_000003.pt")  # never timed
    times = {"ckpt_000001.pt": 120.0, "ckpt_000002.pt": 240.0, "ckpt.pt": 250.0}
    (tmp_path / "times.json").write_text(json.dumps(times))
    # A speedrun at the tiny scale: little text scored, one pass of each check.
    passes = {"check_batches": 1, "cut_passes": 1, "split_passes": 1}
    tiny_scale(evaluator, monkeypatch, val_tokens=16_384, train_tokens=4_096, target=5.4, **passes)
    result = evaluator.evaluate(
        output_copy,
        ENV,
        "tiny",
        "cpu",
        export_dir=export(output_copy, env_without_heldout),
        times_path=tmp_path / "times.json",
    )
    assert result["flags"] == [] and result["metrics"]["val_loss"] < 5.4
    assert result["metrics"]["target_reached"] == 1.0
    assert result["metrics"]["time_to_target_s"] == 240.0
    timed = result["checks"]["timed"]
    assert timed["ckpt_000001.pt"]["val_loss"] > 5.4 and "ckpt_000003.pt" not in timed
