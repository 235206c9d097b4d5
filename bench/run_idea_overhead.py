"""How much time `executor run-idea --patch` adds beyond the toy environment's own run.

Runs the real CLI N times on the toy environment (one run dir, so the baseline repo is built
once, as in real use; the first, cold run is reported apart) and splits each wall time into:

- the toy's own run: the train and evaluate steps (what the user asked for);
- implement: git worktree + applying the patch + validation (compile, smoke run) + commit;
- the rest of the process: interpreter start, imports, store, output.

Usage: python bench/run_idea_overhead.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "toy_env"
EXECUTOR = Path(sys.executable).parent / "executor"


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return wall, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="Warm runs to take the median of.")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    env_dir = tmp / "toy_env"
    shutil.copytree(TOY, env_dir)
    cmd = [
        str(EXECUTOR),
        "run-idea",
        "--patch",
        str(TOY / "ideas" / "more_steps.patch"),
        "--env",
        str(env_dir),
        "--run-dir",
        str(tmp / "runs"),
        "--json",
    ]
    rows = []
    for i in range(args.repeats + 1):  # run 0 is cold: it builds the baseline repo
        wall, out = timed(cmd)
        t = json.loads(out)["timings"]
        own = t["train"] + t["evaluate"]
        rows.append(
            {
                "wall": wall,
                "own": own,
                "overhead": wall - own,
                "implement": t["implement"],
                "process": wall - t["total"],
                "cold": i == 0,
            }
        )
    # What a bare interpreter, the CLI's imports, and the smoke command cost on their own.
    startup = [timed([sys.executable, "-c", "pass"])[0] for _ in range(args.repeats)]
    imports = [
        timed([sys.executable, "-c", "import agent.cli, agent.executor, agent.llm"])[0]
        for _ in range(args.repeats)
    ]
    smoke_env = {"EXECUTOR_OUTPUT_DIR": str(tmp)}
    smoke = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "train.py", "--smoke"],
            cwd=TOY / "repo",
            env=smoke_env,
            capture_output=True,
            check=True,
        )
        smoke.append(time.perf_counter() - t0)
    shutil.rmtree(tmp, ignore_errors=True)

    warm = [r for r in rows if not r["cold"]]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in warm)

    table = Table(
        title=f"run-idea --patch on the toy environment (median of {len(warm)} warm runs)"
    )
    table.add_column("part")
    table.add_column("seconds", justify="right")
    table.add_column("share of wall", justify="right")
    wall = med("wall")
    for name, value in [
        ("wall time of the command", wall),
        ("  toy's own run (train + evaluate)", med("own")),
        ("  overhead beyond the toy's run", med("overhead")),
        ("    implement (worktree, apply, compile, smoke, commit)", med("implement")),
        ("      of which the smoke command alone", statistics.median(smoke)),
        ("    process (interpreter, imports, store, output)", med("process")),
        ("      of which bare interpreter start", statistics.median(startup)),
        ("      of which interpreter + CLI imports", statistics.median(imports)),
        (
            "    remaining (run bookkeeping: hashing, store, cleanup)",
            med("overhead") - med("implement") - med("process"),
        ),
        ("cold first run (builds the baseline repo), wall", rows[0]["wall"]),
    ]:
        table.add_row(name, f"{value:.3f}", f"{value / wall:.0%}")
    Console().print(table)
    print(f"overhead / own-run ratio: {med('overhead') / med('own'):.2f}")


if __name__ == "__main__":
    main()
