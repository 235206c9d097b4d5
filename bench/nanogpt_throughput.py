"""Training throughput of the pretrain_nanogpt tiny model against a reference GPT, side by side.

    python bench/nanogpt_throughput.py --reference /path/to/karpathy/nanoGPT/model.py

Both models get the same size (layers, heads, width, context, vocabulary), the same batches
of Tiny Shakespeare bytes, AdamW with the same settings and the same number of steps. Steps
alternate between the two in blocks, so machine noise hits both alike. Reported: median
step time, tokens/s, their ratio, and the mean training loss over the last steps (equal loss
per step is the condition under which tokens/s compare). The reference is loaded from
outside this repository and never copied into it.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import track
from rich.table import Table

ENV = Path(__file__).resolve().parents[1] / "environments" / "pretrain_nanogpt"


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reference", type=Path, required=True, help="nanoGPT's model.py")
    p.add_argument("--steps", type=int, default=60, help="optimizer steps per implementation")
    p.add_argument("--block", type=int, default=5, help="steps per turn before switching")
    p.add_argument("--lr", type=float, default=1e-3)
    args = p.parse_args()

    sys.path.insert(0, str(ENV / "repo"))
    import config as ours_config
    import data as ours_data
    import model as ours_model
    import train as ours_train

    ref = load(args.reference, "reference_model")
    cfg = ours_config.config_for("tiny")
    torch.manual_seed(0)
    ours = ours_model.GPT(ours_model.GPTConfig(**ours_config.model_args(cfg)))
    ours_opt = ours_train.make_optimizer(ours, cfg, fused=False)
    torch.manual_seed(0)
    theirs = ref.GPT(
        ref.GPTConfig(
            block_size=cfg.seq_len,
            vocab_size=cfg.vocab_size,
            n_layer=cfg.n_layer,
            n_head=cfg.n_head,
            n_embd=cfg.n_embd,
            dropout=0.0,
            bias=False,
        )
    )
    theirs_opt = theirs.configure_optimizers(
        cfg.weight_decay, args.lr, (cfg.beta1, cfg.beta2), "cpu"
    )
    for opt in (ours_opt, theirs_opt):
        for g in opt.param_groups:
            g["lr"] = args.lr

    tokens = ours_data.load_train_tokens("shakespeare", ENV / "data")
    batches = ours_data.Batches(tokens, cfg.batch_size, cfg.seq_len, seed=0)
    data = [batches.next() for _ in range(args.steps)]

    def step_ours(x: torch.Tensor, y: torch.Tensor) -> float:
        logits = ours(x)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ours.parameters(), cfg.grad_clip)
        ours_opt.step()
        ours_opt.zero_grad(set_to_none=True)
        return loss.item()

    def step_theirs(x: torch.Tensor, y: torch.Tensor) -> float:
        _, loss = theirs(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), cfg.grad_clip)
        theirs_opt.step()
        theirs_opt.zero_grad(set_to_none=True)
        return loss.item()

    runs = {"pretrain_nanogpt": step_ours, "nanoGPT (reference)": step_theirs}
    times: dict[str, list[float]] = {k: [] for k in runs}
    losses: dict[str, list[float]] = {k: [] for k in runs}
    for start in track(range(0, args.steps, args.block), description="training both"):
        for name, step in runs.items():
            for i in range(start, min(start + args.block, args.steps)):
                t0 = time.perf_counter()
                losses[name].append(step(*data[i]))
                times[name].append(time.perf_counter() - t0)

    tokens_per_step = cfg.batch_size * cfg.seq_len
    table = Table(title=f"tiny scale, {torch.get_num_threads()} threads, {args.steps} steps each")
    for col in ("implementation", "params", "median step s", "tokens/s", "loss (last 10)"):
        table.add_column(col, justify="right")
    rate = {}
    for name, model in (("pretrain_nanogpt", ours), ("nanoGPT (reference)", theirs)):
        med = statistics.median(times[name][3:])  # the first steps warm up allocators
        rate[name] = tokens_per_step / med
        table.add_row(
            name,
            f"{sum(p.numel() for p in model.parameters()) / 1e6:.3f}M",
            f"{med:.4f}",
            f"{rate[name]:,.0f}",
            f"{statistics.mean(losses[name][-10:]):.4f}",
        )
    console = Console()
    console.print(table)
    ratio = rate["pretrain_nanogpt"] / rate["nanoGPT (reference)"]
    console.print(f"throughput ratio (ours / reference): {ratio:.3f}x")
    # What the environment rewards is loss per second: time for each to reach the loss the
    # reference ends at (5-step moving average of the training loss).
    target = statistics.mean(losses["nanoGPT (reference)"][-10:])
    smooth = [
        statistics.mean(losses["pretrain_nanogpt"][max(0, i - 4) : i + 1])
        for i in range(args.steps)
    ]
    reached = next((i for i, v in enumerate(smooth) if v <= target), None)
    if reached is None:
        console.print(f"pretrain_nanogpt did not reach the reference's final loss {target:.4f}")
    else:
        ours_s = sum(times["pretrain_nanogpt"][: reached + 1])
        ratio_t = sum(times["nanoGPT (reference)"]) / ours_s
        console.print(
            f"time to the reference's final loss {target:.4f}: step {reached + 1} of "
            f"{args.steps}, {ours_s:.1f}s vs {sum(times['nanoGPT (reference)']):.1f}s: "
            f"{ratio_t:.3f}x faster"
        )


if __name__ == "__main__":
    main()
