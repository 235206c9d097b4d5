"""Protected evaluator of the toy environment: held-out MSE of the saved weights.

Reads $EXECUTOR_OUTPUT_DIR/model.npz, writes {"metrics": ..., "flags": ...} to
$EXECUTOR_RESULT_PATH. The held-out split's seed lives in heldout/, which only this step reads.
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.environ["EXECUTOR_ENV_DIR"], "repo"))  # pristine data.py
from data import N_FEATURES, make_split

flags = []
model = os.path.join(os.environ["EXECUTOR_OUTPUT_DIR"], "model.npz")
w = np.load(model)["w"]
if w.shape != (N_FEATURES,):
    sys.exit(f"model.npz: w has shape {w.shape}, expected ({N_FEATURES},)")
env_dir = os.environ["EXECUTOR_ENV_DIR"]
with open(os.path.join(env_dir, "heldout", "val_seed.txt")) as f:
    val_seed = int(f.read())
x, y = make_split(2048, seed=val_seed)
mse = float(np.mean((x @ w - y) ** 2))
if not np.isfinite(mse):
    flags.append("val_mse is not finite")
with open(os.environ["EXECUTOR_RESULT_PATH"], "w") as f:
    json.dump({"metrics": {"val_mse": mse}, "flags": flags}, f)
print(f"val_mse {mse:.5f}")
