"""Ideas per hour, and the share of each idea's wall time that trains, at the tiny scale.

Runs one real search (hparam ideator, one epoch of N ideas, one baseline seed, no
confirmation) with the given `executor` and reads the store it wrote:

- per idea: implement (worktree, edits, validation with its smoke: the candidate's created ->
  finished time), train, export and evaluate (the run's step times); the training share is
  train / (implement + train + export + evaluate), reported as the median over the ideas;
- ideas per hour: N x 3600 / the wall time from the first idea's implementation to the last
  idea's run ending (the baseline before it is not counted).

`--executor` points at another checkout's `executor`, so two versions compare on one machine
in one session (run them back to back, with nothing else running: the tiny scales count
CPU-seconds, but wall time is what this measures).

Usage: python bench/idea_throughput.py --env pretrain_nanogpt [--ideas 5] [--slots 2]
           [--executor PATH] [--run-dir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agent.store import Store

EXECUTOR = Path(sys.executable).with_name("executor")


def search(executor: Path, env: str, ideas: int, slots: int, run_dir: Path) -> float:
    cmd = [
        str(executor), "search", "--env", env, "--scale", "tiny", "--ideator", "hparam",
        "--epochs", "1", "--ideas-per-epoch", str(ideas), "--baseline-seeds", "1",
        "--rerun-top", "0", "--slots", str(slots), "--run-dir", str(run_dir),
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"search failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def per_idea(run_dir: Path) -> list[dict[str, float]]:
    """Each search idea's step times (its first full-budget run; a --screen short look is not
    one), read through the store (which brings an older run directory's schema up to date)."""
    out = []
    with closing(Store(run_dir)) as store:
        search = store.latest_search()
        assert search is not None, f"no search in {run_dir}"
        for idea in store.search_ideas(search["id"], 1000):
            for cand in store.candidates(idea["idea_id"]):
                runs = [
                    r
                    for r in store.runs(cand["id"])
                    if r["status"] != "cancelled" and r.get("fidelity") is None
                ]
                if not runs:
                    continue
                r = runs[0]
                t = r["timings"] or {}
                t = json.loads(t) if isinstance(t, str) else t
                steps = {k: float(t.get(k, 0.0)) for k in ("train", "export", "evaluate")}
                steps["implement"] = float(cand["updated_at"] - cand["created_at"])
                steps["start"] = float(cand["created_at"])
                steps["end"] = float(r["ended_at"] or r["started_at"])
                steps["ok"] = float(r["status"] == "succeeded")
                out.append(steps)
                break
    return out


def summarize(ideas: list[dict[str, float]]) -> dict[str, float]:
    def med(key: str) -> float:
        return statistics.median(i[key] for i in ideas)

    shares = [
        i["train"] / (i["implement"] + i["train"] + i["export"] + i["evaluate"]) for i in ideas
    ]
    span = max(i["end"] for i in ideas) - min(i["start"] for i in ideas)
    return {
        "ideas": len(ideas),
        "succeeded": sum(i["ok"] for i in ideas),
        "implement_s": med("implement"),
        "train_s": med("train"),
        "export_s": med("export"),
        "evaluate_s": med("evaluate"),
        "train_share": statistics.median(shares),
        "span_s": span,
        "ideas_per_hour": len(ideas) * 3600 / span,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", required=True, help="pretrain_nanogpt, posttrain_grpo, or a path")
    ap.add_argument("--ideas", type=int, default=5, help="ideas in the search's one epoch")
    ap.add_argument("--slots", type=int, default=2, help="runs at once (--slots)")
    ap.add_argument("--executor", type=Path, default=EXECUTOR, help="the executor to measure")
    ap.add_argument("--run-dir", type=Path, default=None, help="where the search writes")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    wall = search(args.executor, args.env, args.ideas, args.slots, run_dir)
    figures = summarize(per_idea(run_dir)) | {"search_wall_s": wall, "executor": str(args.executor)}
    table = Table(title=f"{args.env}, tiny, {args.ideas} ideas, {args.slots} slots")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for k, v in figures.items():
        table.add_row(k, f"{v:.3g}" if isinstance(v, float) else str(v))
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
