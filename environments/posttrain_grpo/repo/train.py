"""GRPO post-training of a policy on math word problems.

    python train.py --scale tiny               # the harness's command (2 CPU cores, ~2 min)
    python train.py --scale tiny --smoke       # two small steps: proves the code runs
    python train.py --scale gpu --lr=2e-5      # any GRPOConfig field: --field=value

Each step: sample `prompts_per_step` problems, G completions each (rollout.py); score them
with the weighted sum of the reward functions (rewards.py); turn rewards into group-relative
advantages and take one clipped policy-gradient step per pass (grpo.py). The policy is saved
to $EXECUTOR_OUTPUT_DIR/policy at the end, and the environment's evaluator measures it on
held-out problems; the `train_accuracy` and `dev_accuracy` logged here (graded by answers.py)
are for watching progress only.

The budget (EXECUTOR_TIME_BUDGET_S) counts from process start on the clock that
EXECUTOR_BUDGET_CLOCK names: `wall` seconds, or `cpu` seconds of this process's threads and
the children it waited for, as the harness measures them (the tiny scale's).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import torch
from answers import has_answer, is_correct
from config import GRPOConfig, config_for
from data import batches, load_problems, prompt_template, render_prompt, split_dev
from grpo import group_advantages, policy_loss, token_logprobs
from policy import load_policy, reference_policy, resolve, save_policy
from rewards import RewardFn, reward_functions
from rollout import HFSampler, Rollout, VLLMSampler, vllm_available
from torch import Tensor

BUDGET_CLOCK = os.environ.get("EXECUTOR_BUDGET_CLOCK", "wall")
if BUDGET_CLOCK not in ("wall", "cpu"):
    raise SystemExit(f"EXECUTOR_BUDGET_CLOCK={BUDGET_CLOCK!r}: use wall or cpu")


def clock() -> float:
    """Seconds on the budget's clock (CPU time: every thread, and children waited for)."""
    if BUDGET_CLOCK == "cpu":
        children = os.times()
        return time.process_time() + children.children_user + children.children_system
    return time.time()


# The budget counts from process start: imports and loading are in it (CPU time starts at 0).
T0 = 0.0 if BUDGET_CLOCK == "cpu" else clock()


def score(
    completions: list[str], references: list[str], funcs: list[tuple[RewardFn, float]]
) -> list[float]:
    """Each completion's reward: the weighted sum of the functions' values. Functions are
    taken by position, never by name (an ensemble may repeat a name)."""
    return [
        sum(weight * float(fn(completion, ref)) for fn, weight in funcs)
        for completion, ref in zip(completions, references, strict=True)
    ]


def make_sampler(cfg: GRPOConfig, model: Any, tok: Any, seed: int) -> HFSampler | VLLMSampler:
    backend = cfg.rollout_backend
    if backend == "auto":
        backend = "vllm" if vllm_available() else "hf"
    if backend == "vllm":
        if not vllm_available():
            raise SystemExit("--rollout_backend=vllm needs vLLM and a GPU: pip install vllm")
        sampler = VLLMSampler(
            resolve(cfg.model), tok, cfg.max_new_tokens, cfg.dtype, cfg.vllm_gpu_memory, seed,
            # room for the prompt and the completion: a long-context model's full window
            # (128k for Llama 3.2) would have vLLM reserve a KV cache that size
            max_model_len=min(model.config.max_position_embeddings, cfg.max_new_tokens + 2048),
        )  # fmt: skip
        sampler.sync_weights(model)
        return sampler
    if backend != "hf":
        raise SystemExit(f"unknown rollout_backend {backend!r}: use auto, hf or vllm")
    return HFSampler(model, tok, cfg.max_new_tokens, cfg.rollout_batch_size)


def micro_batches(rollout: Rollout, adv: Tensor, size: int, keep: Tensor) -> list[dict]:
    """The rows in `keep`, in chunks of `size`, each trimmed to its own padding."""
    rows = keep.nonzero().squeeze(1)
    out = []
    for i in range(0, len(rows), size):
        idx = rows[i : i + size]
        pm, cm = rollout.prompt_mask[idx], rollout.completion_mask[idx]
        p_start = int((pm.sum(0) > 0).nonzero().min())  # drop all-padding prompt columns
        c_end = int(cm.sum(1).max())  # and completion columns past the longest completion
        out.append(
            dict(
                idx=idx,
                prompt_ids=rollout.prompt_ids[idx][:, p_start:],
                prompt_mask=pm[:, p_start:],
                completion_ids=rollout.completion_ids[idx][:, :c_end],
                completion_mask=cm[:, :c_end],
                adv=adv[idx],
            )
        )
    return out


