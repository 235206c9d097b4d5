"""`TrainIdeatorConfig`: every setting of an ideator-RL training, each with its help text.

The `executor train-ideator` options are generated from these fields (agent/cli/options.py),
so the command line cannot drift from them. Fixed at a training's start and stored with it, so
`--resume` cannot drift either (as for search).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from agent.settings import setting

RewardMode = Literal["raw", "baseline-relative", "rank"]
VllmMode = Literal["auto", "on", "off"]
REWARD_MODES: tuple[str, ...] = get_args(RewardMode)
VLLM_MODES: tuple[str, ...] = get_args(VllmMode)
TINY_MODEL = "tiny"  # --model tiny: a small ideator built locally for the environment's knobs


@dataclass
class TrainIdeatorConfig:
    model: str = setting(
        TINY_MODEL, "Hub id or local path of the ideator; tiny: build one here (CPU scales)."
    )
    knobs: str | None = setting(
        None,
        "Comma-separated knobs the tiny ideator writes, e.g. lr,warmup_steps (default: all "
        "of the scale's): a smaller idea space, so the cache hits and GRPO sharpens sooner.",
    )
    implementer: str = setting("hparam", "hparam (ideas as NAME=VALUE, no LLM) or PROVIDER:MODEL.")
    steps: int = setting(20, "GRPO optimizer steps.", min=1)
    group_size: int = setting(8, "Ideas sampled per prompt (GRPO group).", min=2)
    prompts_per_step: int = setting(
        1, "GRPO groups per step (the one environment prompt, repeated).", min=1
    )
    learning_rate: float | None = setting(
        None, "Adapter learning rate (default: 1e-5; 3e-3 for tiny)."
    )
    lora_r: int = setting(16, "LoRA rank.", min=1)
    lora_alpha: int | None = setting(None, "LoRA alpha (default: 2r).", min=1)
    temperature: float = setting(1.0, "Sampling temperature.")
    max_completion_tokens: int | None = setting(
        None, "Completion cap in tokens (default: 2048; 64 for tiny)."
    )
    beta: float = setting(0.0, "KL penalty to the base model.")
    reward: RewardMode = setting(
        "raw",
        "raw (the execution reward), baseline-relative (reward / baseline - 1), "
        "or rank (rank inside the group, 0..1).",
    )
    failure_reward: float = setting(
        0.0, "Execution reward of an idea that fails, is flagged or has no idea."
    )
    diversity_weight: float = setting(
        0.0,
        "Penalty for repeating: weight x the larger of the share of its group and "
        "the share of the last --diversity-history steps' ideas that are near-duplicates.",
    )
    diversity_history: int = setting(2, "Earlier steps whose ideas the diversity term compares.")
    novelty_weight: float = setting(
        0.0, "Bonus for an idea that repeats nothing in the store's archive."
    )
    length_bonus: float = setting(0.0, "Bonus for completion length: B x min(tokens, cap) / cap.")
    length_cap: int = setting(1024, "Completion tokens at which the length bonus stops.")
    save_every: int = setting(5, "Checkpoint the adapter every N steps.", min=1)
    seed: int = setting(0, "Seeds sampling, the adapter and the runs.")
    vllm: VllmMode = setting(
        "auto", "Generate with vLLM: auto (on a CUDA GPU where vllm is installed)."
    )
    vllm_memory: float = setting(0.3, "Share of the policy GPU's memory vLLM may take.")
    policy_gpu: int = setting(0, "GPU the policy trains on; runs get the other GPUs.")

    def __post_init__(self) -> None:
        # Checked again here: a stored config is read back without the CLI.
        if self.reward not in REWARD_MODES:
            raise ValueError(f"--reward is one of {', '.join(REWARD_MODES)}, not {self.reward!r}")
        if self.vllm not in VLLM_MODES:
            raise ValueError(f"--vllm is one of {', '.join(VLLM_MODES)}, not {self.vllm!r}")
        if self.group_size < 2:
            raise ValueError("--group-size must be at least 2 (GRPO compares ideas in a group)")
        for name in ("steps", "prompts_per_step", "lora_r", "save_every", "length_cap"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        for name in ("diversity_weight", "novelty_weight", "length_bonus", "beta"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be 0 or more")
        if self.diversity_history < 0:
            raise ValueError("--diversity-history must be 0 or more")
        if self.knobs is not None and not self.tiny:
            raise ValueError("--knobs shapes the tiny ideator: use it with --model tiny")
        if not 0 < self.vllm_memory <= 1:
            raise ValueError("--vllm-memory is a share of GPU memory, above 0 and at most 1")

    @property
    def tiny(self) -> bool:
        return self.model == TINY_MODEL

    @property
    def knob_names(self) -> list[str] | None:
        """--knobs as a list (None: every knob of the scale)."""
        if self.knobs is None:
            return None
        return [n.strip() for n in self.knobs.split(",") if n.strip()]

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 3e-3 if self.tiny else 1e-5

    @property
    def completion_tokens(self) -> int:
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens
        return 64 if self.tiny else 2048
