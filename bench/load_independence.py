"""Does the tiny baseline's reward depend on machine load? Idle against one competing process.

    python bench/load_independence.py --env pretrain_nanogpt --seeds 3

Runs the unmodified baseline with seeds 0..N-1 twice, one run at a time: first on an idle
machine, then beside a single-threaded busy loop (one core's worth of competing work). Prints
each arm's reward (mean, seed std), its training steps, and whether the two arms agree within
one seed standard deviation. Run it with nothing else on the machine.
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


def arm(env: str, seeds: int, busy: bool, extra: list[str]) -> dict:
    competitor = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if busy else None
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
        if competitor is not None:
            competitor.kill()
            competitor.wait()
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
    p.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args, extra = p.parse_known_args()
    idle = arm(args.env, args.seeds, False, extra)
    busy = arm(args.env, args.seeds, True, extra)
    std = max(idle["std"], busy["std"])
    diff = busy["mean"] - idle["mean"]
    for a in (idle, busy):
        name = "busy" if a["busy"] else "idle"
        rewards = ", ".join(f"{r:.4f}" for r in a["rewards"])
        print(f"{name}: reward {a['mean']:.4f} ± {a['std']:.4f} (seed std; {rewards}); "
              f"steps {a['steps']}")  # fmt: skip
    verdict = "agree" if abs(diff) <= std else "DISAGREE"
    print(f"busy - idle = {diff:+.4f}; larger seed std {std:.4f}: {verdict} within one std")
    if args.out:
        args.out.write_text(json.dumps({"idle": idle, "busy": busy, "diff": diff}, indent=1))


if __name__ == "__main__":
    main()
