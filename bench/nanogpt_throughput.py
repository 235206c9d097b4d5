"""Training throughput of the pretrain_nanogpt tiny model against a reference GPT, side by side.

    python bench/nanogpt_throughput.py --reference /path/to/karpathy/nanoGPT/model.py
    python bench/nanogpt_throughput.py --reference ... --compete 2   # idle, then 2 busy loops
    python bench/nanogpt_throughput.py --reference ... --threads 1   # as the harness trains

Both models get the same size (layers, heads, width, context, vocabulary), the same batches
of Tiny Shakespeare bytes, AdamW with the same settings and the same number of steps. Steps
alternate between the two in blocks, so machine noise hits both alike. Reported per phase
(idle, then beside `--compete` busy processes that this script starts and stops): median
step time, tokens/s, and the time to equal loss (steps until both reach the same training
loss x median step time), which is what the environment rewards. The reference is loaded
from outside this repository and never copied into it.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

ENV = Path(__file__).resolve().parents[1] / "environments" / "pretrain_nanogpt"
OURS, REF = "pretrain_nanogpt", "nanoGPT (reference)"
WARMUP_STEPS = 3  # the first steps of each phase warm up allocators: left out of medians
SMOOTH = 5  # steps in the moving average of the training loss
# A competing process: a busy loop, or a small torch job on torch's default threads.
COMPETITORS = {
    "busy": "while True: pass",
    "torch": "import torch\na = torch.randn(256, 256)\nwhile True: a = torch.tanh(a @ a)",
}


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if not spec or not spec.loader:
        raise SystemExit(f"cannot import {path}: pass nanoGPT's model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@dataclass
class Phase:
    name: str
    times: dict[str, list[float]]
    losses: dict[str, list[float]]


@contextmanager
def competitors(n: int, kind: str) -> Iterator[None]:
    """`n` competing processes for the duration; stopped by their own ids afterwards."""
    procs = [subprocess.Popen([sys.executable, "-c", COMPETITORS[kind]]) for _ in range(n)]
    try:
        time.sleep(1.0 if kind == "busy" else 3.0)  # let torch import before timing
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def make_runs(args: argparse.Namespace) -> tuple[dict[str, Callable], dict[str, torch.nn.Module]]:
    """Fresh models and optimizers (seed 0) and one training step for each."""
    import config as ours_config
    import model as ours_model
    import train as ours_train

    ref = load(args.reference, "reference_model")
    cfg = ours_config.config_for("tiny")
    torch.manual_seed(0)
    ours = ours_model.GPT(ours_model.GPTConfig(**ours_config.model_args(cfg)))
    ours_opt = ours_train.make_optimizer(ours, cfg)
    torch.manual_seed(0)
    ref_cfg = ref.GPTConfig(
        block_size=cfg.seq_len, vocab_size=cfg.vocab_size, n_layer=cfg.n_layer,
        n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=0.0, bias=False,
    )  # fmt: skip
    theirs = ref.GPT(ref_cfg)
    theirs_opt = theirs.configure_optimizers(
        cfg.weight_decay, args.lr, (cfg.beta1, cfg.beta2), "cpu"
    )
    for opt in (ours_opt, theirs_opt):
        for g in opt.param_groups:
            g["lr"] = args.lr

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

    return {OURS: step_ours, REF: step_theirs}, {OURS: ours, REF: theirs}


def run_phase(name: str, args: argparse.Namespace, data: list) -> Phase:
    runs, _ = make_runs(args)
    times: dict[str, list[float]] = {k: [] for k in runs}
    losses: dict[str, list[float]] = {k: [] for k in runs}
    for start in range(0, args.steps, args.block):
        for key, step in runs.items():
            for i in range(start, min(start + args.block, args.steps)):
                t0 = time.perf_counter()
                losses[key].append(step(*data[i]))
                times[key].append(time.perf_counter() - t0)
        done = min(start + args.block, args.steps)
        print(f"{name}: {done}/{args.steps} steps", file=sys.stderr, flush=True)
    return Phase(name, times, losses)


def smoothed(losses: list[float]) -> list[float]:
    return [statistics.mean(losses[max(0, i - SMOOTH + 1) : i + 1]) for i in range(len(losses))]


def report(phases: list[Phase], args: argparse.Namespace, tokens_per_step: int) -> None:
    console = Console(width=120)
    table = Table(title=f"tiny scale, {torch.get_num_threads()} threads, {args.steps} steps each")
    for col in ("phase", "implementation", "median step s", "tokens/s", "loss (last 10)",
                "steps to loss", "time to loss s"):  # fmt: skip
        table.add_column(col, justify="right")
    medians: dict[tuple[str, str], float] = {}
    for ph in phases:
        # Equal loss: the higher of the two final (smoothed) losses, which both reach.
        target = max(smoothed(ph.losses[k])[-1] for k in ph.losses)
        to_loss: dict[str, float] = {}
        for key in (OURS, REF):
            med = statistics.median(ph.times[key][WARMUP_STEPS:])
            medians[ph.name, key] = med
            reached = next(i for i, v in enumerate(smoothed(ph.losses[key])) if v <= target) + 1
            to_loss[key] = reached * med
            table.add_row(
                ph.name, key, f"{med:.4f}", f"{tokens_per_step / med:,.0f}",
                f"{statistics.mean(ph.losses[key][-10:]):.4f}", str(reached), f"{to_loss[key]:.2f}",
            )  # fmt: skip
        ratio = medians[ph.name, OURS] / medians[ph.name, REF]
        table.add_row(ph.name, "ours / reference", f"{ratio:.3f}", "", "", "",
                      f"{to_loss[OURS] / to_loss[REF]:.3f} (loss {target:.3f})")  # fmt: skip
    console.print(table)
    if len(phases) == 2:
        idle, busy = (p.name for p in phases)
        for key in (OURS, REF):
            slow = medians[busy, key] / medians[idle, key]
            console.print(f"{key}: {busy} / {idle} median step time {slow:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reference", type=Path, required=True, help="nanoGPT's model.py")
    p.add_argument("--steps", type=int, default=60, help="optimizer steps per implementation")
    p.add_argument("--block", type=int, default=5, help="steps per turn before switching")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: torch's default)")
    p.add_argument("--compete", type=int, default=0, help="then again beside N busy processes")
    p.add_argument("--compete-kind", choices=sorted(COMPETITORS), default="busy")
    p.add_argument("--only-compete", action="store_true", help="skip the idle phase")
    p.add_argument("--repo", type=Path, default=ENV / "repo", help="pretrain_nanogpt code")
    args = p.parse_args()
    if not args.reference.is_file():
        raise SystemExit(f"{args.reference} is not a file: pass nanoGPT's model.py")
    if args.steps <= WARMUP_STEPS + SMOOTH:
        raise SystemExit(f"--steps {args.steps} is too few: use more than {WARMUP_STEPS + SMOOTH}")
    if args.only_compete and not args.compete:
        raise SystemExit("--only-compete needs --compete N with N >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, str(args.repo))
    import config as ours_config
    import data as ours_data

    cfg = ours_config.config_for("tiny")
    tokens = ours_data.load_train_tokens("shakespeare", ENV / "data")
    batches = ours_data.Batches(tokens, cfg.batch_size, cfg.seq_len, seed=0)
    data = [batches.next() for _ in range(args.steps)]

    phases = []
    if not args.only_compete:
        phases.append(run_phase("idle", args, data))
    if args.compete:
        with competitors(args.compete, args.compete_kind):
            phases.append(run_phase(f"{args.compete} x {args.compete_kind}", args, data))
    report(phases, args, cfg.batch_size * cfg.seq_len)


if __name__ == "__main__":
    main()
