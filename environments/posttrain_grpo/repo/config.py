"""Every hyper-parameter of a GRPO run, in one place.

`GRPOConfig`'s defaults are the `tiny` scale (a 2-core CPU); `SCALES` overrides them for the
GPU scales. Any field can be overridden from the command line: `--lr=1e-4`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class GRPOConfig:
    # Policy and data
    model: str = "base_tiny"  # a folder in the environment (base_tiny), a local path, or a hub id
    dataset: str = "tiny"  # tiny (bundled synthetic) | gsm8k (bundled) | math (hub, `datasets`)
    prompt: str = "tiny"  # prompt template: prompts/<name>.txt in the environment
    dev_problems: int = 64  # training problems kept aside for the live (unrewarded) evaluation
    # GRPO
    steps: int = 50  # optimizer steps, one rollout batch each
    prompts_per_step: int = 16  # distinct problems per rollout batch
    group_size: int = 8  # completions sampled per problem (G)
    temperature: float = 1.0  # rollout sampling temperature
    top_p: float = 1.0
    max_new_tokens: int = 40  # completion length cap
    lr: float = 0.0001
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    warmup_steps: int = 0
    clip_range: float = 0.2  # PPO ratio clip epsilon
    kl_coef: float = 0.0  # weight of the k3 KL penalty to the base policy (0: no reference model)
    epochs_per_batch: int = 1  # optimizer passes over each rollout batch (mu)
    normalize_std: bool = True  # divide advantages by the group's reward std
    loss_aggregation: str = "sequence"  # sequence (mean per completion) | token (mean per token)
    # The answer reward already requires a boxed answer; a format bonus on top also pays for
    # boxed wrong answers, and then favours them over unboxed right ones.
    format_weight: float = 0.0  # reward for a parseable \boxed{} answer
    answer_weight: float = 1.0  # reward for a correct answer
    # Runtime
    micro_batch_size: int = 64  # sequences per forward/backward (gradient accumulation)
    rollout_batch_size: int = 256  # sequences per generate call
    dtype: str = "float32"  # float32 | bfloat16
    rollout_backend: str = "auto"  # auto (vllm if installed and on GPU, else hf) | hf | vllm
    vllm_gpu_memory: float = 0.35  # share of GPU memory vLLM may take when colocated
    gradient_checkpointing: bool = False
    # LoRA (peft): train low-rank adapters on the frozen base weights; the saved policy and
    # the vLLM engine get the adapters merged into the base weights.
    lora_rank: int = 0  # adapter rank r (0: full fine-tuning, no adapters)
    lora_alpha: float = 32.0  # adapter output scale is lora_alpha / lora_rank
    # 0: the sampler (eval mode, no dropout) and the update score the same policy, so the
    # PPO ratio starts at 1
    lora_dropout: float = 0.0
    # comma-separated names of the modules that get adapters: the attention and MLP
    # projections of Llama, Qwen and Mistral models
    lora_targets: str = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    eval_every: int = 10  # steps between live evaluations on the dev problems (0: never)
    log_every: int = 1
    threads: int = 0  # CPU threads for torch (0: torch's default)
    save_reserve_s: float = 5.0  # budget seconds kept free for saving the final policy


SCALES: dict[str, dict[str, Any]] = {
    "tiny": {},
    # One H100: Qwen2.5-Math-1.5B on GSM8K, rollouts with vLLM when it is installed.
    "gpu": dict(
        model="Qwen/Qwen2.5-Math-1.5B", dataset="gsm8k", prompt="math", steps=40,
        prompts_per_step=32, group_size=8, temperature=1.0, max_new_tokens=512, lr=1e-5,
        weight_decay=0.0, micro_batch_size=8, rollout_batch_size=512, dtype="bfloat16",
        gradient_checkpointing=True, eval_every=10, dev_problems=128, save_reserve_s=120.0,
    ),
    # The paper's setting (Si et al., 2026): MATH, G=8, 128 prompts per step, lr 1e-5, 20 steps.
    "paper": dict(
        model="Qwen/Qwen2.5-Math-1.5B", dataset="math", prompt="math", steps=20,
        prompts_per_step=128, group_size=8, temperature=1.0, max_new_tokens=1024, lr=1e-5,
        weight_decay=0.0, micro_batch_size=8, rollout_batch_size=1024, dtype="bfloat16",
        gradient_checkpointing=True, eval_every=5, dev_problems=256, save_reserve_s=300.0,
    ),
    # One H100: Llama-3.2-3B-Instruct with LoRA on GSM8K, 500 steps (a published reward-search
    # setting). lr 2e-5: LoRA wants about 10x the full-fine-tuning rate (full-weight GRPO runs
    # at 1e-6..1e-5), and with alpha/r = 2 the adapters' updates stay small for 500 steps;
    # a short warm-up keeps the first steps, on zero-initialised adapters, from overshooting.
    # 16 prompts x 8 = 128 completions a step keeps 500 steps to about 2 h (env.toml).
    "llama3b": dict(
        model="meta-llama/Llama-3.2-3B-Instruct", dataset="gsm8k", prompt="llama3_chat",
        steps=500, prompts_per_step=16, group_size=8, temperature=1.0, max_new_tokens=512,
        lr=2e-5, warmup_steps=10, weight_decay=0.0, lora_rank=16, lora_alpha=32.0,
        lora_dropout=0.0, micro_batch_size=16, rollout_batch_size=512, dtype="bfloat16",
        gradient_checkpointing=True, eval_every=50, dev_problems=128, save_reserve_s=240.0,
    ),
}  # fmt: skip


def config_for(scale: str, overrides: list[str] | None = None) -> GRPOConfig:
    """The scale's preset, then `--name=value` overrides (typed by the field's default)."""
    if scale not in SCALES:
        raise SystemExit(f"unknown scale {scale!r}; choose one of: {', '.join(SCALES)}")
    cfg = dataclasses.replace(GRPOConfig(), **SCALES[scale])
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    for arg in overrides or []:
        name, sep, value = arg.removeprefix("--").partition("=")
        name = name.replace("-", "_")
        if not sep or name not in fields:
            raise SystemExit(f"bad override {arg!r}: use --field=value with a GRPOConfig field")
        current = getattr(cfg, name)
        try:
            parsed: Any = (
                value.lower() in ("1", "true", "yes")
                if isinstance(current, bool)
                else type(current)(value)
            )
        except ValueError:
            kind = type(current).__name__
            raise SystemExit(f"bad override {arg!r}: {name} takes a {kind}") from None
        setattr(cfg, name, parsed)
    return cfg
