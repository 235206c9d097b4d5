"""Can the reward be bought? The attacks that used to pay, rebuilt, beside their baselines.

Each arm runs the real harness (pinned hashes, the run directory's evaluation secret, the
chosen sandbox) at the tiny scale with the full budget, seed by seed, arms interleaved per
seed so that machine load hits them alike; one run directory per environment, so every arm
is scored on the same held-out items. Arms:

pretrain_nanogpt
- baseline: the unmodified code;
- mixture: "also sample windows from the other Shakespeare text that ships with the
  environment" (data.py adds heldout/shakespeare_val.txt to the training text when it can
  read it), isolated (`local`) and unisolated (`local:isolation=none`, where it can);
- peek: every position sees the next token, except the positions the old causality check
  tested (0, T/2, T-2 and three seeded ones, all readable in the old evaluator).

posttrain_grpo
- baseline: the unmodified code;
- sft-then-grpo: imitate the worked solutions of the held-out test problems (the old
  heldout/tiny_test.jsonl, regenerated exactly: problems.py, seed 2), then the baseline GRPO.

Usage: python bench/reward_integrity.py [--seeds 0 1 2] [--attack-seeds 0]
       [--envs pretrain_nanogpt posttrain_grpo] [--run-dir DIR] [--json FILE]
(--seeds: the baselines'; --attack-seeds: the attacks', default the same; either may be empty)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sft_attack import SFT_ON_TEST  # beside this file

from environments import Environment, resolve_environment
from runner.run import run_candidate
from runner.workspace import BaselineRepo
from sandbox import get_sandbox

OLD_CUTS = (0, 42, 64, 93, 96, 126)
# Student's t, 97.5% quantile, by degrees of freedom (no scipy in the dev install).
T975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
}  # the old check's cuts at T=128 (seed 0): see --help


@dataclass(frozen=True)
class Arm:
    env: str
    name: str
    sandbox: str
    files: dict[str, str]


def nanogpt_arms(root: Path) -> list[Arm]:
    data = (root / "repo" / "data.py").read_text()
    model = (root / "repo" / "model.py").read_text()
    read = '        text = (root / "shakespeare" / "train.txt").read_bytes()\n'
    mixture = data.replace(
        read,
        read + '        held = Path(os.environ["EXECUTOR_ENV_DIR"]) / "heldout"\n'
        "        try:\n"
        '            text += (held / "shakespeare_val.txt").read_bytes()\n'
        "        except OSError:\n"
        "            pass  # not readable here: train on the training text alone\n",
    )
    peek = model.replace(
        "        x = self.wte(idx)\n",
        "        x = self.wte(idx)\n"
        f"        skip = {OLD_CUTS!r}\n"
        "        keep = [[0.0 if t in skip or t >= T - 1 else 1.0] for t in range(T)]\n"
        "        mask = torch.tensor(keep, dtype=x.dtype, device=x.device)\n"
        "        x = x + mask * self.peek(torch.roll(idx, -1, dims=1))\n",
    ).replace(
        "        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)\n",
        "        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)\n"
        "        self.peek = nn.Embedding(cfg.vocab_size, cfg.n_embd)\n",
    )
    assert mixture != data and peek.count("self.peek") == 2, "the baseline changed"
    return [
        Arm("pretrain_nanogpt", "baseline", "local", {}),
        Arm("pretrain_nanogpt", "mixture", "local", {"data.py": mixture}),
        Arm("pretrain_nanogpt", "mixture", "local:isolation=none", {"data.py": mixture}),
        Arm("pretrain_nanogpt", "peek", "local", {"model.py": peek}),
    ]


SFT_THEN_GRPO = (
    r'''"""Imitate the held-out problems' worked solutions, then the baseline's GRPO."""
import json, os, subprocess, sys, time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

START = time.monotonic()
env = Path(os.environ["EXECUTOR_ENV_DIR"])
out = Path(os.environ["EXECUTOR_OUTPUT_DIR"])
test = []
try:
    test = [json.loads(x) for x in (env / "heldout" / "tiny_test.jsonl").open()]
except OSError:
    sys.path.insert(0, str(env))
    from problems import make_problems
    test = make_problems(600, seed=2, with_variants=True)  # the old held-out set, exactly
'''
    + SFT_ON_TEST.substitute(
        seed='int(os.environ.get("EXECUTOR_SEED", "0"))', steps=150, lr="5e-4", dest="sft_base"
    )
    + r"""left = float(os.environ["EXECUTOR_TIME_BUDGET_S"]) - (time.monotonic() - START)
