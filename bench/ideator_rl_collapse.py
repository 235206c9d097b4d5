"""Does the offline ideator-RL path learn, and what does the diversity term do to collapse?

Runs `executor train-ideator` on the toy environment (real executions, the tiny ideator built
locally, the hparam implementer) once per --diversity-weight, side by side with the same seed,
and compares per training: the mean execution reward of the first step against the mean of
the last --window steps, the execution rate, the share of the two largest idea clusters, the
mean pairwise similarity, thinking length, how many ideas actually ran (the rest came from the
cache), and the wall time. Plots the per-step curves (--plot).

Usage: python bench/ideator_rl_collapse.py [--steps 60] [--group-size 8] [--weights 0 0.3]
           [--window 10] [--out DIR] [--plot FILE.png]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
EXECUTOR = Path(sys.executable).with_name("executor")
TOY = ROOT / "tests" / "toy_env"


def train(
    out: Path, steps: int, group: int, weight: float, seed: int, console: Console
) -> tuple[dict, float]:
    run_dir = out / f"diversity-{weight:g}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [
        str(EXECUTOR),
        "train-ideator",
        "--env",
        str(TOY),
        "--steps",
        str(steps),
        "--group-size",
        str(group),
        "--slots",
        "2",
        "--save-every",
        str(steps),
        "--diversity-weight",
        str(weight),
        "--seed",
        str(seed),
        "--run-dir",
        str(run_dir),
        "--json",
    ]
    console.print(f"[bold]diversity weight {weight:g}[/]: {' '.join(cmd[1:])}")
    t0 = time.monotonic()
    with console.status(f"training (diversity {weight:g}, seed {seed}, {steps} steps)"):
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"train-ideator failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout), time.monotonic() - t0


KEYS = (
    "mean_reward",
    "max_reward",
    "execution_rate",
    "top2_cluster_share",
    "mean_pairwise_similarity",
    "distinct_ideas",
    "thinking_tokens",
    "completion_tokens",
)


def averaged(runs: list[list[dict]]) -> list[dict]:
    """Per step, each instrument averaged over the seeds' runs."""
    return [
        {"step": steps[0]["step"], **{k: statistics.fmean(s[k] for s in steps) for k in KEYS}}
        for steps in zip(*runs, strict=True)
    ]


def summary(steps: list[dict], window: int) -> dict[str, tuple[float, float]]:
    """instrument -> (first step, mean of the last `window` steps)."""
    last = steps[-window:]
    return {k: (steps[0][k], statistics.fmean(s[k] for s in last)) for k in KEYS}


def plot(results: dict[float, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = [
        ("mean_reward", "mean execution reward"),
        ("top2_cluster_share", "top-2 cluster share"),
        ("thinking_tokens", "thinking tokens"),
    ]
    for ax, (key, title) in zip(axes, panels, strict=True):
        for weight, steps in results.items():
            xs = [s["step"] for s in steps]
            ys = [s[key] for s in steps]
            k = 5  # a 5-step moving mean over the raw curve
            smooth = [statistics.fmean(ys[max(0, i - k + 1) : i + 1]) for i in range(len(ys))]
            line = ax.plot(xs, ys, alpha=0.25)[0]
            ax.plot(xs, smooth, color=line.get_color(), label=f"diversity {weight:g}")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.3])
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3, help="runs per weight, averaged")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_ideator_rl")
    ap.add_argument("--plot", type=Path, default=ROOT / "bench" / "ideator_rl_collapse.png")
    args = ap.parse_args()
    console = Console(stderr=True)
    results, walls, executed = {}, {}, {}
    for w in args.weights:
        runs, times = [], []
        for seed in range(args.seeds):
            out, wall = train(args.out, args.steps, args.group_size, w, seed, console)
            runs.append(out["steps"])
            times.append(wall)
        results[w], walls[w] = averaged(runs), statistics.median(times)
        executed[w] = statistics.fmean(sum(s["executed"] for s in r) for r in runs)
    table = Table(
        title=f"first step -> mean of the last {args.window} (of {args.steps}), "
        f"groups of {args.group_size}, mean of {args.seeds} seeds"
    )
    table.add_column("instrument")
    for w in args.weights:
        table.add_column(f"diversity {w:g}")
    sums = {w: summary(results[w], args.window) for w in args.weights}
    for key in sums[args.weights[0]]:
        table.add_row(
            key, *(f"{sums[w][key][0]:.3g} -> {sums[w][key][1]:.3g}" for w in args.weights)
        )
    table.add_row(
        "ideas executed (rest cached)",
        *(f"{executed[w]:.0f} of {args.steps * args.group_size}" for w in args.weights),
    )
    table.add_row(
        "wall time (median)",
        *(f"{walls[w]:.0f} s ({walls[w] / args.steps:.1f} s/step)" for w in args.weights),
    )
    Console().print(table)
    plot(results, args.plot)
    console.print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
