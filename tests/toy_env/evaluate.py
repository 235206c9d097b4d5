"""Protected evaluator of the toy environment: held-out MSE of the saved weights.

Reads $EXECUTOR_OUTPUT_DIR/model.npz, writes {"metrics": ..., "flags": ...} to
$EXECUTOR_RESULT_PATH. The held-out split's seed lives in heldout/, which only this step reads.

Splits: 4096 held-out examples, the first 2048 for EXECUTOR_EVAL_SPLIT=screen (the default),
the other 2048 for confirm. Before result.json it writes items.jsonl beside it, one row per
example, {"id": "x0042", "value": its squared error}, so val_mse is the mean of the values
(no items when the weights give no finite error).
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.environ["EXECUTOR_ENV_DIR"], "repo"))  # pristine data.py
from data import N_FEATURES, make_split

PER_SPLIT = 2048
SPLITS = ("screen", "confirm")


def write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


split = os.environ.get("EXECUTOR_EVAL_SPLIT", "screen")
if split not in SPLITS:
    sys.exit(f"EXECUTOR_EVAL_SPLIT must be screen or confirm, not {split!r}")
flags = []
model = os.path.join(os.environ["EXECUTOR_OUTPUT_DIR"], "model.npz")
w = np.load(model)["w"]
if w.shape != (N_FEATURES,):
    sys.exit(f"model.npz: w has shape {w.shape}, expected ({N_FEATURES},)")
env_dir = os.environ["EXECUTOR_ENV_DIR"]
with open(os.path.join(env_dir, "heldout", "val_seed.txt")) as f:
    val_seed = int(f.read())
x, y = make_split(2 * PER_SPLIT, seed=val_seed)
first = SPLITS.index(split) * PER_SPLIT
errors = (x[first : first + PER_SPLIT] @ w - y[first : first + PER_SPLIT]) ** 2
mse = float(np.mean(errors))
result_path = os.environ["EXECUTOR_RESULT_PATH"]
items_path = os.path.join(os.path.dirname(result_path), "items.jsonl")
if np.isfinite(mse):
    rows = [{"id": f"x{first + i:04d}", "value": float(e)} for i, e in enumerate(errors)]
    write_atomic(items_path, "".join(json.dumps(r) + "\n" for r in rows))
else:
    flags.append("val_mse is not finite")
write_atomic(result_path, json.dumps({"metrics": {"val_mse": mse}, "flags": flags}))
print(f"val_mse {mse:.5f} ({split})")
