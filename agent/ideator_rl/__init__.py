"""Training the ideator (the model that writes research ideas) with execution reward.

`executor train-ideator` (see `trainer.py`): TRL's GRPOTrainer with a LoRA adapter, each
sampled idea implemented and run for real (`execution.py`), the reward shaped against mode
collapse (`shaping.py`), everything recorded in the run directory's store (`records.py`).
Import from the modules themselves: this package file stays empty so the CLI can read
`config.py` at startup without loading the trainer.
"""