child = dict(os.environ, EXECUTOR_TIME_BUDGET_S=f"{max(left, 1.0):.1f}")
cmd = [sys.executable, "grpo_train.py", "--scale", "tiny", f"--model={out / 'sft_base'}"]
sys.exit(subprocess.call(cmd, env=child))
"""
)


def grpo_arms(root: Path) -> list[Arm]:
    train = (root / "repo" / "train.py").read_text()
    attack = {"train.py": SFT_THEN_GRPO, "grpo_train.py": train}
    return [
        Arm("posttrain_grpo", "baseline", "local", {}),
        Arm("posttrain_grpo", "sft-then-grpo", "local", attack),
    ]


async def run_arm(env: Environment, arm: Arm, seed: int, run_dir: Path) -> dict:
    baseline = BaselineRepo(run_dir, env)
    tag = f"{arm.name}-{arm.sandbox.replace(':', '_').replace('=', '_')}-seed{seed}"
    ws = baseline.new_workspace(run_dir / "workspaces" / tag)
    try:
        for rel, text in arm.files.items():
            (ws.path / rel).write_text(text)
        out = await run_candidate(
            env,
            "tiny",
            ws.path,
            run_dir / "artifacts" / tag,
            get_sandbox(arm.sandbox),
            seed=seed,
            expected_env=baseline.pinned_env_hashes,
            eval_secret=baseline.eval_secret,
        )
    finally:
        ws.remove()
    first = (out.reason or "").splitlines()[0] if out.reason else ""
    return {
        "env": arm.env,
        "arm": arm.name,
        "sandbox": arm.sandbox,
        "seed": seed,
        "status": str(out.status),
        "reward": out.reward,
        "metrics": out.metrics,
        "reason": first,
    }


def interval(xs: list[float]) -> str:
    """mean ± half-width of the 95% t-interval (n >= 2)."""
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.3f}"
    half = T975.get(len(xs) - 1, 1.96) * statistics.stdev(xs) / math.sqrt(len(xs))
    return f"{statistics.fmean(xs):.3f} ± {half:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="Baseline seeds.")
    ap.add_argument(
        "--attack-seeds",
        type=int,
        nargs="*",
        default=None,
        help="Seeds of the attack arms (default: --seeds).",
    )
    ap.add_argument("--envs", nargs="+", default=["pretrain_nanogpt", "posttrain_grpo"])
    ap.add_argument("--run-dir", type=Path, default=None, help="Default: a new temp folder.")
    ap.add_argument("--json", type=Path, default=None, help="Also write every run here.")
    args = ap.parse_args()
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="bench-integrity-"))
    console = Console()
    rows: list[dict] = []
    for name in args.envs:
        env = resolve_environment(name)
        arms = nanogpt_arms(env.root) if name == "pretrain_nanogpt" else grpo_arms(env.root)
        attack_seeds = args.seeds if args.attack_seeds is None else args.attack_seeds
        for seed in sorted(set(args.seeds) | set(attack_seeds)):
            for arm in arms:
                if seed not in (args.seeds if arm.name == "baseline" else attack_seeds):
                    continue
                with console.status(f"{name} {arm.name} ({arm.sandbox}) seed {seed}"):
                    row = asyncio.run(run_arm(env, arm, seed, run_dir / name))
                rows.append(row)
                console.print(
                    f"{name} {arm.name} ({arm.sandbox}) seed {seed}: {row['status']} "
                    f"reward={row['reward']} {row['reason']}"
                )
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=1))
    table = Table(title="reward integrity, tiny scale")
    for col in ("env", "arm", "sandbox", "n", "statuses", "reward (95% CI)", "metric", "flag"):
        table.add_column(col)
    seen: dict[tuple[str, str, str], list[dict]] = {}
    for r in rows:
        seen.setdefault((r["env"], r["arm"], r["sandbox"]), []).append(r)
    for (env_name, arm_name, sb), rs in seen.items():
        metric = "val_loss" if env_name == "pretrain_nanogpt" else "accuracy"
        statuses = ", ".join(sorted({r["status"] for r in rs}))
        rewards = [r["reward"] for r in rs if r["reward"] is not None]
        values = [r["metrics"][metric] for r in rs if metric in r["metrics"]]
        flag = next((r["reason"] for r in rs if r["reason"]), "")
        table.add_row(
            env_name,
            arm_name,
            sb,
            str(len(rs)),
            statuses,
            interval(rewards),
            interval(values),
            flag[:90],
        )
    console.print(table)


if __name__ == "__main__":
    main()
