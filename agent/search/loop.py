"""`executor search`: epochs of ideas against an environment, every result archived.

Per search: measure the baseline over several seeds (the noise estimate) on the evaluator's
screen split, run the control arms if asked (agent/search/controls.py), then for each epoch
ask the ideator for ideas (recorded before any runs), drop duplicates of earlier ideas before
they cost a run, implement and run the rest on the backend's slots (on the baseline's seeds,
screen split), and close the epoch. The ideator only ever sees these screening results. At
the end, confirmation (agent/search/confirm.py) re-runs the finalists, the controls and the
baseline on fresh seeds and the confirm split, and the confirmation table's verdicts
(agent/search/verdicts.py) are the search's claims. Every step is written to the store first,
so `--resume` continues exactly where a killed search stopped.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from agent.dedup import DuplicateIndex, local_embedder
from agent.executor import (
    Progress,
    RunRequest,
    baseline_candidate,
    run_baseline,
    run_idea,
    run_unchanged,
    run_validated,
)
from agent.llm import LLMClient
from agent.results import Result, RunResult
from agent.search.archive import SCREENED_OUT, TERMINAL, Archive, ArchivedIdea
from agent.search.config import SearchConfig
from agent.search.confirm import run_confirmation
from agent.search.controls import ROLE as CONTROL_ROLE
from agent.search.controls import is_null, record_controls
from agent.search.ensembles import ROLE as ENSEMBLE_ROLE
from agent.search.ensembles import is_combination, record_round
from agent.search.fidelity import Promotion, decide, percent, promotions, short_request
from agent.search.ideas_parse import IdeaParseError
from agent.search.ideators import IdeationContext, Ideator
from agent.search.ranking import rank_metric
from agent.search.stats import interval
from agent.search.verdicts import ConfirmationTable
from agent.store import Store
from environments import Environment
from runner.backends import Backend
from runner.workspace import BaselineRepo, remove_stale_workspaces


def spend(store: Store) -> dict[str, float]:
    """What the run directory has spent so far: LLM dollars and GPU-hours of runs."""
    return store.spend()


def over_budget(config: SearchConfig, store: Store) -> str | None:
    spent = spend(store)
    if config.budget_usd is not None and spent["usd"] >= config.budget_usd:
        return f"LLM budget reached: ${spent['usd']:.2f} of ${config.budget_usd:.2f}"
    if config.budget_gpu_hours is not None and spent["gpu_hours"] >= config.budget_gpu_hours:
        return f"GPU budget reached: {spent['gpu_hours']:.2f} of {config.budget_gpu_hours} h"
    return None


@dataclass
class SearchResult(Result):
    """`run_search`'s: how it ended, what it spent, every idea and control arm, the
    confirmation table (None when nothing reached confirmation), and --screen's promotions."""

    status: Literal["done", "stopped"]
    reason: str | None  # why it stopped early (a budget, an ideator out of ideas)
    spend: dict[str, float]  # usd, gpu_hours
    search_id: str
    env: str
    scale: str
    baseline: str | None  # the baseline's screening reward interval, as text
    ideas: list[ArchivedIdea]
    confirmation: ConfirmationTable | None
    # Each epoch's promotion decisions under --screen (agent/search/fidelity.py); else none.
    promotions: list[Promotion] = field(default_factory=list)


