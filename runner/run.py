"""One run of a candidate: train, export (if the environment has it), evaluate, reward.

The reward never comes from code an idea can edit: training only writes EXECUTOR_OUTPUT_DIR;
an optional export step runs candidate code once more to turn that output into what the
evaluator scores (EXECUTOR_EXPORT_DIR), still without eval-only data; the evaluator, which
lives outside the repo and is verified by hash before it runs, reads those artifacts plus
what only the harness can give it (the run directory's secret, EXECUTOR_EVAL_SECRET, and the
harness's own times of checkpoints, EXECUTOR_OUTPUT_TIMES) and writes result.json into a
folder no other step sees; the harness then checks the metrics against the manifest's
plausible range and computes the reward. RunLayout's table (sandbox/base.py) says what
each step may read and write.
"""

from __future__ import annotations

import json
import math
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from environments import Environment
from environments.reward import RewardError, compute_reward
from runner.items import ItemOutcomes, ItemsError, metric_mismatch, read_items
from sandbox.base import Limits, RunLayout, RunStatus, Sandbox, Step, StepResult


@dataclass
class RunOutcome:
    status: RunStatus
    reason: str | None
    artifacts: Path
    metrics: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    reward: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    items: ItemOutcomes | None = None  # per-item outcomes, when the evaluator wrote them


SPLITS = ("screen", "confirm")  # the evaluator's disjoint item sets (EXECUTOR_EVAL_SPLIT)
OUTPUT_TIMES = "output_times.json"  # in the result folder: the harness's checkpoint times
# Slack for the harness's own clock: it starts before the process does, and sees a change at
# its next poll (sandbox/watch.py polls twice a second). On a CPU clock, times the scale's cpus.
BUDGET_GRACE_S = 2.0


def layout_for(workspace: Path, env: Environment, artifacts: Path) -> RunLayout:
    image = env.manifest.image
    return RunLayout(
        workspace=workspace,
        env_dir=env.root,
        output_dir=artifacts / "output",
        result_dir=artifacts / "eval",
        log_dir=artifacts / "logs",
        dockerfile=env.root / image if image else None,
        export_dir=artifacts / "export" if env.manifest.export is not None else None,
        eval_only=tuple(env.eval_only_paths()),
    )


