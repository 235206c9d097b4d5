"""Protected evaluator of `pretrain_nanogpt`: held-out loss of the trained model, with checks.

    python evaluate.py            # the harness's evaluate step: writes $EXECUTOR_RESULT_PATH
    python evaluate.py --check    # smoke: export and causality checks only

It reads `ckpt.pt` (and, at the speedrun scale, the intermediate `ckpt_*.pt`) and the model
code that training saved into $EXECUTOR_OUTPUT_DIR/code. The candidate's code runs only in a
child process (`export_model.py`) that exports the model as a graph; this process loads that
graph and computes everything itself:

- val_loss: mean next-token cross-entropy (nats) over held-out text training never reads,
  in windows of the scale's context length;
- causality: logits at position t must not change when tokens after t change, nor when
  other rows of the batch change; a model that peeks is flagged, not rewarded;
- leakage: a val loss far below the train loss means the model has seen the held-out text;
- a loss that is not finite is flagged.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the shard format lives beside this file, protected like it
from prepare_fineweb import read_shard  # noqa: E402


@dataclass(frozen=True)
class Settings:
    dataset: str  # shakespeare | fineweb
    seq_len: int  # context length the loss is measured at
    batch: int  # rows per forward pass (the exported graph's fixed shape)
    val_tokens: int | None  # cap on held-out tokens scored (None: all)
    train_tokens: int  # training tokens scored for the leakage check
    leak_margin: float  # flag when val_loss < train_loss - leak_margin
    target: float | None = None  # speedrun: report the time to reach this val loss


SCALES = {
    "tiny": Settings("shakespeare", 128, 32, None, 65_536, 0.25),
    "gpu": Settings("fineweb", 1024, 16, 10_485_760, 1_048_576, 0.25),
    "speedrun": Settings("fineweb", 1024, 16, 10_485_760, 1_048_576, 0.25, target=3.28),
}
EXPORT_TIMEOUT_S = 600


# --- data (read here, never through the candidate's data.py) ---------------------------


def token_files(env_dir: Path, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """(held-out tokens, training tokens) for `dataset`."""
    if dataset == "shakespeare":
        val = (env_dir / "heldout" / "shakespeare_val.txt").read_bytes()
        train = (env_dir / "data" / "shakespeare" / "train.txt").read_bytes()
        return np.frombuffer(val, np.uint8), np.frombuffer(train, np.uint8)
    train_dir = Path(os.environ.get("NANOGPT_DATA_DIR") or env_dir / "data") / "fineweb10B"
    val_dir = Path(os.environ.get("NANOGPT_HELDOUT_DIR") or env_dir / "heldout") / "fineweb10B"
    vals, trains = sorted(val_dir.glob("fineweb_val_*.bin")), sorted(train_dir.glob("*.bin"))
    if not vals or not trains:
        raise SystemExit(
            f"FineWeb shards missing in {val_dir} or {train_dir}: run prepare_fineweb.py"
        )
    return read_shard(vals[0]), read_shard(trains[0])


def windows(tokens: np.ndarray, seq_len: int, limit: int | None = None) -> torch.Tensor:
    """Non-overlapping windows of seq_len + 1 tokens (inputs and shifted targets)."""
    n = len(tokens) if limit is None else min(len(tokens), limit + 1)
    count = (n - 1) // seq_len
    starts = np.lib.stride_tricks.sliding_window_view(tokens[:n], seq_len + 1)[::seq_len]
    return torch.from_numpy(starts[:count].astype(np.int64))


# --- the model, as an exported graph ------------------------------------------------------


def export_in_child(code_dir: Path, ckpt: Path, out: Path, s: Settings, device: str) -> None:
    # The child runs candidate code: it must not learn where the result goes.
    child_env = {k: v for k, v in os.environ.items() if k != "EXECUTOR_RESULT_PATH"}
    cmd = [sys.executable, str(HERE / "export_model.py"), str(code_dir), str(ckpt), str(out),
           "--batch", str(s.batch), "--seq", str(s.seq_len), "--device", device]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd, env=child_env, cwd=out.parent, capture_output=True, text=True,
            timeout=EXPORT_TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise SystemExit(f"exporting the model took over {EXPORT_TIMEOUT_S}s") from None
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-12:])
        raise SystemExit(
            f"could not rebuild and export the model from {ckpt.name} (the model must load "
            f"from its checkpoint and be exportable with torch.export):\n{tail}"
        )


def load_forward(path: Path, device: str):
    module = torch.export.load(str(path)).module()
    module.to(device)

    @torch.no_grad()
    def forward(idx: torch.Tensor) -> torch.Tensor:
        return module(idx.to(device)).float()

    return forward


# --- measurements -------------------------------------------------------------------------


def mean_loss(forward, data: torch.Tensor, batch: int) -> float:
    """Mean next-token cross-entropy over all windows; the last batch is padded."""
    total, count = 0.0, 0
    for i in range(0, len(data), batch):
        chunk = data[i : i + batch]
        n = len(chunk)
        if n < batch:  # the graph has a fixed batch size
            chunk = torch.cat([chunk, chunk[:1].expand(batch - n, -1)])
        logits = forward(chunk[:, :-1])[:n]
        targets = chunk[:n, 1:].to(logits.device)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
        total += float(loss.double())
        count += targets.numel()
    return total / count


def causality_flags(forward, rows: torch.Tensor, other: torch.Tensor, seed: int = 0) -> list[str]:
    """Checks that predictions use only earlier tokens of their own row.

    `rows` and `other` are (batch, T) windows of real text: changes are made with real text
    so that a model cannot tell a check from ordinary input.
    """
    gen = torch.Generator().manual_seed(seed)
    batch, T = rows.shape
    assert batch >= 2 and other.shape == rows.shape
    base = forward(rows)
    tol = 1e-3 + 1e-4 * float(base.abs().max())

    def differs(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).abs().max())

    flags = []
    if (d := differs(forward(rows), base)) > tol:
        return [f"the model's output is not deterministic in eval mode (max change {d:.3g})"]
    cuts = sorted({0, T // 2, T - 2, *torch.randint(0, T - 1, (3,), generator=gen).tolist()})
    for t in cuts:
        changed = rows.clone()
        changed[:, t + 1 :] = other[:, t + 1 :]
        if (d := differs(forward(changed)[:, : t + 1], base[:, : t + 1])) > tol:
            flags.append(
                f"not causal: logits at positions <= {t} change (by up to {d:.3g}) when later "
                "tokens change; the model attends to future tokens"
            )
            break
    # Each row in turn keeps its text while every other row changes.
    for row in (0, batch - 1):
        changed = other.clone()
        changed[row] = rows[row]
        if (d := differs(forward(changed)[row], base[row])) > tol:
            flags.append(
                f"rows are not independent: logits of a row change (by up to {d:.3g}) when the "
                "other rows of the batch change; the model mixes information across sequences"
            )
            break
    return flags


# --- the whole evaluation ---------------------------------------------------------------


def evaluate(out_dir: Path, env_dir: Path, scale: str, device: str, check_only: bool) -> dict:
    s = SCALES[scale]
    final = out_dir / "ckpt.pt"
    if not final.is_file():
        raise SystemExit(f"training wrote no checkpoint: {final} is missing")
    val_tokens, train_tokens = token_files(env_dir, s.dataset)
    train = windows(train_tokens, s.seq_len, s.train_tokens)
    metrics: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="nanogpt-eval-") as tmp:

        def exported(ckpt: Path):
            graph = Path(tmp) / (ckpt.stem + ".pt2")
            export_in_child(out_dir / "code", ckpt, graph, s, device)
            return load_forward(graph, device)

        forward = exported(final)
        # Real text from two far-apart places of the training split.
        half = len(train) // 2
        flags = causality_flags(forward, train[: s.batch, :-1], train[half : half + s.batch, :-1])
        if check_only or flags:
            return {"metrics": metrics, "flags": flags}
        val = windows(val_tokens, s.seq_len, s.val_tokens)
        metrics["val_loss"] = mean_loss(forward, val, s.batch)
        metrics["train_loss"] = mean_loss(forward, train, s.batch)
        if s.target is not None:
            # The earliest checkpoint at or below the target; training records its own clock,
            # which the harness bounds by killing training at the scale's timeout.
            reached = None
            for ckpt in [*sorted(out_dir.glob("ckpt_*.pt")), final]:
                loss = (
                    metrics["val_loss"]
                    if ckpt == final
                    else mean_loss(exported(ckpt), val, s.batch)
                )
                if math.isfinite(loss) and loss <= s.target:
                    meta = torch.load(ckpt, map_location="cpu", weights_only=True)
                    reached = float(meta.get("elapsed_s", math.nan))
                    break
            metrics["target_reached"] = float(reached is not None)
            if reached is not None:
                metrics["time_to_target_s"] = reached
    if not math.isfinite(metrics["val_loss"]):
        flags.append(f"val_loss is not finite ({metrics['val_loss']})")
    elif metrics["val_loss"] < metrics["train_loss"] - s.leak_margin:
        flags.append(
            f"val_loss {metrics['val_loss']:.3f} is far below train_loss "
            f"{metrics['train_loss']:.3f}: the model has likely seen the held-out text"
        )
    return {"metrics": metrics, "flags": flags}


def main() -> None:
    p = argparse.ArgumentParser(description="Evaluate a pretrain_nanogpt checkpoint.")
    p.add_argument("--check", action="store_true", help="export and causality checks only")
    p.add_argument("--scale", default=os.environ.get("EXECUTOR_SCALE", "tiny"))
    args = p.parse_args()
    if args.scale not in SCALES:
        raise SystemExit(f"unknown scale {args.scale!r}; choose one of: {', '.join(SCALES)}")
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    out_dir = Path(os.environ.get("EXECUTOR_OUTPUT_DIR", "out"))
    env_dir = Path(os.environ.get("EXECUTOR_ENV_DIR", HERE))
    result = evaluate(out_dir, env_dir, args.scale, device, args.check)
    print(json.dumps(result))
    if args.check:
        if result["flags"]:
            raise SystemExit("model check failed: " + "; ".join(result["flags"]))
        return
    path = Path(os.environ["EXECUTOR_RESULT_PATH"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
