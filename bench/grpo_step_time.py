"""Time per GRPO optimizer step of the posttrain_grpo repo against TRL's GRPOTrainer, side by side.

    python bench/grpo_step_time.py                        # 8 timed steps each, after 2 warm-up
    python bench/grpo_step_time.py --steps 2 --warmup 1 --threads 2 --json
    python bench/grpo_step_time.py --max_new_tokens=20    # any GRPOConfig field, for both

Both get the same policy (the environment's base_tiny, float32, on the CPU; TRL trains its
own copy of it), the same problems on the same step (the repo's tiny training problems in
the repo's own batch order, formatted with prompts/tiny.txt), prompts_per_step x group_size
completions per optimizer step (16 x 8 = 128 at the tiny scale), the same completion cap,
temperature, top-p and no top-k, no KL term, one optimizer step per rollout batch, the same
loss aggregation, clipping, learning rate, AdamW settings and gradient clipping, and the
repo's reward functions with the repo's weights. Both start from torch.manual_seed(--seed).

One step of ours is train.grpo_step, the function train.py's loop calls
(sampler.generate -> rewards.score -> grpo.group_advantages -> train.update ->
sampler.sync_weights). One step of
TRL's is what its Trainer does between the on_step_begin and on_step_end callbacks
(generation, scoring, the loss, backward and the optimizer step). The two alternate step by
step in one process (ours runs inside TRL's on_step_end callback, untimed for TRL, each with
its own torch RNG stream), so machine noise hits both alike.

Reported: the median step time of each and their ratio, our step split into rollout
(generation) and update (scoring, advantages, the update, the weight sync), and the mean
completion length and reward each produced over the timed steps: on a CPU generation
dominates, so step times compare only when completion lengths are close.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

ENV = Path(__file__).resolve().parents[1] / "environments" / "posttrain_grpo"

# The repo's loss aggregations and TRL's names for the same normalisation.
LOSS_TYPES = {"sequence": "grpo", "token": "dapo"}


def trl_reward_funcs(funcs: list[tuple[Any, float]], seen: dict[str, list[float]]) -> list[Any]:
    """The repo's reward functions in TRL's signature, unweighted (TRL applies `reward_weights`).

    They also note, per call (one call per step), the mean completion length and the mean
    weighted reward, which TRL otherwise keeps only in its private metrics."""

    def wrap(fn: Any, weight: float, first: bool) -> Any:
        def reward(
            prompts: list[str], completions: list[str], answer: list[str], **kwargs: Any
        ) -> list[float]:
            scores = [fn(c, a) for c, a in zip(completions, answer, strict=True)]
            if first:
                # completion_ids stop at (and keep) the first eos, as our completion_mask does.
                ids = kwargs["completion_ids"]
                seen["length"].append(statistics.mean(len(c) for c in ids))
                seen["reward"].append(0.0)
            seen["reward"][-1] += weight * statistics.mean(scores)
            return scores

        reward.__name__ = fn.__name__  # TRL names its reward metrics after the function
        return reward

    return [wrap(fn, w, i == 0) for i, (fn, w) in enumerate(funcs)]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Further --field=value arguments override the tiny GRPOConfig for both sides.",
        allow_abbrev=False,  # so --field=value overrides never match a prefix of ours
    )
    ap.add_argument("--steps", type=int, default=8, help="timed optimizer steps per implementation")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (allocators)")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args, overrides = ap.parse_known_args()

    # data.py and policy.py find prompts/ and base_tiny/ through this variable.
    os.environ["EXECUTOR_ENV_DIR"] = str(ENV)
    sys.path.insert(0, str(ENV / "repo"))
    import config as ours_config
    import data as ours_data
    import policy as ours_policy
    import rewards as ours_rewards
    import train as ours_train
    import transformers
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # the weight-loading bar
    warnings.filterwarnings("ignore", category=FutureWarning)  # TRL deprecation notices
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(stderr=True)  # progress on stderr keeps stdout clean for --json

    cfg = ours_config.config_for("tiny", overrides)
    if cfg.loss_aggregation not in LOSS_TYPES:
        raise SystemExit(f"no TRL loss_type for loss_aggregation={cfg.loss_aggregation!r}")
    # A KL term or several passes per batch would change what "one step" means on one side
    # (a reference model TRL reloads from disk; num_iterations counts optimizer steps).
    if cfg.kl_coef != 0 or cfg.epochs_per_batch != 1:
        raise SystemExit("this benchmark compares kl_coef=0, epochs_per_batch=1 only")
    # Both sides sample with transformers' generate on the CPU, even where vLLM is installed.
    cfg = dataclasses.replace(cfg, rollout_backend="hf")
    device = torch.device("cpu")
    total_steps = args.warmup + args.steps

    # One load, two copies: base_tiny can be rewritten on disk, so both must start from the
    # same read. TRL patches its model's forward (its fused LM head), so it gets the copy.
    model, tok = ours_policy.load_policy(cfg.model, cfg.dtype, device, cfg.gradient_checkpointing)
    trl_model = copy.deepcopy(model)
    train_set, _ = ours_data.split_dev(ours_data.load_problems(cfg.dataset), cfg.dev_problems)
    template = ours_data.prompt_template(cfg.prompt)
    problems = ours_data.batches(train_set, cfg.prompts_per_step, args.seed)
    batches = [next(problems) for _ in range(total_steps)]
    funcs = ours_rewards.reward_functions(cfg.format_weight, cfg.answer_weight)

    # --- ours: train.py's setup -----------------------------------------------------------
    sampler = ours_train.make_sampler(cfg, model, tok, args.seed)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99)
    )

    class OursStep:
        """One train.grpo_step, as train.py's loop runs it; per-step records in `rows`."""

        def __init__(self) -> None:
            self.rows: list[dict[str, float]] = []

        def __call__(self, step: int) -> None:
            r = ours_train.grpo_step(
                step, batches[step], model, None, opt, cfg, sampler, template, funcs, device
            )
            self.rows.append(
                {
                    "step_s": r["step_s"],
                    "rollout_s": r["rollout_s"],
                    "update_s": r["step_s"] - r["rollout_s"],
                    "length": r["completion_tokens"],
                    "reward": r["reward"],
                }
            )

    ours_step = OursStep()

    # --- TRL: the same run, in GRPOTrainer's terms ----------------------------------------
    # The dataset is our batches laid end to end and read in order (shuffle_dataset=False):
    # TRL's sampler takes generation_batch_size / num_generations = prompts_per_step distinct
    # rows per step, so step i sees the problems our step i sees.
    dataset = Dataset.from_list(
        [
            {"prompt": ours_data.render_prompt(template, p["question"]), "answer": p["answer"]}
            for batch in batches
            for p in batch
        ]
    )
    trl_seen: dict[str, list[float]] = {"length": [], "reward": []}
    out_dir = tempfile.TemporaryDirectory(prefix="bench-grpo-trl-")
    trl_args = GRPOConfig(
        output_dir=out_dir.name,
        # Same hardware and precision as ours: TRL defaults bf16 to True and gradient
        # checkpointing to True, both of which would change the work done.
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=cfg.gradient_checkpointing,
        # One optimizer step per rollout batch of prompts_per_step x group_size completions,
        # all in one forward/backward: TRL splits a step only by gradient accumulation.
        per_device_train_batch_size=cfg.prompts_per_step * cfg.group_size,
        gradient_accumulation_steps=1,
        num_generations=cfg.group_size,
        num_iterations=1,
        max_steps=total_steps,
        shuffle_dataset=False,
        # Sampling as HFSampler does it: full distribution, no top-k.
        max_completion_length=cfg.max_new_tokens,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        top_k=0,
        # The objective: no KL (no reference model), the same clip, aggregation, advantages.
        beta=0.0,
        epsilon=cfg.clip_range,
        loss_type=LOSS_TYPES[cfg.loss_aggregation],
        scale_rewards="group" if cfg.normalize_std else "none",
        reward_weights=[w for _, w in funcs],
        # The optimizer as train.py builds it: plain torch AdamW, betas (0.9, 0.99), constant lr.
        learning_rate=cfg.lr,
        lr_scheduler_type="constant_with_warmup" if cfg.warmup_steps else "constant",
        warmup_steps=cfg.warmup_steps,
        optim="adamw_torch",
        adam_beta1=0.9,
        adam_beta2=0.99,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        seed=args.seed,
        # Quiet, and nothing written: no logging, saving, trackers or progress bars.
        report_to="none",
        logging_strategy="no",
        save_strategy="no",
        disable_tqdm=True,
        log_level="error",
    )

    class Alternate(TrainerCallback):
        """Times TRL's steps, and runs one of ours after each, on ours' own RNG stream."""

        def __init__(self) -> None:
            self.t0 = 0.0
            self.times: list[float] = []
            self.ours_rng = torch.get_rng_state()

        def on_step_begin(self, *a: Any, **kw: Any) -> None:
            self.t0 = time.perf_counter()

        def on_step_end(self, *a: Any, **kw: Any) -> None:
            self.times.append(time.perf_counter() - self.t0)
            # Swap RNG streams, so each side samples as if it ran alone from the same seed.
            trl_rng = torch.get_rng_state()
            torch.set_rng_state(self.ours_rng)
            ours_step(len(self.times) - 1)
            self.ours_rng = torch.get_rng_state()
            torch.set_rng_state(trl_rng)
            i, ours_row = len(self.times), ours_step.rows[-1]
            kind = "warm-up" if i <= args.warmup else "timed"
            console.log(
                f"step {i}/{total_steps} ({kind}): TRL {self.times[-1]:.2f}s "
                f"({trl_seen['length'][-1]:.1f} tokens), ours {ours_row['step_s']:.2f}s "
                f"({ours_row['length']:.1f} tokens)"
            )

    torch.manual_seed(args.seed)
    alternate = Alternate()  # ours' stream starts from the seed...
    trainer = GRPOTrainer(
        model=trl_model,
        reward_funcs=trl_reward_funcs(funcs, trl_seen),
        args=trl_args,
        train_dataset=dataset,
        processing_class=tok,
        callbacks=[alternate],
    )
    # With disable_tqdm the Trainer prints its final metrics dict to stdout: it would break
    # --json, and the table says what matters.
    trainer.remove_callback(PrinterCallback)
    torch.manual_seed(args.seed)  # ...and so does TRL's (its constructor also seeds)
    trainer.train()
    out_dir.cleanup()

    # --- report ---------------------------------------------------------------------------
    w = args.warmup
    ours_rows = ours_step.rows[w:]
    result: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "warmup": args.warmup,
        "completions_per_step": cfg.prompts_per_step * cfg.group_size,
        "max_new_tokens": cfg.max_new_tokens,
        "ours": {
            "median_step_s": statistics.median(r["step_s"] for r in ours_rows),
            "median_rollout_s": statistics.median(r["rollout_s"] for r in ours_rows),
            "median_update_s": statistics.median(r["update_s"] for r in ours_rows),
            "mean_completion_tokens": statistics.mean(r["length"] for r in ours_rows),
            "mean_reward": statistics.mean(r["reward"] for r in ours_rows),
            "step_s": [r["step_s"] for r in ours_rows],
        },
        "trl": {
            "median_step_s": statistics.median(alternate.times[w:]),
            "mean_completion_tokens": float(statistics.mean(trl_seen["length"][w:])),
            "mean_reward": statistics.mean(trl_seen["reward"][w:]),
            "step_s": alternate.times[w:],
        },
    }
    result["ratio_trl_over_ours"] = result["trl"]["median_step_s"] / result["ours"]["median_step_s"]
    if args.json:
        print(json.dumps(result, indent=2))
        return

    ours, trl = result["ours"], result["trl"]
    table = Table(
        title=f"GRPO step, tiny scale: {result['completions_per_step']} completions x <= "
        f"{cfg.max_new_tokens} tokens, {result['threads']} threads, median of {args.steps} "
        f"steps after {args.warmup} warm-up"
    )
    table.add_column("implementation")
    for col in ("median step s", "tokens/completion", "reward"):
        table.add_column(col, justify="right")
    table.add_row(
        "posttrain_grpo repo",
        f"{ours['median_step_s']:.3f}",
        f"{ours['mean_completion_tokens']:.1f}",
        f"{ours['mean_reward']:.3f}",
    )
    table.add_row("  rollout", f"{ours['median_rollout_s']:.3f}")
    table.add_row("  update", f"{ours['median_update_s']:.3f}")
    table.add_row(
        f"TRL {sys.modules['trl'].__version__} GRPOTrainer",
        f"{trl['median_step_s']:.3f}",
        f"{trl['mean_completion_tokens']:.1f}",
        f"{trl['mean_reward']:.3f}",
    )
    out = Console()
    out.print(table)
    out.print(f"step time ratio (TRL / ours): {result['ratio_trl_over_ours']:.2f}x")
    out.print(
        "rollout: sampler.generate; update: scoring, advantages, train.update, weight sync "
        "(medians of each part: they need not add up to the step's)"
    )


if __name__ == "__main__":
    main()