async def run_candidate(
    env: Environment,
    scale_name: str,
    workspace: Path,
    artifacts: Path,
    sandbox: Sandbox,
    *,
    seed: int = 0,
    gpus: tuple[int, ...] = (),
    timeout_s: float | None = None,
    expected_env: dict[str, str] | None = None,
    eval_secret: str | None = None,
    split: str = "screen",
) -> RunOutcome:
    """Train `workspace` at `scale_name`, evaluate it on `split`'s items, and score it.
    Never raises for bad code.

    `expected_env` pins the environment's protected files (BaselineRepo.pinned_env_hashes);
    without it they are pinned at the start of this run. `eval_secret` (BaselineRepo.
    eval_secret) reaches the evaluator alone; the same secret scores every arm of a run
    directory on the same items. Without it, this run gets a fresh one. `split`: screen (what
    a search's feedback sees) or confirm (the disjoint items its verdicts come from).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    scale = env.scale(scale_name)
    layout = layout_for(workspace, env, artifacts)
    timings: dict[str, float] = {}

    def outcome(status: RunStatus, reason: str | None, **kw: Any) -> RunOutcome:
        return RunOutcome(status, reason, artifacts, timings=timings, **kw)

    timeout = timeout_s or scale.timeout  # on the scale's budget clock, as the budget
    limits = Limits(memory_gb=scale.memory_gb, cpus=scale.cpus, disk_gb=scale.disk_gb)
    scale_env = {"EXECUTOR_SCALE": scale_name}
    if scale.budget_clock == "cpu":
        # As many compute threads as the scale has cores, in every step. Threads beyond what
        # a busy machine gives the step add synchronisation work whose CPU cost depends on the
        # load (tiny GPT, 2 threads: 612 ms of CPU per step idle, 472 beside a busy process;
        # 1 thread: 459 and 451), and an evaluation on more threads than its cores slows the
        # training of the run beside it (--slots), so the budget would buy less training.
        threads = str(max(1, int(scale.cpus)))
        scale_env |= {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    train_env = {**scale_env, "EXECUTOR_BUDGET_CLOCK": scale.budget_clock}
    # A CPU clock: the harness kills training past `timeout` CPU-seconds, or at the wall cap.
    cpu_timeout = timeout if scale.budget_clock == "cpu" else None
    grace = BUDGET_GRACE_S * (scale.cpus if cpu_timeout is not None else 1)
    budget: float | None = None
    if scale.time_budget is not None:
        # A shorter --timeout shrinks the budget too, keeping the scale's margin for start-up.
        margin = scale.timeout - scale.time_budget
        budget = max(1.0, min(scale.time_budget, timeout - margin))
        train_env["EXECUTOR_TIME_BUDGET_S"] = f"{budget:g}"
    expected = expected_env if expected_env is not None else env.protected_hashes()
    if changed := env_changes(env, expected):
        return outcome(RunStatus.FLAGGED, changed)

    async def run_step(name: str, command: str, step_timeout: float, **kw: Any) -> StepResult:
        """One step with this run's seed, GPUs and limits, timed and its usage recorded."""
        step = Step(name, command, step_timeout, seed=seed, gpus=gpus, limits=limits, **kw)
        result = await sandbox.exec(step)
        timings[name] = result.duration_s
        record_usage(layout, result)
        return result

    async with sandbox.session(layout):
        timed = tuple(scale.timed_outputs)
        train = await run_step(
            "train",
            scale.command,
            scale.wall_cap(timeout),
            extra_env=train_env,
            timed_outputs=timed,
            cpu_timeout_s=cpu_timeout,
        )
        if train.status is not RunStatus.SUCCEEDED:
            return outcome(train.status, _with_tail(train))
        if changed := env_changes(env, expected):
            return outcome(RunStatus.FLAGGED, changed + " (during training)")
        if late := over_budget(train.output_times, budget, grace, cpu_timeout is not None):
            return outcome(RunStatus.FLAGGED, late)
        if (ex := env.manifest.export) is not None:
            assert layout.export_dir is not None
            shutil.rmtree(layout.export_dir, ignore_errors=True)
            export = await run_step(
                "export", ex.command, ex.timeout, writes_export_dir=True, extra_env=scale_env
            )
            if export.status is not RunStatus.SUCCEEDED:
                return outcome(export.status, "export: " + _with_tail(export))
            if changed := env_changes(env, expected):
                return outcome(RunStatus.FLAGGED, changed + " (during export)")
        # Nothing but the harness and the evaluator may put anything there.
        shutil.rmtree(layout.result_dir, ignore_errors=True)
        layout.result_dir.mkdir(parents=True)
        ev_env = {
            **scale_env,
            "EXECUTOR_EVAL_SECRET": eval_secret or secrets.token_hex(32),
            "EXECUTOR_EVAL_SPLIT": split,
        }
        if scale.timed_outputs:
            times_path = layout.result_dir / OUTPUT_TIMES
            times_path.write_text(json.dumps(train.output_times, indent=1, sort_keys=True))
            ev_env["EXECUTOR_OUTPUT_TIMES"] = str(sandbox.seen_path(times_path))
        ev = env.manifest.evaluate
        ev_timeout = scale.evaluate_timeout or ev.timeout
        evaluate = await run_step(
            "evaluate", ev.command, ev_timeout, sees_result_dir=True, extra_env=ev_env
        )
    if evaluate.status is RunStatus.INFRA_ERROR:
        return outcome(evaluate.status, evaluate.reason)
    if evaluate.status is not RunStatus.SUCCEEDED:
        # The evaluator is trusted, so its failure means the artifacts were unusable.
        return outcome(RunStatus.FAILED, "evaluator: " + _with_tail(evaluate))
    return score(env, layout.result_dir / "result.json", outcome, scale.metric_range)


