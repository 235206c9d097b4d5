"""Train a GPT within a time budget and save the checkpoint the evaluator scores.

    python train.py --scale tiny                        # CPU, Tiny Shakespeare bytes
    python train.py --scale gpu                         # one GPU, GPT-2 small on FineWeb
    torchrun --standalone --nproc_per_node=8 train.py --scale speedrun
    python train.py --scale tiny --lr=0.002 --n_layer=8 # any TrainConfig field

The budget (EXECUTOR_TIME_BUDGET_S, set by the harness) counts from process start, so
imports and compilation are paid from it; the harness kills the run a little after it.
EXECUTOR_BUDGET_CLOCK says what it counts: `wall` seconds, or `cpu` seconds of this
process's threads, as the harness measures them; the tiny scale uses CPU time, so that
other work on the machine does not shorten training. The learning-rate decay follows the
share of the budget used, since the number of steps that fit is not known in advance.
"""

# ruff: noqa: E402  (the budget clock starts before the imports)
import os
import time

BUDGET_CLOCK = os.environ.get("EXECUTOR_BUDGET_CLOCK", "wall")
if BUDGET_CLOCK not in ("wall", "cpu"):
    raise SystemExit(f"EXECUTOR_BUDGET_CLOCK={BUDGET_CLOCK!r}: use wall or cpu")


def clock() -> float:
    """Seconds on the budget's clock. CPU time is that of every thread of this process (and
    of children it waited for) since it started: what the harness counts."""
    if BUDGET_CLOCK == "cpu":
        children = os.times()
        return time.process_time() + children.children_user + children.children_system
    return time.time()


START = 0.0 if BUDGET_CLOCK == "cpu" else clock()  # CPU time starts at 0 with the process

import argparse
import json
import math
import shutil
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from config import TrainConfig, config_for, model_args
from data import Batches, load_train_tokens
from model import GPT, GPTConfig
from torch.nn.parallel import DistributedDataParallel as DDP

