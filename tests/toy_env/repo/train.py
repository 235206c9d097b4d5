"""Fit a linear model by full-batch gradient descent; save the weights for the evaluator."""

import json
import os
import sys
import time

import numpy as np
from data import N_FEATURES, train_split

LR = 0.01
STEPS = 100

seed = int(os.environ.get("EXECUTOR_SEED", "0"))
out_dir = os.environ["EXECUTOR_OUTPUT_DIR"]
steps = 2 if "--smoke" in sys.argv else STEPS

x, y = train_split(seed)
w = np.random.default_rng(seed).normal(scale=0.01, size=N_FEATURES)
start = time.time()
with open(os.path.join(out_dir, "metrics.jsonl"), "a") as log:
    for step in range(steps):
        err = x @ w - y
        loss = float(np.mean(err**2))
        w -= LR * 2 * x.T @ err / len(y)
        if step % 10 == 0 or step == steps - 1:
            log.write(json.dumps({"step": step, "time": time.time() - start, "loss": loss}) + "\n")
np.savez(os.path.join(out_dir, "model.npz"), w=w)
print(f"trained {steps} steps, final train loss {loss:.4f}")