def over_budget(
    times: dict[str, float],
    budget: float | None,
    grace: float = BUDGET_GRACE_S,
    cpu_clock: bool = False,
) -> str | None:
    """One line naming the timed outputs training wrote after its time budget, or None.

    The harness kills training only at the scale's timeout, a margin after the budget; an
    artifact that lands in that margin was trained with time the budget did not give.
    Times, budget and grace are on the scale's clock (CPU-seconds when `cpu_clock`)."""
    if budget is None:
        return None
    late = sorted((t, rel) for rel, t in times.items() if t > budget + grace)
    if not late:
        return None
    t, rel = late[-1]
    unit = " CPU-s" if cpu_clock else "s"
    return (
        f"training wrote {rel} {t:.1f}{unit} after it started, past its {budget:g}{unit} time "
        "budget (times as the harness saw them)"
    )


def record_usage(layout: RunLayout, step: StepResult) -> None:
    """Add a step's resource use to logs/usage.json (CPU time and peak memory where the
    sandbox measures them), so a scale's `memory_gb` and budgets can be set from what runs
    really take."""
    path = layout.log_dir / "usage.json"
    try:
        usage = json.loads(path.read_text())
    except (OSError, ValueError):
        usage = {}
    usage[step.name] = {
        "status": str(step.status),
        "exit_code": step.exit_code,
        "duration_s": round(step.duration_s, 3),
        "cpu_s": None if step.cpu_s is None else round(step.cpu_s, 3),
        "peak_memory_bytes": step.peak_memory_bytes,
    }
    path.write_text(json.dumps(usage, indent=1) + "\n")


def env_changes(env: Environment, expected: dict[str, str]) -> str | None:
    """One line naming the protected environment files that differ from `expected`."""
    now = env.protected_hashes()
    diff = sorted(k for k in now.keys() | expected.keys() if now.get(k) != expected.get(k))
    if not diff:
        return None
    shown = ", ".join(diff[:5]) + (f" and {len(diff) - 5} more" if len(diff) > 5 else "")
    return (
        f"protected environment files changed: {shown}; restore them, or use a new --run-dir "
        "if the change is intended (results scored by different evaluators do not compare)"
    )


def score(
    env: Environment,
    result_path: Path,
    outcome: Callable[..., RunOutcome],
    metric_range: tuple[float, float] | None = None,
) -> RunOutcome:
    """Read result.json (and items.jsonl beside it), check plausibility (the scale's range, if
    set) and that the items reproduce the metric, compute the reward."""
    try:
        result = json.loads(result_path.read_text())
        metrics = {str(k): float(v) for k, v in result.get("metrics", {}).items()}
        flags = [str(f) for f in result.get("flags", [])]
    except (OSError, ValueError, TypeError, AttributeError) as e:
        return outcome(RunStatus.FAILED, f"evaluator wrote no valid result.json ({e})")
    try:
        items = read_items(result_path.parent)
    except ItemsError as e:
        return outcome(RunStatus.FAILED, f"evaluator wrote invalid items: {e}", metrics=metrics)
    metric = env.manifest.metric
    value = metrics.get(metric.name)
    if value is None and not flags:
        return outcome(
            RunStatus.FAILED, f"evaluator did not report {metric.name!r}", metrics=metrics
        )
    low, high = metric_range or metric.range
    # A flagged model may have no score worth reporting (NaN): the evaluator's flags say why.
    if value is not None and not (math.isnan(value) and flags) and not low <= value <= high:
        flags.append(f"{metric.name}={value:g} is outside the plausible range [{low:g}, {high:g}]")
    if flags:
        return outcome(RunStatus.FLAGGED, "; ".join(flags), metrics=metrics, flags=flags)
    assert value is not None  # no flags, so the metric was reported
    if items is not None and (wrong := metric_mismatch(items, metric.name, value)):
        # The evaluator is trusted: a disagreement is its bug, and no statistic may use it.
        return outcome(RunStatus.FAILED, f"evaluator: {wrong}", metrics=metrics)
    try:
        reward = compute_reward(metric.reward, metrics)
    except RewardError as e:
        return outcome(RunStatus.FLAGGED, str(e), metrics=metrics, flags=[str(e)])
    return outcome(RunStatus.SUCCEEDED, None, metrics=metrics, reward=reward, items=items)


def _with_tail(step: StepResult) -> str:
    tail = step.stderr_tail(15)
    return f"{step.reason}\n{tail}" if tail else str(step.reason)


def new_artifacts_dir(run_dir: Path, run_id: str) -> Path:
    path = run_dir / "artifacts" / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path
