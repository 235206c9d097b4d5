"""The training budget an ideator training runs its ideas at, and the full one it is judged at.

A short `--timeout` makes every execution cheaper (a screening budget): its runs are recorded
with `fidelity`, the share of the training budget they got (as `search --screen` records its
short runs), so nothing reads them as full-budget results, and the baseline the training is
compared with is the one measured at that same budget.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

# Stored beside a training's settings: the --timeout its ideas ran at (None: the scale's).
TIMEOUT_KEY = "run_timeout_s"

if TYPE_CHECKING:
    from agent.executor import RunRequest
    from agent.store import Store


def training_budget(req: RunRequest) -> tuple[float | None, float | None]:
    """(the training budget this request gets, the scale's), on the scale's clock, as
    runner/run.py derives it (the timeout less the scale's start-up margin)."""
    scale = req.env.scale(req.scale)
    if scale.time_budget is None:
        return None, None
    margin = scale.timeout - scale.time_budget
    got = max(1.0, min(scale.time_budget, (req.timeout_s or scale.timeout) - margin))
    return got, float(scale.time_budget)


def with_fidelity(req: RunRequest) -> RunRequest:
    """`req` with `fidelity` set when its --timeout cuts the training budget (else None)."""
    got, full = training_budget(req)
    share = got / full if got is not None and full and got < full else None
    return replace(req, fidelity=share)


def full_budget(req: RunRequest) -> RunRequest:
    """`req` at the scale's own timeout and budget."""
    return replace(req, timeout_s=None, fidelity=None)


def describe(req: RunRequest) -> str:
    """E.g. "15 CPU-s of training (17% of the scale's 90)" or "the full budget (90 CPU-s)"."""
    got, full = training_budget(req)
    scale = req.env.scale(req.scale)
    unit = "CPU-s" if scale.budget_clock == "cpu" else "s"
    if got is None or full is None:
        return f"timeout {req.timeout_s or scale.timeout:g} s (no training budget)"
    if got >= full:
        return f"the full budget ({full:g} {unit} of training)"
    return f"{got:g} {unit} of training ({got / full:.0%} of the scale's {full:g})"


def matching_baseline(store: Store, req: RunRequest) -> list[float]:
    """Rewards of the baseline runs measured as `req`'s runs are (run_conditions: the same
    machine, sandbox, timeout, clock, split and fidelity): a short-budget training is compared
    with the baseline at its budget, never with one at another."""
    from agent.executor import run_conditions

    wanted = run_conditions(req)
    runs = store.baseline_runs(req.env.repo_hash, req.scale)
    return [float(r["reward"]) for r in runs if r["conditions"] == wanted]
