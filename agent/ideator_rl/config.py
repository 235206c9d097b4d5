"""`TrainIdeatorConfig`: every setting of an ideator-RL training, each with its help text.

The `executor train-ideator` options are generated from these fields (agent/cli/options.py),
so the command line cannot drift from them. Fixed at a training's start and stored with it, so
`--resume` cannot drift either (as for search).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

RewardMode = Literal["raw", "baseline-relative", "rank"]
VllmMode = Literal["auto", "on", "off"]
REWARD_MODES: tuple[str, ...] = get_args(RewardMode)
VLLM_MODES: tuple[str, ...] = get_args(VllmMode)
TINY_MODEL = "tiny"  # --model tiny: a small ideator built locally for the environment's knobs


@dataclass
class TrainIdeatorConfig:
    model: str = field(
        default=TINY_MODEL,
        metadata={
            "help": "Hub id or local path of the ideator; tiny: build one here (CPU scales)."
        },
    )
    implementer: str = field(
        default="hparam",
        metadata={"help": "hparam (ideas as NAME=VALUE, no LLM) or PROVIDER:MODEL."},
    )
    steps: int = field(default=20, metadata={"help": "GRPO optimizer steps.", "min": 1})
    group_size: int = field(
        default=8, metadata={"help": "Ideas sampled per prompt (GRPO group).", "min": 2}
    )
    prompts_per_step: int = field(
        default=1,
        metadata={"help": "GRPO groups per step (the one environment prompt, repeated).", "min": 1},
    )
    learning_rate: float | None = field(
        default=None, metadata={"help": "Adapter learning rate (default: 1e-5; 3e-3 for tiny)."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank.", "min": 1})
    lora_alpha: int | None = field(
        default=None, metadata={"help": "LoRA alpha (default: 2r).", "min": 1}
    )
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    max_completion_tokens: int | None = field(
        default=None, metadata={"help": "Completion cap in tokens (default: 2048; 64 for tiny)."}
    )
    beta: float = field(default=0.0, metadata={"help": "KL penalty to the base model."})
    reward: RewardMode = field(
        default="raw",
        metadata={
            "help": "raw (the execution reward), baseline-relative (reward / baseline - 1), "
            "or rank (rank inside the group, 0..1)."
        },
    )
    failure_reward: float = field(
        default=0.0,
        metadata={"help": "Execution reward of an idea that fails, is flagged or has no idea."},
    )
    diversity_weight: float = field(
        default=0.0,
        metadata={
            "help": "Penalty for repeating: weight x the larger of the share of its group and "
            "the share of the last --diversity-history steps' ideas that are near-duplicates."
        },
    )
    diversity_history: int = field(
        default=2, metadata={"help": "Earlier steps whose ideas the diversity term compares."}
    )
    novelty_weight: float = field(
        default=0.0,
        metadata={"help": "Bonus for an idea that repeats nothing in the store's archive."},
    )
    length_bonus: float = field(
        default=0.0,
        metadata={"help": "Bonus for completion length: B x min(tokens, cap) / cap."},
    )
    length_cap: int = field(
        default=1024, metadata={"help": "Completion tokens at which the length bonus stops."}
    )
    save_every: int = field(
        default=5, metadata={"help": "Checkpoint the adapter every N steps.", "min": 1}
    )
    seed: int = field(default=0, metadata={"help": "Seeds sampling, the adapter and the runs."})
    vllm: VllmMode = field(
        default="auto",
        metadata={"help": "Generate with vLLM: auto (on a CUDA GPU where vllm is installed)."},
    )
    vllm_memory: float = field(
        default=0.3, metadata={"help": "Share of the policy GPU's memory vLLM may take."}
    )
    policy_gpu: int = field(
        default=0, metadata={"help": "GPU the policy trains on; runs get the other GPUs."}
    )

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
        if not 0 < self.vllm_memory <= 1:
            raise ValueError("--vllm-memory is a share of GPU memory, above 0 and at most 1")

    @property
    def tiny(self) -> bool:
        return self.model == TINY_MODEL

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
