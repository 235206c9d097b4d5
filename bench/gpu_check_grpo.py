"""The posttrain_grpo half of bench/gpu_check.py: the repo's own GRPO step on a local policy.

A policy of Qwen2.5-0.5B's shape is built from a config with random weights (nothing can be
downloaded), saved with a tokenizer trained here, and loaded back by the repo's
`load_policy`; then `grpo_step` runs at the gpu scale's settings (tiny ones with --tiny).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import random
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

GRPO = Path(__file__).resolve().parents[1] / "environments" / "posttrain_grpo"

# Qwen2.5-0.5B's shape (its config.json): 494M parameters with the tied embeddings.
QWEN_05B: dict[str, Any] = dict(
    vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
    num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
    rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
)  # fmt: skip
QWEN_TINY: dict[str, Any] = dict(
    vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
    rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
)  # fmt: skip
# The tokenizer's vocabulary is smaller than the model's (ids it lacks decode to nothing):
# a random policy rarely samples eos, so completions run to max_new_tokens, as the check wants.
TOKENIZER_VOCAB = {"gpu": 16384, "tiny": 512}
# The gpu scale with a 1-core CPU's batch: the same code path (gradient checkpointing too).
TINY_GRPO = dict(
    dataset="tiny", prompt="tiny", prompts_per_step=2, group_size=4, max_new_tokens=16,
    micro_batch_size=4, rollout_batch_size=8, dtype="float32", dev_problems=4,
)  # fmt: skip
# The settings the JSON reports with the figures.
REPORTED = (
    "dataset", "prompt", "prompts_per_step", "group_size", "max_new_tokens", "micro_batch_size",
    "rollout_batch_size", "dtype", "gradient_checkpointing", "rollout_backend",
)  # fmt: skip
WARMUP_STEPS = 1  # untimed: CUDA kernels, allocator and autotuning settle on the first step


def import_repo() -> dict[str, Any]:
    """The repo's modules, and make_base (the tiny scale's tokenizer recipe)."""
    os.environ["EXECUTOR_ENV_DIR"] = str(GRPO)  # data.py finds prompts/ and data/ here
    os.environ["EXECUTOR_BUDGET_CLOCK"] = "wall"  # train.py reads it on import
    sys.path.insert(0, str(GRPO / "repo"))
    import transformers

    # The progress: ours. Loading bars, and deprecation notices about the repo's calls
    # that still work, would bury it.
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    import config
    import data
    import policy
    import train

    # After the repo: make_base puts the environment folder first on sys.path.
    spec = importlib.util.spec_from_file_location("grpo_make_base", GRPO / "make_base.py")
    assert spec and spec.loader
    make_base = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_base)
    return {"config": config, "data": data, "policy": policy, "train": train, "base": make_base}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_policy(m: dict[str, Any], problems: list[dict], tiny: bool, device: torch.device,
                 dtype: str, path: Path) -> dict[str, Any]:  # fmt: skip
    """Tokenizer trained on the problems, random Qwen2 policy; both saved to `path`."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    texts = [f"{p['question']} {p['answer']}" for p in problems]
    tok = m["base"].train_tokenizer(texts, TOKENIZER_VOCAB["tiny" if tiny else "gpu"])
    shape = QWEN_TINY if tiny else QWEN_05B
    qcfg = Qwen2Config(
        **shape, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    with device:  # initialised where it runs: on a GPU in a second, not 20 on the CPU
        model = Qwen2ForCausalLM(qcfg)
    model.to(m["policy"].DTYPES[dtype]).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    params = sum(p.numel() for p in model.parameters())
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {**shape, "params": params, "tokenizer_vocab": len(tok)}


def run_grpo(args: argparse.Namespace, device: torch.device, work: Path,
             console: Console) -> dict[str, Any]:  # fmt: skip
    t_start = time.perf_counter()
    console.log("GRPO: importing the posttrain_grpo repo")
    m = import_repo()
    train, data = m["train"], m["data"]
    overrides = ["--rollout_backend=hf"]  # no vLLM: the repo's own sampler on transformers
    cfg = m["config"].config_for("gpu", overrides)
    if args.tiny:
        cfg = dataclasses.replace(cfg, **TINY_GRPO)
    problems = data.load_problems(cfg.dataset)
    console.log(f"GRPO: building a random Qwen2 policy ({'tiny' if args.tiny else '0.5B'})")
    model_dir = work / "qwen2_random"
    shape = build_policy(m, problems, args.tiny, device, cfg.dtype, model_dir)
    cfg = dataclasses.replace(cfg, model=str(model_dir))
    random.seed(0)
    torch.manual_seed(0)
    model, tok = m["policy"].load_policy(
        cfg.model, cfg.dtype, device, cfg.gradient_checkpointing,
        cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets,
    )  # fmt: skip
    train_set, _ = data.split_dev(problems, cfg.dev_problems)
    template = data.prompt_template(cfg.prompt)
    sampler = train.make_sampler(cfg, model, tok, 0)
    rng = random.Random(0)

    def random_reward(completion: str, reference: str) -> float:
        return rng.random()  # every group untied: every completion goes through the update

    funcs = [(random_reward, 1.0)]
    opt = torch.optim.AdamW(  # as train.py builds it
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99)
    )
    build_s = time.perf_counter() - t_start
    console.log(f"GRPO: policy ready in {build_s:.1f}s, {shape['params'] / 1e6:.1f}M parameters")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    n_completions = cfg.prompts_per_step * cfg.group_size
    steps: list[dict[str, float]] = []
    prompt_tokens: list[float] = []
    batches = data.batches(train_set, cfg.prompts_per_step, 0)
    for step in range(WARMUP_STEPS + args.grpo_steps):
        elapsed = time.perf_counter() - t_start
        measured = len(steps) - WARMUP_STEPS
        # Two measured steps at least, then as many as the budget leaves room for.
        if measured >= 2 and elapsed + 1.2 * steps[-1]["step_s"] > args.grpo_budget:
            break
        batch = next(batches)
        sync(device)
        t = time.perf_counter()
        row = train.grpo_step(step, batch, model, None, opt, cfg, sampler, template, funcs, device)
        sync(device)  # the optimizer's kernels finish inside the step they belong to
        step_s = time.perf_counter() - t
        tokens = round(row["completion_tokens"] * n_completions)  # real tokens, eos included
        steps.append({"step_s": step_s, "rollout_s": row["rollout_s"], "tokens": tokens})
        rendered = [data.render_prompt(template, p["question"]) for p in batch]
        prompt_tokens.append(statistics.mean(len(tok.encode(p)) for p in rendered))
        kind = "warm-up" if step < WARMUP_STEPS else "measured"
        console.log(
            f"GRPO step {step + 1} ({kind}): {step_s:.2f}s, rollout {row['rollout_s']:.2f}s "
            f"for {tokens} tokens, loss {row['loss']:+.4f}"
        )
    timed = steps[WARMUP_STEPS:]
    rollout_s = sum(s["rollout_s"] for s in timed)
    rollout_tokens = sum(s["tokens"] for s in timed)
    result: dict[str, Any] = {
        "model": {"family": "qwen2", "init": "random", **shape},
        "config": {k: getattr(cfg, k) for k in REPORTED},
        "sampler": type(sampler).__name__,
        "reward": "seeded uniform random per completion (every completion in the update)",
        "completions_per_step": n_completions,
        "mean_prompt_tokens": statistics.mean(prompt_tokens),
        "build_s": build_s,
        "warmup_steps": WARMUP_STEPS,
        "measured_steps": len(timed),
        "step_s": [s["step_s"] for s in timed],
        "median_step_s": statistics.median(s["step_s"] for s in timed),
        "rollout_s": [s["rollout_s"] for s in timed],
        "rollout_tokens": [s["tokens"] for s in timed],
        "rollout_tokens_per_s": rollout_tokens / rollout_s,
        "wall_s": time.perf_counter() - t_start,
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return result
