"""Every hyper-parameter of a training run, in one place.

`TrainConfig`'s defaults are the `tiny` scale (a 2-core CPU); `SCALES` overrides them for
the GPU scales. Any field can be overridden from the command line: `--lr=1e-3`.
The wall-clock budget is not here: the harness sets it (EXECUTOR_TIME_BUDGET_S).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class TrainConfig:
    # Data
    dataset: str = "shakespeare"  # shakespeare (bytes, bundled) | fineweb (GPT-2 tokens)
    vocab_size: int = 256
    seq_len: int = 128  # training context; the evaluator scores contexts of this length
    # Model
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    # Batch: sequences per device per micro-step, times micro-steps per optimizer step
    batch_size: int = 32
    grad_accum: int = 1
    # Optimizer: AdamW
    lr: float = 0.001
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    # Schedule: linear warmup over steps, then decay over the share of the time budget used
    warmup_steps: int = 20
    schedule: str = "linear"  # linear | cosine | constant: shape of the decay
    min_lr_frac: float = 0.1  # the learning rate at the end, as a share of `lr`
    # Runtime
    dtype: str = "float32"  # float32 | bfloat16 (autocast; GPU)
    compile: bool = False  # torch.compile the model
    max_steps: int = 0  # stop after this many steps even within the budget (0: no limit)
    log_every: int = 25  # steps between lines in metrics.jsonl
    checkpoint_every_s: float = 0.0  # extra checkpoints during training (0: only the last)
    save_reserve_s: float = 2.0  # budget seconds kept free for saving the final checkpoint


# The GPU scales: GPT-2 small (124M) on FineWeb with the GPT-2 tokenizer.
SCALES: dict[str, dict[str, Any]] = {
    "tiny": {},
    "gpu": dict(
        dataset="fineweb", vocab_size=50304, seq_len=1024, n_layer=12, n_head=12, n_embd=768,
        batch_size=32, grad_accum=16, lr=0.0018, warmup_steps=100, dtype="bfloat16",
        compile=True, log_every=10, save_reserve_s=30.0,
    ),
    "speedrun": dict(
        dataset="fineweb", vocab_size=50304, seq_len=1024, n_layer=12, n_head=12, n_embd=768,
        batch_size=64, grad_accum=1, lr=0.0018, warmup_steps=250, dtype="bfloat16",
        compile=True, log_every=10, checkpoint_every_s=120.0, save_reserve_s=30.0,
    ),
}  # fmt: skip


def config_for(scale: str, overrides: list[str] | None = None) -> TrainConfig:
    """The scale's preset, then `--name=value` overrides (typed by the field's default)."""
    if scale not in SCALES:
        raise SystemExit(f"unknown scale {scale!r}; choose one of: {', '.join(SCALES)}")
    cfg = dataclasses.replace(TrainConfig(), **SCALES[scale])
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for arg in overrides or []:
        name, sep, value = arg.removeprefix("--").partition("=")
        name = name.replace("-", "_")
        if not sep or name not in fields:
            raise SystemExit(f"bad override {arg!r}: use --field=value with a TrainConfig field")
        current = getattr(cfg, name)
        if isinstance(current, bool):
            parsed: Any = value.lower() in ("1", "true", "yes")
        else:
            parsed = type(current)(value)
        setattr(cfg, name, parsed)
    return cfg


def model_args(cfg: TrainConfig) -> dict[str, Any]:
    """The GPTConfig fields, saved in every checkpoint so the evaluator can rebuild the model."""
    return dict(
        vocab_size=cfg.vocab_size, seq_len=cfg.seq_len,
        n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
    )  # fmt: skip