async def run_search(
    config: SearchConfig,
    req: RunRequest,
    store: Store,
    ideator: Ideator,
    *,
    implementer: LLMClient | None = None,
    resume: bool = False,
    progress: Progress = lambda _: None,
) -> SearchResult:
    archive = Archive(store)
    env = req.env
    search = archive.latest() if resume else None
    if resume and search is None:
        raise ValueError(f"no search to resume in {req.run_dir}: start one without --resume")
    if search is not None:
        if search["env_hash"] != env.repo_hash:
            raise ValueError(
                f"{req.run_dir} holds a search of {search['env']} ({search['env_hash'][:12]}); "
                f"this is {env.name} ({env.repo_hash[:12]}): use another --run-dir"
            )
        # The stored settings win on resume, except budgets given again (to raise them).
        stored = SearchConfig(**search["config"])
        config = replace(
            stored,
            budget_usd=config.budget_usd if config.budget_usd is not None else stored.budget_usd,
            budget_gpu_hours=config.budget_gpu_hours
            if config.budget_gpu_hours is not None
            else stored.budget_gpu_hours,
        )
        search_id = search["id"]
        if n := archive.close_interrupted_runs(search_id):
            progress(f"resuming: {n} interrupted runs will run again")
        remove_stale_workspaces(req.run_dir, req.env)
    else:
        if config.screen:
            short_request(req, config.screen)  # a scale without a budget fails before anything
        focus = env.focused(config.focus).focus
        if not config.rank_by and focus is not None and focus.rank_by:
            # Stored as it was used: the report and the table's warnings read it back.
            config = replace(config, rank_by=focus.rank_by)
        metric = {"name": env.manifest.metric.name, "direction": env.manifest.metric.direction}
        search_id = archive.start(env.name, env.repo_hash, req.scale, asdict(config), metric)

    # The focus narrows what ideas may edit (and what the implementer is shown as editable);
    # the stored setting wins on resume, like every other.
    env = env.focused(config.focus)
    req = replace(req, env=env)

    backend = req.make_backend()
    seeds = list(range(config.screen_seeds))
    # Ensembles and the random-subset control may also write their member modules.
    combined = replace(req, env=env.focused(config.focus, ensembles=True))
    runner = _Runner(archive, req, store, backend, implementer, progress, seeds, combined)
    try:
        # The baseline (at the full budget and, with --screen, the short one) and the control
        # arms need nothing from one another: they share the backend's slots at once.
        if config.controls:
            record_controls(archive, search_id, env, req.scale)
        outcome = await asyncio.gather(
            _measure_baseline(archive, search_id, runner, config),
            _run_controls(archive, search_id, runner, config) if config.controls else _none(),
        )
        stopped: str | None = outcome[1]
        baseline = archive.baseline_rewards(search_id)
        base_mean = sum(baseline) / len(baseline) if baseline else None
        base_metrics = archive.baseline_metrics(search_id)
        if config.mode == "async" and not stopped:
            stopped = await _run_async(
                archive, search_id, runner, config, ideator, (base_mean, base_metrics)
            )
        for epoch in range(config.epochs if config.mode == "epochs" and not stopped else 0):
            if stopped := over_budget(config, store):
                break
            if epoch not in archive.epochs_generated(search_id):
                history = archive.ideas(search_id)
                ctx = ideation_context(
                    config, env, req.scale, epoch, history, base_mean, base_metrics
                )
                progress(f"epoch {epoch}: asking {ideator.name} for ideas")
                try:
                    proposed = await ideator.propose(ctx, config.ideas_per_epoch)
                except IdeaParseError as e:
                    archive.finish(search_id, "failed", str(e))
                    raise
                if not proposed:  # e.g. a replay file that has run out
                    stopped = f"{ideator.name} proposed no ideas for epoch {epoch}"
                    break
                archive.record_epoch(
                    search_id,
                    epoch,
                    [(p.text, _role(p.role), ideator.name, p.payload) for p in proposed],
                    env.name,
                    env.repo_hash,
                    req.scale,
                )
            if stopped := await _run_epoch(archive, search_id, epoch, runner, config):
                break
            archive.finish_epoch(search_id, epoch)
        if not stopped and config.ensemble_sizes():
            stopped = await _run_ensembles(archive, search_id, runner, config)
        table = await run_confirmation(archive, search_id, config, req, backend, progress)
    finally:
        backend.close()
    archive.finish(search_id, "stopped" if stopped else "done", stopped)
    if stopped:
        progress(f"stopped: {stopped}")
    return SearchResult(
        "stopped" if stopped else "done",
        stopped,
        spend(store),
        search_id,
        env.name,
        req.scale,
        None if not baseline else str(interval(baseline)),
        archive.ideas(search_id, controls=True),
        table,
        promotions(store, search_id, config.epochs),
    )


