"""Does the tiny baseline's reward depend on machine load? Idle against one competing process.

    python bench/load_independence.py --env pretrain_nanogpt --seeds 3

Runs the unmodified baseline with seeds 0..N-1, one run at a time: first on an idle machine,
then beside K single-threaded busy loops for each K of --competitors (1: one core's worth of
competing work; 2: every core of a 2-core machine busy). Prints each arm's reward (mean,
seed std), its training steps, and whether each busy arm agrees with the idle one within one
seed standard deviation. Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BUSY_LOOP = "while True: pass"


def steps_of(run_dir: Path, run_id: str) -> int | None:
    """Training steps, from the run's training log ('done: N steps' or 'after N steps')."""
    log = run_dir / "artifacts" / run_id / "logs" / "train.stdout"
    try:
        text = log.read_text()
    except OSError:
        return None
    found = re.findall(r"(?:done: |after )(\d+) steps", text)
    return int(found[-1]) if found else None


def arm(env: str, seeds: int, busy: int, extra: list[str]) -> dict:
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(busy)]
    try:
        with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
            run_dir = Path(tmp)
            executor = str(Path(sys.executable).parent / "executor")
            cmd = [executor, "baseline", "--env", env, "--scale", "tiny", "--seeds", str(seeds),
                   "--run-dir", str(run_dir), "--json", *extra]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise SystemExit(f"baseline failed:\n{out.stderr[-2000:]}")
            result = json.loads(out.stdout)
            runs = result["runs"]
            rewards = [r["reward"] for r in runs if r["reward"] is not None]
            steps = [steps_of(run_dir, r["run_id"]) for r in runs]
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    return {
        "busy": busy,
        "rewards": rewards,
        "steps": steps,
        "mean": statistics.fmean(rewards),
        "std": statistics.stdev(rewards) if len(rewards) > 1 else float("nan"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="pretrain_nanogpt")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--competitors", default="1", help="busy loops per busy arm, e.g. 1,2")
    p.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args, extra = p.parse_known_args()
    arms = [
        arm(args.env, args.seeds, k, extra) for k in [0, *map(int, args.competitors.split(","))]
    ]
    idle = arms[0]
    for a in arms:
        rewards = ", ".join(f"{r:.4f}" for r in a["rewards"])
        print(f"{a['busy']} busy loops: reward {a['mean']:.4f} ± {a['std']:.4f} "
              f"(seed std; {rewards}); steps {a['steps']}")  # fmt: skip
    for a in arms[1:]:
        std = max(idle["std"], a["std"])
        diff = a["mean"] - idle["mean"]
        verdict = "agree" if abs(diff) <= std else "DISAGREE"
        print(f"{a['busy']} busy - idle = {diff:+.4f}; larger seed std {std:.4f}: {verdict} "
              "within one std")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(arms, indent=1))


if __name__ == "__main__":
    main()
