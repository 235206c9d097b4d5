"""Does ideator RL raise the full-budget reward of the ideas it samples on pretrain_nanogpt?

Runs `executor train-ideator --env pretrain_nanogpt` with the tiny ideator at a screening
budget (--timeout: each idea trains for a share of the scale's budget, so a step is cheap)
over a few knobs (--knobs: a small idea space, so the cache hits and GRPO sharpens soon),
then measures at the FULL budget (agent/ideator_rl/measure.py): each distinct idea sampled at
the first step and over the last --last steps runs once at the scale's timeout on the
training's seed, beside the full-budget baseline. Prints one table (sample-weighted mean and
max per group, at the training's budget and at the full one) and writes JSON with the
wall times.

Why these defaults (single-seed probes of train.py, final train loss, lower is better;
baseline 4.37 at 15 CPU-s, 2.18 at 90): batch_size transfers (10: 2.89 at 15, 1.90 at 90);
lr mostly does (1e-2: 3.03 at 15, 2.22 at 90; full-budget rewards 0.487 for lr=3e-3 against
the baseline's 0.462); warmup_steps flips sign (lr=3e-3 warmup 1: 3.32 at 15, 2.50 at 90), so
it is left out. --timeout 45 gives 30 CPU-s of training (about 50 steps); at 15 CPU-s the
default warm-up takes the whole run, and at 5 every idea scores alike. lr x batch_size on the
tiny ideator's grid is 29 ideas, so the cache bounds the training's executions near 29 whatever
--steps is; most of the hour goes to the screening executions and the full-budget re-runs.

Usage: python bench/ideator_rl_nanogpt.py [--steps 40] [--group-size 8] [--timeout 45]
           [--knobs lr,batch_size] [--last 5] [--slots 2] [--run-dir DIR] [--measure-only]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
EXECUTOR = Path(sys.executable).with_name("executor")


def train_command(args: argparse.Namespace) -> list[str]:
    return [
        str(EXECUTOR),
        "train-ideator",
        "--env",
        args.env,
        "--scale",
        args.scale,
        "--steps",
        str(args.steps),
        "--group-size",
        str(args.group_size),
        "--timeout",
        f"{args.timeout:g}",
        "--knobs",
        args.knobs,
        "--slots",
        str(args.slots),
        "--seed",
        str(args.seed),
        "--save-every",
        str(args.steps),
        *(["--learning-rate", f"{args.learning_rate:g}"] if args.learning_rate else []),
        "--run-dir",
        str(args.run_dir),
        "--json",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--env", default="pretrain_nanogpt")
    ap.add_argument("--scale", default="tiny")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=45.0, help="the screening --timeout")
    ap.add_argument("--knobs", default="lr,batch_size")
    ap.add_argument("--learning-rate", type=float, default=None, help="GRPO's (default: tiny's)")
    ap.add_argument("--first", type=int, default=1, help="steps measured at the start")
    ap.add_argument("--last", type=int, default=5, help="steps measured at the end")
    ap.add_argument("--slots", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "bench_ideator_nanogpt")
    ap.add_argument("--measure-only", action="store_true", help="measure the run dir's training")
    ap.add_argument("--out", type=Path, default=None, help="JSON (default: RUN_DIR/bench.json)")
    args = ap.parse_args()
    console = Console(stderr=True)
    t0 = time.monotonic()
    train_wall = 0.0
    if not args.measure_only:
        shutil.rmtree(args.run_dir, ignore_errors=True)
        cmd = train_command(args)
        console.print(f"[bold]training[/]: {' '.join(cmd[1:])}")
        with console.status(f"training ({args.steps} steps of {args.group_size})"):
            proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"train-ideator failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        train_wall = time.monotonic() - t0
    from agent.executor import RunRequest
    from agent.ideator_rl.measure import measure
    from agent.store import Store
    from environments import resolve_environment

    env = resolve_environment(args.env)
    req = RunRequest(
        env, args.scale, "local", None, seed=args.seed, run_dir=args.run_dir, slots=args.slots
    )
    t1 = time.monotonic()
    with closing(Store(args.run_dir)) as store, console.status("measuring at the full budget"):
        m = measure(req, store, first=args.first, last=args.last, progress=console.log)
        steps = store.training_steps(m.training_id)
    measure_wall = time.monotonic() - t1
    table = Table(
        title=f"{args.env} ({args.scale}): trained at {m.training_budget}, "
        f"measured at {m.full_budget}, seed {m.seed}"
    )
    for col in ("ideas sampled at", "samples", "distinct", "mean (full)", "max (full)",
                "mean (training budget)", "max (training budget)"):  # fmt: skip
        table.add_column(col)
    for g in m.groups:
        span = f"step {g.steps[0]}" if len(g.steps) == 1 else f"steps {g.steps[0]}-{g.steps[-1]}"
        table.add_row(
            f"{g.name} ({span})", str(g.samples), str(g.distinct), f"{g.mean:.4f}",
            f"{g.max:.4f}", f"{g.training_mean:.4f}", f"{g.training_max:.4f}",
        )  # fmt: skip
    table.add_row(
        "baseline", "", "", f"{m.baseline or 0:.4f}", "", f"{m.training_baseline or 0:.4f}", ""
    )
    Console().print(table)
    total = time.monotonic() - t0
    Console().print(
        f"wall time: training {train_wall:.0f} s ({train_wall / max(1, len(steps)):.0f} s/step, "
        f"{sum(s['executed'] for s in steps):.0f} executions), full-budget measurement "
        f"{measure_wall:.0f} s, total {total:.0f} s"
    )
    out = args.out or args.run_dir / "bench.json"
    report = {
        "command": train_command(args)[1:],
        "measurement": m.to_json(),
        "steps": steps,
        "wall_s": {"train": train_wall, "measure": measure_wall, "total": total},
    }
    out.write_text(json.dumps(report, indent=2, default=str))
    console.print(f"JSON: {out}")


if __name__ == "__main__":
    main()