@dataclass
class _Runner:
    """What running one idea of a search needs, and the progress line after each."""

    archive: Archive
    req: RunRequest
    store: Store
    backend: Backend
    implementer: LLMClient | None
    progress: Progress
    seeds: list[int]  # screening seeds: the first of the baseline's
    combination_req: RunRequest  # for ensembles and the random-subset control
    rewards: list[float | None] = field(default_factory=list)

    async def run(
        self, idea: ArchivedIdea, label: str, share: float | None = None, promoted: bool = False
    ) -> None:
        """Screen `idea` on every screening seed (stopping at a failure); its status is the
        first failure's, else succeeded. `share`: the short runs of --screen, after which a
        succeeded idea stays `running` until its promotion is decided. `promoted`: its
        full-budget runs, of the commit its short runs validated."""
        self.archive.set_status(idea.idea_id, "running")
        req = replace(self.req, split="screen")
        if share is not None:
            req = short_request(req, share)
        earlier = self.store.idea_runs(idea.idea_id, "screen", share)  # a resumed idea's, if any
        if bad := next((r for r in earlier if r["status"] != "succeeded"), None):
            self.archive.set_status(idea.idea_id, bad["status"], "failed on an earlier seed")
            return
        done = {int(r["seed"]) for r in earlier}
        report: RunResult | None = None
        for seed in self.seeds:
            if seed in done:
                continue
            report = await self._run_seed(idea, replace(req, seed=seed), promoted)
            if not report.succeeded:
                break
        if report is None:  # every seed had run before the resume
            if share is None:
                self.archive.set_status(idea.idea_id, "succeeded")
            return
        if share is None or not report.succeeded:
            self.archive.set_status(idea.idea_id, report.status, report.reason)
        if share is None:
            self.rewards.append(report.reward)
        best = max((r for r in self.rewards if r is not None), default=None)
        spent = spend(self.store)
        sched = self.backend.scheduler
        busy = f"{len(sched.running)} running, {len(sched.waiting)} queued, " if sched else ""
        stage = "" if share is None else f" ({percent(share)})"
        self.progress(
            f"{label}{stage}: {busy}{len(self.rewards)} done, best "
            f"{'-' if best is None else f'{best:.4g}'}, ${spent['usd']:.2f}, "
            f"{spent['gpu_hours']:.2f} GPU-h | last: {idea.text[:40]}"
        )

    async def _run_seed(self, idea: ArchivedIdea, req: RunRequest, promoted: bool) -> RunResult:
        if is_null(idea.role, idea.payload):
            return await run_unchanged(idea.idea_id, req, self.store, self.backend)
        if is_combination(idea):
            req = replace(req, env=self.combination_req.env)
        if promoted or req.seed != self.seeds[0]:
            # Later seeds, and a promoted idea's full-budget runs, run the validated commit
            # as it is.
            again = await run_validated(idea.idea_id, req, self.store, self.backend)
            if again is not None:
                return again
        edits = idea.payload.get("edits")
        return await run_idea(
            idea.text,
            req,
            self.store,
            client=None if edits else self.implementer,
            patch_text=edits,
            idea_id=idea.idea_id,
            backend=self.backend,
        )


def ideation_context(
    config: SearchConfig,
    env: Environment,
    scale: str,
    epoch: int,
    history: list[ArchivedIdea],
    base_mean: float | None,
    base_metrics: dict[str, float],
) -> IdeationContext:
    """What the ideator sees: the ideas (`history` holds no control, and no ensemble: those
    come after the last ideation), ranked by the search's rank metric, with the focus's
    feedback metrics."""
    focus = env.focus
    return IdeationContext(
        env,
        scale,
        epoch,
        history,
        base_mean,
        config.seed,
        rank_metric(config, env),
        list(focus.feedback) if focus is not None else [],
        base_metrics,
    )


def _role(proposed: str) -> str:
    """An ideator's role for its idea; `control` and `ensemble` are the harness's alone (a
    plugin ideator cannot enter an idea as a control arm, or widen what it may edit)."""
    return "fresh" if proposed in (CONTROL_ROLE, ENSEMBLE_ROLE) else proposed


def _mark_if_duplicate(archive: Archive, index: DuplicateIndex, idea: ArchivedIdea) -> bool:
    if dup := index.check(idea.text):
        archive.set_status(
            idea.idea_id,
            "duplicate",
            f"repeats {dup.of} ({dup.signal} similarity {dup.similarity:.2f})",
            duplicate_of=dup.of,
        )
        return True
    index.add(idea.idea_id, idea.text)
    return False


