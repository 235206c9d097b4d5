"""The main path: idea -> candidate (a validated commit) -> run -> reward, all recorded.

`run_idea` and `run_baseline` are what the CLI, the search and the ideator's training call.
They return typed results (agent/results.py) whose `to_json()` is what `executor ... --json`
prints.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from agent.implementer.attempts import implement
from agent.implementer.config import ImplementerConfig
from agent.llm import LLMClient
from agent.results import (
    Attempt,
    BaselineResult,
    BaselineSummary,
    CandidateStatus,
    MeanStd,
    RunResult,
    SeedRun,
)
from agent.store import Store, new_id
from environments import Environment
from runner.backends import Backend, RunJob, RunSpec, make_backend
from runner.run import RunOutcome, new_artifacts_dir
from runner.workspace import BaselineRepo
from sandbox import RunStatus, get_sandbox

Progress = Callable[[str], None]


@dataclass(kw_only=True)
class RunRequest(RunSpec):
    """Where and how a candidate runs: the run's spec, and (by name) the run directory, how
    ideas are implemented, and the backend that runs them."""

    run_dir: Path
    implementer: ImplementerConfig = field(default_factory=ImplementerConfig)
    backend: str = "local"  # or "ray"
    gpus: str | None = None  # device ids for the local backend, e.g. "0,1" (else detected)
    slots: int = 1  # concurrent runs at a CPU scale on the local backend
    ray_address: str | None = None
    ray_shared: bool = False  # the run dir is on a filesystem every Ray node mounts
    # A search's short screening runs (--screen): the share of the training budget that
    # timeout_s was cut to, recorded with each run (None: the full budget).
    fidelity: float | None = None

    def make_backend(self) -> Backend:
        return make_backend(
            self.backend,
            self.env,
            self.scale,
            gpus=self.gpus,
            slots=self.slots,
            ray_address=self.ray_address,
            ray_shared=self.ray_shared,
        )


async def run_idea(
    idea: str,
    req: RunRequest,
    store: Store,
    *,
    client: LLMClient | None = None,
    patch_text: str | None = None,
    progress: Progress = lambda _: None,
    idea_id: str | None = None,
    backend: Backend | None = None,
) -> RunResult:
    """Implement `idea` (with the LLM, or from a patch), run it, and report.

    `idea_id`: the idea is already in the store (a search recorded it). `backend`: share one
    (and its slots) across many calls; otherwise one is made for this call.
    """
    t0 = time.monotonic()
    env = req.env
    baseline = BaselineRepo(req.run_dir, env)
    source = "patch" if patch_text is not None else "cli"
    if idea_id is None:
        idea_id = store.add_idea(idea, env.name, env.repo_hash, req.scale, source)
    progress("implementing" if client else "applying the patch")
    impl = await implement(
        idea_id=idea_id,
        idea=idea,
        env=env,
        baseline=baseline,
        store=store,
        run_dir=req.run_dir,
        make_sandbox=lambda: get_sandbox(req.sandbox),
        config=req.implementer,
        client=client,
        patch_text=patch_text,
        progress=progress,
    )
    report = RunResult(
        idea_id=idea_id,
        candidate_id=impl.candidate_id,
        env=env.name,
        scale=req.scale,
        status=cast(CandidateStatus, impl.status),
        reason=impl.error,
        reward=None,
        metrics={},
        flags=[],
        attempts=[Attempt(a.n, a.phase, a.error) for a in impl.attempts],
        diff=impl.diff,
        commit=impl.commit,
        run_id=None,
        artifacts=None,
        cost_usd=_cost(store, impl.candidate_id),
        baseline=None,
        timings={"implement": time.monotonic() - t0},
    )
    if impl.workspace is None:
        report.timings["total"] = time.monotonic() - t0
        return report
    own_backend = backend is None
    backend = backend or req.make_backend()
    try:
        run_id, outcome = await _run(
            impl.candidate_id,
            impl.workspace.path,
            req,
            store,
            baseline,
            backend,
            on_start=lambda: progress(f"training ({req.scale}, seed {req.seed})"),
        )
    finally:
        if own_backend:
            backend.close()
        impl.workspace.remove()  # the commit stays under refs/candidates/
    report.add_run(run_id, outcome)
    report.baseline = baseline_summary(store, env, req)
    report.timings["total"] = time.monotonic() - t0
    return report


async def run_baseline(
    req: RunRequest,
    store: Store,
    seeds: int | Sequence[int],
    progress: Progress = lambda _: None,
    *,
    candidate_id: str | None = None,
    backend: Backend | None = None,
) -> BaselineResult:
    """Run the unmodified baseline on `seeds` (a count: seeds 0..n-1) with `req.split`'s items;
    report each run and mean ± std. `candidate_id`: add the runs to that baseline candidate
    (a search's, whose confirmation re-runs its baseline on the confirmation seeds).
    `backend`: share one (and its slots) with other work; otherwise one is made here."""
    env = req.env
    baseline = BaselineRepo(req.run_dir, env)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    cand_id = candidate_id or baseline_candidate(req, store)
    found = store.candidate(cand_id)
    if found is None:
        raise ValueError(f"no baseline candidate {cand_id} in {req.run_dir}")
    idea_id = found["idea_id"]
    own_backend = backend is None
    backend = backend or req.make_backend()
    started = 0

    def on_start() -> None:
        nonlocal started
        started += 1
        progress(f"baseline seed {started}/{len(seed_list)} ({req.split})")

    async def one(seed: int) -> SeedRun:
        # A worktree per seed: seeds may run at once, and code may write into its cwd.
        ws = baseline.new_workspace(
            req.run_dir / "workspaces" / _workspace_name(cand_id, replace(req, seed=seed))
        )
        try:
            run_id, outcome = await _run(
                cand_id, ws.path, replace(req, seed=seed), store, baseline, backend, on_start
            )
        finally:
            ws.remove()
        return SeedRun.of(seed, run_id, outcome)

    try:
        runs = list(await asyncio.gather(*(one(seed) for seed in seed_list)))
    finally:
        if own_backend:
            backend.close()
    ok = [r for r in runs if r.status == RunStatus.SUCCEEDED]
    summary: dict[str, MeanStd] = {}
    if ok:
        # A succeeded run has a reward: its evaluation scored it.
        summary["reward"] = MeanStd.of([r.reward for r in ok if r.reward is not None])
        for name in ok[0].metrics:
            summary[name] = MeanStd.of([r.metrics[name] for r in ok if name in r.metrics])
    return BaselineResult(
        idea_id,
        cand_id,
        env.name,
        req.scale,
        "succeeded" if len(ok) == len(runs) else "failed",
        runs,
        summary,
    )


def baseline_candidate(req: RunRequest, store: Store) -> str:
    """A new candidate for the unmodified baseline (validated: it is the baseline commit)."""
    env = req.env
    baseline = BaselineRepo(req.run_dir, env)
    idea_id = store.add_idea("baseline", env.name, env.repo_hash, req.scale, "baseline")
    cand_id = store.add_candidate(idea_id, 0, "baseline", baseline.baseline_sha)
    store.finish_candidate(cand_id, "validated", commit_sha=baseline.baseline_sha, diff="")
    return cand_id


async def run_unchanged(idea_id: str, req: RunRequest, store: Store, backend: Backend) -> RunResult:
    """Run the unmodified baseline as the idea `idea_id` (a search's null control): a
    candidate of its own at the baseline commit, so it is run, compared and confirmed exactly
    like an idea, seeds and split included."""
    baseline = BaselineRepo(req.run_dir, req.env)
    cand_id = store.add_candidate(idea_id, 0, "control", baseline.baseline_sha)
    store.finish_candidate(cand_id, "validated", commit_sha=baseline.baseline_sha, diff="")
    return await _run_commit(idea_id, store.candidate(cand_id), req, store, backend)


async def run_validated(
    idea_id: str, req: RunRequest, store: Store, backend: Backend
) -> RunResult | None:
    """Run the idea's validated candidate again (another seed, or confirmation) from its
    commit: the same bytes that passed validation, so neither the implementer nor the checks
    run again. None when the idea has no validated candidate."""
    cand = store.validated_candidate(idea_id)
    return None if cand is None else await _run_commit(idea_id, cand, req, store, backend)


async def _run_commit(
    idea_id: str, cand: dict[str, Any] | None, req: RunRequest, store: Store, backend: Backend
) -> RunResult:
    """One run of a validated candidate's commit, checked out afresh."""
    assert cand is not None
    t0 = time.monotonic()
    baseline = BaselineRepo(req.run_dir, req.env)
    # A worktree per seed and split: an arm's confirmation seeds may run at once.
    ws = baseline.new_workspace(
        req.run_dir / "workspaces" / _workspace_name(cand["id"], req),
        cand["commit_sha"],
    )
    try:
        run_id, outcome = await _run(cand["id"], ws.path, req, store, baseline, backend)
    finally:
        ws.remove()
    report = RunResult(
        idea_id, cand["id"], req.env.name, req.scale, "validated", None, None, {}, [], [],
        cand["diff"] or "", cand["commit_sha"], None, None, 0.0, None, {},
    )  # fmt: skip
    report.add_run(run_id, outcome)
    report.timings["total"] = time.monotonic() - t0
    return report


def _workspace_name(cand_id: str, req: RunRequest) -> str:
    """A worktree per seed, split and fidelity: any of them may run at once."""
    short = f"-f{req.fidelity:g}" if req.fidelity is not None else ""
    return f"{cand_id}-{req.split}-seed{req.seed}{short}"


def run_conditions(req: RunRequest) -> dict[str, object]:
    """What a run shares with the baselines it may be shown beside: the machine, the sandbox,
    the training limit and its clock, and the evaluator's split (its seed is matched
    separately)."""
    return {
        "host": socket.gethostname(),
        "sandbox": req.sandbox,
        "timeout_s": req.timeout_s,
        "clock": req.env.scale(req.scale).budget_clock,
        "split": req.split,
        **({"fidelity": req.fidelity} if req.fidelity is not None else {}),
    }


async def _run(
    cand_id: str,
    workspace: Path,
    req: RunRequest,
    store: Store,
    baseline: BaselineRepo,
    backend: Backend,
    on_start: Callable[[], None] = lambda: None,
) -> tuple[str, RunOutcome]:
    run_id = new_id("run")
    artifacts = new_artifacts_dir(req.run_dir, run_id)
    store.start_run(
        cand_id,
        req.scale,
        req.seed,
        req.sandbox,
        artifacts,
        run_id,
        split=req.split,
        conditions=run_conditions(req),
        fidelity=req.fidelity,
    )
    job = RunJob(
        req,
        workspace,
        artifacts,
        expected_env=baseline.pinned_env_hashes,
        eval_secret=baseline.eval_secret,
        name=run_id,
        on_start=on_start,
    )
    try:
        outcome = await backend.run(job)
    except BaseException as e:
        # Ctrl-C or a harness bug: the run row must still end in a terminal status.
        status = (
            RunStatus.CANCELLED
            if isinstance(e, KeyboardInterrupt | asyncio.CancelledError)
            else (RunStatus.INFRA_ERROR)
        )
        store.finish_run(
            run_id,
            status,
            reason=f"{type(e).__name__}: {e}".rstrip(": "),
            metrics={},
            flags=[],
            reward=None,
            timings={},
        )
        raise
    store.finish_run(
        run_id,
        outcome.status,
        reason=outcome.reason,
        metrics=outcome.metrics,
        flags=outcome.flags,
        reward=outcome.reward,
        timings=outcome.timings,
        items=outcome.items,
    )
    return run_id, outcome


def baseline_summary(store: Store, env: Environment, req: RunRequest) -> BaselineSummary | None:
    """The baseline an idea's run is read against: the latest baseline measurement whose runs
    share the idea run's conditions (run_conditions), its mean ± std over seeds and its reward
    on the idea's own seed; never a pool of measurements from other times or conditions.
    Without one, the manifest's declared figure, if any."""
    wanted = run_conditions(req)
    runs = store.baseline_runs(env.repo_hash, req.scale)
    same = [r for r in runs if r["conditions"] == wanted]
    other = len(runs) - len(same)
    if same:
        latest = max(same, key=lambda r: r["started_at"])["candidate_id"]
        batch = [r for r in same if r["candidate_id"] == latest]
        m = MeanStd.of([float(r["reward"]) for r in batch])
        on_seed = [float(r["reward"]) for r in batch if r["seed"] == req.seed]
        return BaselineSummary(
            m.mean, m.std, m.n, "measured", on_seed[0] if on_seed else None, latest, other
        )
    declared = env.scale(req.scale).baseline_reward
    if declared is not None:
        return BaselineSummary(declared, None, None, "manifest", other_conditions=other)
    return None


def _cost(store: Store, cand_id: str) -> float | None:
    costs = [c["cost_usd"] for c in store.llm_calls(cand_id)]
    known = [c for c in costs if c is not None]
    return sum(known) if known else (0.0 if not costs else None)