def update(
    model: Any, ref: Any, opt: torch.optim.Optimizer, cfg: GRPOConfig, rollout: Rollout,
    adv: Tensor, device: torch.device,
) -> dict[str, float]:  # fmt: skip
    """`epochs_per_batch` optimizer steps on one rollout batch; returns averaged stats."""
    n_seq = len(rollout.texts)
    n_tok = int(rollout.completion_mask.sum())
    # Without a KL term, a completion with zero advantage adds nothing to the gradient:
    # skipping it changes no number, only the time (the normalizers still count it).
    keep = torch.ones(n_seq, dtype=torch.bool) if cfg.kl_coef > 0 else adv != 0
    stats: dict[str, list[float]] = {"loss": [], "clip_frac": [], "kl": [], "grad_norm": []}
    if not keep.any():
        return {"loss": 0.0, "clip_frac": 0.0, "kl": 0.0, "grad_norm": 0.0}
    chunks = micro_batches(rollout, adv, cfg.micro_batch_size, keep)

    def logps(m: Any, mb: dict) -> Tensor:
        return token_logprobs(
            m, mb["prompt_ids"].to(device), mb["prompt_mask"].to(device),
            mb["completion_ids"].to(device), mb["completion_mask"].to(device), cfg.temperature,
        )  # fmt: skip

    with torch.no_grad():  # the behaviour policy, and the reference, before any update
        for mb in chunks:
            mb["old"] = logps(model, mb) if cfg.epochs_per_batch > 1 else None
            mb["ref"] = logps(ref, mb) if ref is not None else None
    for _ in range(cfg.epochs_per_batch):
        opt.zero_grad(set_to_none=True)
        for mb in chunks:
            logp = logps(model, mb)
            old = mb["old"] if mb["old"] is not None else logp.detach()
            loss, s = policy_loss(
                logp, old, mb["adv"].to(device), mb["completion_mask"].to(device),
                cfg.clip_range, cfg.loss_aggregation, n_seq, n_tok, mb["ref"], cfg.kl_coef,
            )  # fmt: skip
            loss.backward()
            stats["loss"].append(loss.item())
            stats["clip_frac"].append(s["clip_frac"])
            stats["kl"].append(s["kl"])
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        stats["grad_norm"].append(float(norm))
        opt.step()
    out = {k: sum(v) / len(v) for k, v in stats.items()}
    out["loss"] = sum(stats["loss"]) / cfg.epochs_per_batch
    return out


def grpo_step(
    step: int, batch: list[dict], model: Any, ref: Any, opt: torch.optim.Optimizer,
    cfg: GRPOConfig, sampler: Any, template: str, funcs: list[tuple[RewardFn, float]],
    device: torch.device,
) -> dict[str, float]:  # fmt: skip
    """One GRPO step on `batch`: roll out G completions per problem, score them, turn the
    rewards into advantages, update the policy, sync the sampler. Returns the step's stats."""
    t_step, t_wall = clock(), time.perf_counter()
    for g in opt.param_groups:
        g["lr"] = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    prompts = [render_prompt(template, p["question"]) for p in batch for _ in range(cfg.group_size)]
    answers = [p["answer"] for p in batch for _ in range(cfg.group_size)]
    rollout = sampler.generate(prompts, cfg.temperature, cfg.top_p)
    t_rollout = time.perf_counter() - t_wall
    totals = score(rollout.texts, answers, funcs)
    rewards = torch.tensor(totals, dtype=torch.float32)
    adv = group_advantages(rewards, cfg.group_size, cfg.normalize_std)
    stats = update(model, ref, opt, cfg, rollout, adv, device)
    sampler.sync_weights(model)
    step_s = clock() - t_step  # on the budget's clock: it decides when to stop
    return {
        "reward": sum(totals) / len(prompts),
        # Graded by answers.py, whatever the reward functions are.
        "train_accuracy": sum(map(is_correct, rollout.texts, answers)) / len(prompts),
        "format_rate": sum(map(has_answer, rollout.texts)) / len(prompts),
        "zero_adv_frac": float((adv == 0).float().mean()),
        "completion_tokens": float(rollout.completion_lengths.float().mean()),
        "lr": opt.param_groups[0]["lr"],
        "rollout_s": round(t_rollout, 3),
        "step_s": round(step_s, 3),
        **{k: round(v, 5) for k, v in stats.items()},
    }