async def _run_controls(
    archive: Archive, search_id: str, runner: _Runner, config: SearchConfig
) -> str | None:
    """Screen the control arms not screened yet, like ideas; returns why to stop, or None."""
    pending = [
        i
        for i in archive.ideas(search_id, controls=True)
        if i.role == "control" and i.status in ("proposed", "running")
    ]
    slots = asyncio.Semaphore(runner.backend.capacity)
    stop: list[str] = []

    async def one(idea: ArchivedIdea) -> None:
        async with slots:  # as many at once as the backend has slots, like an epoch's ideas
            if stop or (reason := over_budget(config, runner.store)):
                stop.append(stop[0] if stop else str(reason))
                return
            await runner.run(idea, "controls")

    await asyncio.gather(*(one(i) for i in pending))
    return stop[0] if stop else None


async def _run_ensembles(
    archive: Archive, search_id: str, runner: _Runner, config: SearchConfig
) -> str | None:
    """Combine the top ideas (and, with controls, a random subset) once, then screen them."""
    env = runner.req.env
    runner.progress(f"ensembles: sizes {config.ensembles}")
    baseline = BaselineRepo(runner.req.run_dir, env)
    record_round(archive, search_id, config, env, runner.req.scale, baseline, runner.progress)
    if stopped := await _run_epoch(archive, search_id, config.epochs, runner, config):
        return stopped
    archive.finish_epoch(search_id, config.epochs)
    return await _run_controls(archive, search_id, runner, config) if config.controls else None


async def _run_epoch(
    archive: Archive,
    search_id: str,
    epoch: int,
    runner: _Runner,
    config: SearchConfig,
) -> str | None:
    """Run every idea of `epoch` that has no final result yet, duplicates excepted (never an
    ensemble: its text repeats its members').

    Returns why the search must stop (a budget), or None."""
    index = DuplicateIndex(embed=local_embedder())
    pending: list[ArchivedIdea] = []
    for idea in archive.ideas(search_id):
        if idea.status == "duplicate":
            continue
        if idea.epoch == epoch and idea.status == "proposed":
            if idea.role == ENSEMBLE_ROLE or not _mark_if_duplicate(archive, index, idea):
                pending.append(idea)
        else:
            index.add(idea.idea_id, idea.text)

    slots = asyncio.Semaphore(runner.backend.capacity)
    stop: list[str] = []

    async def one(idea: ArchivedIdea, share: float | None = None, promoted: bool = False) -> None:
        async with slots:  # the budget is checked when a slot is free, not at queueing time
            if stop or (reason := over_budget(config, runner.store)):
                stop.append(stop[0] if stop else str(reason))
                return
            await runner.run(idea, f"epoch {epoch}", share, promoted)

    if not config.screen or epoch >= config.epochs:  # the ensembles' round has no short look
        await asyncio.gather(*(one(i) for i in pending))
        return stop[0] if stop else None
    await asyncio.gather(*(one(i, config.screen) for i in pending))
    if stop:
        return stop[0]
    promotion = _promote(archive, search_id, epoch, runner, config)
    state = {i.idea_id: i for i in archive.ideas(search_id, epoch)}
    full = []
    for d in promotion.decisions:
        now = state.get(d.idea_id)
        if now is None or now.status in TERMINAL:
            continue  # failed at the short budget, or already finished before a resume
        if d.promoted:
            full.append(now)
        else:
            archive.set_status(now.idea_id, SCREENED_OUT, d.reason)
    promoted = sum(d.promoted for d in promotion.decisions)
    runner.progress(
        f"epoch {epoch}: {promoted} of {len(promotion.decisions)} promoted to the full budget"
    )
    await asyncio.gather(*(one(i, promoted=True) for i in full))
    return stop[0] if stop else None