# Used only outside the harness, which always sets EXECUTOR_TIME_BUDGET_S.
DEFAULT_BUDGET_S = {"tiny": 90.0, "gpu": 600.0, "speedrun": 1500.0}


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warmup over `warmup_steps`, then decay by `schedule` as `progress` goes 0 -> 1."""
    warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    p = min(max(progress, 0.0), 1.0)
    if cfg.schedule == "constant":
        decay = 1.0
    elif cfg.schedule == "linear":
        decay = 1.0 - (1.0 - cfg.min_lr_frac) * p
    elif cfg.schedule == "cosine":
        decay = cfg.min_lr_frac + (1.0 - cfg.min_lr_frac) * 0.5 * (1.0 + math.cos(math.pi * p))
    else:
        raise ValueError(f"unknown schedule {cfg.schedule!r}: use linear, cosine or constant")
    return cfg.lr * warm * decay


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only (not norm gains). Fused (CPU
    and GPU): one operator per parameter instead of about eight, each of them a parallel
    region on CPU, whose threads wait for each other and for any process that holds a core."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)


def save_checkpoint(model: GPT, cfg: TrainConfig, path: Path, **meta: float) -> None:
    """Weights and model config (what the evaluator needs), written atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    torch.save({"config": model_args(cfg), "model": state, **meta}, tmp)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="tiny", help="tiny | gpu | speedrun")
    parser.add_argument("--smoke", action="store_true", help="2 steps, then save: a quick check")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("EXECUTOR_SEED", "0")))
    args, overrides = parser.parse_known_args()
    cfg = config_for(args.scale, overrides)
    budget = float(os.environ.get("EXECUTOR_TIME_BUDGET_S", DEFAULT_BUDGET_S[args.scale]))
    if args.smoke:  # stops on max_steps alone; the second step is the first with optimizer state
        cfg.max_steps, cfg.log_every, cfg.save_reserve_s = 2, 1, 0.0
        budget = math.inf
    out_dir = Path(os.environ.get("EXECUTOR_OUTPUT_DIR", "out"))
    out_dir.mkdir(parents=True, exist_ok=True)

    # Distributed setup: torchrun sets RANK/WORLD_SIZE/LOCAL_RANK.
    ddp = "RANK" in os.environ
    if ddp:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    else:
        rank, world, local_rank = 0, 1, 0
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        device = torch.device("cpu")
    master = rank == 0
    torch.manual_seed(args.seed)  # same initial weights on every rank

    model = GPT(GPTConfig(**model_args(cfg))).to(device)
    raw_model = model
    if master:
        size = f"{model.num_params() / 1e6:.2f}M parameters"
        print(f"scale {args.scale}: {size}, budget {budget:g}s on the {BUDGET_CLOCK} clock")
    if cfg.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    if ddp:
        model = DDP(model, device_ids=[local_rank] if device.type == "cuda" else None)
    optimizer = make_optimizer(raw_model, cfg)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if cfg.dtype == "bfloat16"
        else nullcontext()
    )
    batches = Batches(
        load_train_tokens(cfg.dataset), cfg.batch_size, cfg.seq_len, args.seed, rank, world
    )

    log = (out_dir / "metrics.jsonl").open("a") if master else None
    deadline = START + budget - cfg.save_reserve_s
    loop_start = clock()
    next_checkpoint = loop_start + cfg.checkpoint_every_s if cfg.checkpoint_every_s else math.inf
    tokens_per_step = cfg.batch_size * cfg.seq_len * cfg.grad_accum * world
    step, step_time = 0, 0.0
    while True:
        # Progress and the stop decision come from rank 0 so that all ranks agree.
        now = clock()
        progress = (now - loop_start) / max(deadline - loop_start, 1e-9)
        if cfg.max_steps:
            progress = max(progress, step / cfg.max_steps)
        stop = now + step_time > deadline or (cfg.max_steps > 0 and step >= cfg.max_steps)
        if ddp:
            flags = torch.tensor([progress, float(stop)], device=device)
            dist.broadcast(flags, 0)
            progress, stop = flags[0].item(), bool(flags[1].item())
        if stop:
            break
        lr = lr_at(cfg, step, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr

        t0 = clock()
        loss_sum = 0.0
        for micro in range(cfg.grad_accum):
            x, y = batches.next()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            # Gradients are all-reduced on the last micro-step only.
            sync = nullcontext() if not ddp or micro == cfg.grad_accum - 1 else model.no_sync()
            with sync, autocast:
                logits = model(x)
                loss = F.cross_entropy(logits.float().flatten(0, 1), y.reshape(-1))
            (loss / cfg.grad_accum).backward()
            loss_sum += loss.item()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        step_time = clock() - t0

        train_loss = loss_sum / cfg.grad_accum
        if not math.isfinite(train_loss):
            # Keep going is pointless, but the checkpoint still goes to the evaluator to flag.
            print(f"step {step}: loss is {train_loss}; stopping")
            break
        if log and (step % cfg.log_every == 0 or step == 1):
            elapsed = clock() - START
            row = dict(step=step, time=round(elapsed, 3), loss=round(train_loss, 5), lr=lr,
                       tokens=step * tokens_per_step,
                       tokens_per_s=round(tokens_per_step / max(step_time, 1e-9)))  # fmt: skip
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(f"step {step} | loss {train_loss:.4f} | lr {lr:.2e} | {elapsed:.1f}s")
        if master and clock() >= next_checkpoint:
            elapsed = clock() - START
            save_checkpoint(
                raw_model, cfg, out_dir / f"ckpt_{step:06d}.pt", step=step, elapsed_s=elapsed
            )
            next_checkpoint += cfg.checkpoint_every_s

    if master:
        elapsed = clock() - START
        save_checkpoint(raw_model, cfg, out_dir / "ckpt.pt", step=step, elapsed_s=elapsed)
        # The code beside the weights: the evaluator rebuilds the model from this copy.
        code = Path(__file__).resolve().parent
        shutil.copytree(
            code,
            out_dir / "code",
            dirs_exist_ok=True,
            ignore=lambda d, names: [n for n in names if not n.endswith(".py")],
        )
        print(f"done: {step} steps, {step * tokens_per_step} tokens in {elapsed:.1f}s")
    if log:
        log.close()
    if ddp:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