@torch.no_grad()
def live_eval(sampler: Any, problems: list[dict], template: str) -> float:
    """Greedy accuracy on the dev problems: progress to watch, never the reward."""
    prompts = [render_prompt(template, p["question"]) for p in problems]
    rollout = sampler.generate(prompts, temperature=0.0)
    return sum(map(is_correct, rollout.texts, [p["answer"] for p in problems])) / len(problems)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scale", default=os.environ.get("EXECUTOR_SCALE", "tiny"))
    ap.add_argument("--smoke", action="store_true", help="two small steps, then save")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("EXECUTOR_SEED", "0")))
    args, overrides = ap.parse_known_args()
    cfg = config_for(args.scale, overrides)
    if args.smoke:
        cfg = dataclasses.replace(
            cfg, steps=2, prompts_per_step=2, group_size=4, eval_every=0, dev_problems=4,
            max_new_tokens=min(cfg.max_new_tokens, 64),
        )  # fmt: skip
    budget = float(os.environ.get("EXECUTOR_TIME_BUDGET_S") or math.inf)
    out_dir = Path(os.environ.get("EXECUTOR_OUTPUT_DIR", "out"))
    out_dir.mkdir(parents=True, exist_ok=True)

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    model, tok = load_policy(
        cfg.model, cfg.dtype, device, cfg.gradient_checkpointing,
        cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets,
    )  # fmt: skip
    ref = reference_policy(model) if cfg.kl_coef > 0 else None
    train_set, dev_set = split_dev(load_problems(cfg.dataset), cfg.dev_problems)
    template = prompt_template(cfg.prompt)
    sampler = make_sampler(cfg, model, tok, args.seed)
    funcs = reward_functions(cfg.format_weight, cfg.answer_weight)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99)
    )
    print(f"GRPO {args.scale}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M "
          f"parameters on {device}, {len(train_set)} problems, {sampler.__class__.__name__}",
          flush=True)  # fmt: skip

    log = (out_dir / "metrics.jsonl").open("a")
    step_s, stopped_early, steps_done = 0.0, False, 0
    problems = batches(train_set, cfg.prompts_per_step, args.seed)
    for step, batch in zip(range(cfg.steps), problems, strict=False):
        if clock() - T0 + step_s * 1.5 + cfg.save_reserve_s > budget:
            stopped_early = True  # the next step would not leave time to save
            break
        row = grpo_step(step, batch, model, ref, opt, cfg, sampler, template, funcs, device)
        steps_done += 1
        step_s = row["step_s"]
        row = {"step": step + 1, "time": round(clock() - T0, 2), **row}
        if cfg.eval_every and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            row["dev_accuracy"] = live_eval(sampler, dev_set, template)
        log.write(json.dumps(row) + "\n")
        log.flush()
        if (step + 1) % cfg.log_every == 0:
            dev = f"  dev acc {row['dev_accuracy']:.3f}" if "dev_accuracy" in row else ""
            print(f"step {step + 1:3d}  reward {row['reward']:.3f}  acc {row['train_accuracy']:.3f}"
                  f"  loss {row['loss']:+.4f}  {step_s:.1f}s{dev}", flush=True)  # fmt: skip

    info = {
        "config": dataclasses.asdict(cfg),
        "scale": args.scale,
        "seed": args.seed,
        "steps_done": steps_done,
        "stopped_by_budget": stopped_early,
        "train_s": round(clock() - T0, 1),
        "budget_clock": BUDGET_CLOCK,
    }
    path = save_policy(model, tok, out_dir, info)
    print(f"saved {path} after {info['steps_done']} steps, {info['train_s']}s", flush=True)


if __name__ == "__main__":
    main()
