"""Training the ideator (the model that writes research ideas) with execution reward.

`executor train-ideator` (see `trainer.py`): TRL's GRPOTrainer with a LoRA adapter, each
sampled idea implemented and run for real (`execution.py`), the reward shaped against mode
collapse (`shaping.py`), everything recorded in the run directory's store (`records.py`).
Names load on first use, so the CLI can read `config.py` at startup without the trainer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.ideator_rl.config import TrainIdeatorConfig
    from agent.ideator_rl.trainer import train_ideator

_HOME = {
    "TrainIdeatorConfig": "agent.ideator_rl.config",
    "train_ideator": "agent.ideator_rl.trainer",
}

__all__ = ["TrainIdeatorConfig", "train_ideator"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'agent.ideator_rl' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)
