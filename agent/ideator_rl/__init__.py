"""Training the ideator (the model that writes research ideas) with execution reward.

`executor train-ideator` (see `trainer.py`): TRL's GRPOTrainer with a LoRA adapter, each
sampled idea implemented and run for real (`execution.py`), the reward shaped against mode
collapse (`shaping.py`), everything recorded in the run directory's store (`records.py`).
"""

from agent.ideator_rl.config import TrainIdeatorConfig
from agent.ideator_rl.trainer import train_ideator

__all__ = ["TrainIdeatorConfig", "train_ideator"]