def _promote(
    archive: Archive, search_id: str, epoch: int, runner: _Runner, config: SearchConfig
) -> Promotion:
    """The epoch's promotion decisions (agent/search/fidelity.py), stored before any promoted
    run starts; ideas that were duplicates never ran and take no part."""
    search = archive.get(search_id)
    assert search is not None and search["baseline_candidate"]
    base = runner.store.candidate(search["baseline_candidate"])
    assert base is not None
    ideas = [
        i
        for i in archive.ideas(search_id, epoch)
        if i.status != "duplicate" and i.role != ENSEMBLE_ROLE
    ]
    env = runner.req.env
    return decide(
        runner.store,
        search_id,
        epoch,
        ideas,
        base["idea_id"],
        config,
        env,
        rank_metric(config, env),
    )


async def _none() -> None:
    return None


async def _measure_baseline(
    archive: Archive, search_id: str, runner: _Runner, config: SearchConfig
) -> None:
    """The search's own baseline on seeds 0..baseline_seeds-1 (same scale and --timeout as
    its ideas, so they compare), at the full budget and, with --screen, at the short one; a
    resume runs only the seeds that have no run yet."""
    search = archive.get(search_id)
    assert search is not None
    store, req = runner.store, runner.req
    cand = search["baseline_candidate"]
    if cand is None:
        cand = baseline_candidate(req, store)
        archive.set_baseline(search_id, cand)
    found = store.candidate(cand)
    assert found is not None
    jobs = []
    for share in [None, config.screen] if config.screen else [None]:
        base_req = replace(req, split="screen")
        if share is not None:
            base_req = short_request(base_req, share)
        ran = {int(r["seed"]) for r in store.idea_runs(found["idea_id"], "screen", share)}
        missing = [s for s in range(config.baseline_seeds) if s not in ran]
        if missing:
            what = "" if share is None else f" at {percent(share)}"
            runner.progress(f"baseline{what}: seeds {missing}")
            jobs.append(
                run_baseline(
                    base_req,
                    store,
                    missing,
                    runner.progress,
                    candidate_id=cand,
                    backend=runner.backend,
                )
            )
    await asyncio.gather(*jobs)


async def _run_async(
    archive: Archive,
    search_id: str,
    runner: _Runner,
    config: SearchConfig,
    ideator: Ideator,
    base: tuple[float | None, dict[str, float]],
) -> str | None:
    """No epoch barrier: whenever a slot frees, the next idea is generated from the archive as
    it stands then, and run. `epoch` labels every `ideas_per_epoch` ideas, for reports."""
    req, total = runner.req, config.epochs * config.ideas_per_epoch
    index = DuplicateIndex(embed=local_embedder())
    for idea in archive.ideas(search_id):
        if idea.status not in ("duplicate", "proposed") and idea.role != ENSEMBLE_ROLE:
            index.add(idea.idea_id, idea.text)
    lock = asyncio.Lock()  # one ideator call at a time, each seeing all earlier results
    stop: list[str] = []

    async def next_idea() -> ArchivedIdea | None:
        async with lock:
            while True:
                if stop or (reason := over_budget(config, runner.store)):
                    stop.append(stop[0] if stop else str(reason))
                    return None
                history = [i for i in archive.ideas(search_id) if i.role != ENSEMBLE_ROLE]
                waiting = [i for i in history if i.status == "proposed"]  # a resume's first
                if waiting:
                    idea = waiting[0]
                else:
                    if len(history) >= total:
                        return None
                    epoch = len(history) // config.ideas_per_epoch
                    ctx = ideation_context(config, req.env, req.scale, epoch, history, *base)
                    proposed = (await ideator.propose(ctx, 1))[:1]
                    if not proposed:
                        return None
                    p = proposed[0]
                    (idea_id,) = archive.record_ideas(
                        search_id,
                        epoch,
                        len(history),
                        [(p.text, _role(p.role), ideator.name, p.payload)],
                        req.env.name,
                        req.env.repo_hash,
                        req.scale,
                    )
                    # Just written: no need to read the whole archive back.
                    idea = ArchivedIdea(
                        idea_id, p.text, epoch, _role(p.role), "proposed", None, None, p.payload
                    )
                if not _mark_if_duplicate(archive, index, idea):
                    archive.set_status(idea.idea_id, "running")  # claimed by this worker
                    return idea

    async def worker() -> None:
        while (idea := await next_idea()) is not None:
            await runner.run(idea, f"async (epoch {idea.epoch})")

    await asyncio.gather(*(worker() for _ in range(runner.backend.capacity)))
    return stop[0] if stop else None
