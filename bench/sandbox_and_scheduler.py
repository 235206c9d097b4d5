"""Sandbox overhead per step and per run, and the scheduler's slot utilization.

0. Overhead per step: one `true` step in each sandbox (local unisolated, local under
   bubblewrap, Docker), minus `true` run bare with subprocess; median of N, all kinds
   interleaved in one loop so machine load hits them alike. Goal for bubblewrap: < 50 ms.
1. Overhead per run: a sandbox session shaped like a run (prepare; a train step and an
   evaluate step, each `sleep 0.2`; collect; cleanup), minus the same two commands run bare
   with subprocess; median of N, local and Docker (Docker is skipped, with the reason,
   where no engine runs). Goals: < 0.3 s local, < 1.0 s Docker.
2. Utilization: 30 jobs of mixed lengths (0.5–2 s; one in five needs 2 slots) on 3 slots,
   each a real `sleep` in the local sandbox, submitted at once with their expected
   lengths. Reported: busy slot-seconds over slot-seconds while jobs were waiting (the
   scheduler's own waste; goal > 95%), and over the whole makespan (adds the tail, when
   fewer jobs than slots are left), with the makespan against its lower bound.

Usage: python bench/sandbox_and_scheduler.py [--repeats 20] [--jobs 30] [--plot FILE.png]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import track
from rich.table import Table

from runner.scheduler import JobRecord, Scheduler, Slot
from sandbox import RunLayout, SandboxUnavailable, Step, get_sandbox

COMMAND = "sleep 0.2"


def layout(root: Path) -> RunLayout:
    (root / "ws").mkdir(parents=True, exist_ok=True)
    (root / "env").mkdir(exist_ok=True)
    return RunLayout(root / "ws", root / "env", root / "out", root / "eval", root / "logs")


STEP_KINDS = {
    "local, unisolated": "local:isolation=none",
    "local, bubblewrap": "local:isolation=bwrap",
    "docker": "docker",
}


async def step_times(n: int, root: Path) -> dict[str, list[float]]:
    """Seconds of one `true` step per sandbox kind (and bare), interleaved, n of each."""
    kinds: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for label, spec in STEP_KINDS.items():
        try:
            kinds[label] = get_sandbox(spec)
        except SandboxUnavailable as e:
            skipped[label] = str(e)
    times: dict[str, list[float]] = {"bare": [], **{k: [] for k in kinds}}
    sessions = {}
    for label, sb in kinds.items():
        lay = layout(root / f"step-{label.replace(' ', '_').replace(',', '')}")
        await sb.prepare(lay)
        sessions[label] = sb
    try:
        for i in track(range(n + 1), description="per-step overhead", transient=True):
            t0 = time.perf_counter()
            subprocess.run(["true"], check=True)
            bare = time.perf_counter() - t0
            row = {}
            for label, sb in sessions.items():
                t0 = time.perf_counter()
                res = await sb.exec(Step("train", "true", 60))
                row[label] = time.perf_counter() - t0
                if res.status != "succeeded":
                    raise SystemExit(f"{label}: {res.reason}")
            if i > 0:  # the first warms caches
                times["bare"].append(bare)
                for label, t in row.items():
                    times[label].append(t)
    finally:
        for sb in sessions.values():
            await sb.cleanup()
    for label, why in skipped.items():
        times[label] = []
        Console().print(f"[yellow]{label} skipped:[/yellow] {why}")
    return times


def bare_times(n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        for _step in ("train", "evaluate"):
            subprocess.run(["/bin/sh", "-c", COMMAND], check=True)
        times.append(time.perf_counter() - t0)
    return times


async def sandbox_times(kind: str, n: int, root: Path) -> list[float]:
    times = []
    for i in track(range(n + 1), description=f"{kind:>6} sandbox", transient=True):
        sb = get_sandbox(kind)
        lay = layout(root / f"{kind}-{i}")
        t0 = time.perf_counter()
        async with sb.session(lay):
            train = await sb.exec(Step("train", COMMAND, 60))
            evaluate = await sb.exec(Step("evaluate", COMMAND, 60, sees_result_dir=True))
        elapsed = time.perf_counter() - t0
        for res in (train, evaluate):
            if res.status != "succeeded":
                raise SystemExit(f"{kind}: {res.reason}")
        if i > 0:  # the first one warms caches (and, for Docker, checks the image)
            times.append(elapsed)
    return times


def workload(n: int, seed: int = 0) -> list[tuple[float, int]]:
    rng = random.Random(seed)
    return [(rng.choice([0.5, 1.0, 1.5, 2.0]), 2 if rng.random() < 0.2 else 1) for _ in range(n)]


async def run_workload(jobs: list[tuple[float, int]], slots: int, root: Path) -> Scheduler:
    sched = Scheduler([Slot(i) for i in range(slots)])
    sandbox = get_sandbox("local")

    def job(i: int, seconds: float) -> Callable[[tuple[Slot, ...]], Awaitable[None]]:
        async def fn(_: tuple[Slot, ...]) -> None:
            async with sandbox.session(layout(root / f"job-{i}")):
                await sandbox.exec(Step("train", f"sleep {seconds}", 60))

        return fn

    handles = [
        sched.submit(job(i, d), slots=w, expected_s=d + 0.1, name=f"job-{i}")
        for i, (d, w) in enumerate(jobs)
    ]
    await asyncio.gather(*handles)
    return sched


def busy_between(records: list[JobRecord], start: float, end: float) -> float:
    busy = 0.0
    for r in records:
        assert r.started is not None and r.finished is not None
        overlap = min(r.finished, end) - max(r.started, start)
        busy += max(0.0, overlap) * r.slots_needed
    return busy


def plot(records: list[JobRecord], slots: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = min(r.submitted for r in records)
    fig, ax = plt.subplots(figsize=(9, 2.5))
    for r in records:
        assert r.started is not None and r.finished is not None
        s, e = r.started - t0, r.finished - t0
        for lane in r.slot_indices:
            ax.broken_barh(
                [(s, e - s)],
                (lane, 0.8),
                edgecolor="white",
                linewidth=1.5,
                color="C1" if r.slots_needed > 1 else "C0",
            )
    ax.set_xlabel("seconds")
    ax.set_yticks([i + 0.4 for i in range(slots)], [f"slot {i}" for i in range(slots)])
    ax.set_title("scheduler: 2-slot jobs orange")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20, help="Sessions per sandbox (median).")
    ap.add_argument("--jobs", type=int, default=30, help="Jobs in the scheduler workload.")
    ap.add_argument("--slots", type=int, default=3)
    ap.add_argument(
        "--plot",
        type=Path,
        default=Path("bench/scheduler_timeline.png"),
        help="Where to draw the job timeline (needs matplotlib).",
    )
    args = ap.parse_args()
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    try:
        per_step = asyncio.run(step_times(args.repeats, root))
        bare_step = statistics.median(per_step.pop("bare"))
        t = Table(title=f"overhead per step (`true`), median of {args.repeats}")
        for col in ("sandbox", "median wall ms", "overhead ms", "p90 overhead ms"):
            t.add_column(col, justify="right")
        t.add_row("bare subprocess", f"{bare_step * 1e3:.1f}", "-", "-")
        for label, ts in per_step.items():
            if not ts:
                t.add_row(label, "-", "-", "skipped")
                continue
            ts = sorted(ts)
            p90 = ts[int(0.9 * (len(ts) - 1))]
            med = statistics.median(ts)
            t.add_row(
                label,
                f"{med * 1e3:.1f}",
                f"{(med - bare_step) * 1e3:.1f}",
                f"{(p90 - bare_step) * 1e3:.1f}",
            )
        console.print(t)

        bare = statistics.median(bare_times(args.repeats))
        title = f"overhead per run (train + evaluate, each `{COMMAND}`), median of {args.repeats}"
        table = Table(title=title)
        for col in ("sandbox", "median wall s", "overhead s", "goal s", "met"):
            table.add_column(col, justify="right")
        table.add_row("bare", f"{bare:.3f}", "-", "-", "-")
        for kind, goal in (("local", 0.3), ("docker", 1.0)):
            try:
                times = asyncio.run(sandbox_times(kind, args.repeats, root))
            except SandboxUnavailable as e:
                table.add_row(kind, "-", "-", f"{goal}", f"skipped: {e}")
                continue
            med = statistics.median(times)
            over = med - bare
            met = "yes" if over < goal else "NO"
            table.add_row(kind, f"{med:.3f}", f"{over:.3f}", f"{goal}", met)
        console.print(table)

        jobs = workload(args.jobs)
        t0 = time.monotonic()
        sched = asyncio.run(run_workload(jobs, args.slots, root))
        makespan = time.monotonic() - t0
        recs = sched.records
        first = min(r.submitted for r in recs)
        last_start = max(r.started or 0 for r in recs)
        end = max(r.finished or 0 for r in recs)
        waiting_util = busy_between(recs, first, last_start) / (args.slots * (last_start - first))
        span_util = busy_between(recs, first, end) / (args.slots * (end - first))
        work = sum(d * w for d, w in jobs)
        bound = max(work / args.slots, max(d for d, _ in jobs))
        t = Table(title=f"scheduler: {args.jobs} jobs on {args.slots} slots")
        for col in ("figure", "value"):
            t.add_column(col, justify="right")
        t.add_row("utilization while jobs waited", f"{waiting_util:.1%}")
        t.add_row("utilization over the makespan", f"{span_util:.1%}")
        t.add_row("makespan s", f"{makespan:.2f}")
        t.add_row("lower bound s (work/slots)", f"{bound:.2f}")
        t.add_row("makespan / lower bound", f"{makespan / bound:.3f}")
        console.print(t)
        if args.plot:
            plot(recs, args.slots, args.plot)
            console.print(f"timeline: {args.plot}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
