"""A search's confirmation: finalists chosen by screening, re-run with the baseline and the
controls on fresh seeds and on the evaluator's confirm split, then judged (verdicts.py).

Screening (seeds 0.., the screen split) chose the finalists, so judging them on the same runs
would reward luck (the winner's curse). Confirmation re-runs every arm and the baseline on
the same new seeds (CONFIRM_SEED, CONFIRM_SEED + 1, ...) and scores them on items screening
never saw. What was chosen is stored before anything runs, and every run is in the store, so
a killed confirmation resumes where it stopped and the table can be recomputed from the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, Literal

from agent.executor import Progress, RunRequest, run_baseline, run_unchanged, run_validated
from agent.results import RunResult
from agent.search.archive import CONFIRM_SEED, Archive, ArchivedIdea
from agent.search.config import SearchConfig
from agent.search.controls import ROLE, is_null
from agent.search.ranking import rank_metric, ranked
from agent.search.verdicts import Arm, ConfirmationTable, Direction, build_table, outcomes
from agent.store import Store, StoreError
from environments import Environment
from runner.backends import Backend

FINALISTS = "finalists"
TABLE = "confirmation"


def confirmation_seeds(config: SearchConfig) -> list[int]:
    return [CONFIRM_SEED + k for k in range(config.rerun_seeds)]


def choose_finalists(
    archive: Archive, search_id: str, config: SearchConfig, env: Environment | None = None
) -> list[str]:
    """The top `rerun_top` ideas (ensembles included) by mean screening reward, or by the rank
    metric (agent/search/ranking.py) given the environment; fixed in the store the first time
    (a resume confirms the same ones, whatever ran since)."""
    store = archive.store
    stored = store.search_table(search_id, FINALISTS)
    if stored is not None:
        return list(json.loads(stored["body"]))
    metric = rank_metric(config, env) if env is not None else config.rank_by or None
    # ranked() is stable: among equal values the earlier idea goes first.
    top = ranked(archive.ideas(search_id), metric, env)[: config.rerun_top]
    ids = [i.idea_id for i in top]
    body = json.dumps(ids)
    store.save_search_table(search_id, FINALISTS, body, _sha(body))
    return ids


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _arms(archive: Archive, search_id: str) -> list[ArchivedIdea]:
    """Finalists (in their stored order), then the controls."""
    stored = archive.store.search_table(search_id, FINALISTS)
    chosen = list(json.loads(stored["body"])) if stored else []
    everything = {i.idea_id: i for i in archive.ideas(search_id, controls=True)}
    controls = [i for i in everything.values() if i.role == ROLE]
    return [everything[i] for i in chosen if i in everything] + controls


async def run_confirmation(
    archive: Archive,
    search_id: str,
    config: SearchConfig,
    req: RunRequest,
    backend: Backend,
    progress: Progress,
) -> ConfirmationTable | None:
    """Run what confirmation still lacks, then compute, store and return the table (None when
    there is nothing to confirm)."""
    store = archive.store
    choose_finalists(archive, search_id, config, req.env)
    arms = _arms(archive, search_id)
    if not arms:
        return None
    seeds = confirmation_seeds(config)
    confirm = replace(req, split="confirm")
    search = archive.get(search_id)
    assert search is not None
    base_cand = search["baseline_candidate"]
    base = store.candidate(base_cand)
    assert base is not None
    ran = {int(r["seed"]) for r in store.idea_runs(base["idea_id"], "confirm")}
    jobs: list[Coroutine[Any, Any, object]] = []
    if missing := [s for s in seeds if s not in ran]:
        # Beside the arms, not before them: the backend's slots take whichever is next.
        progress(f"confirmation: baseline on seeds {missing}")
        jobs.append(
            run_baseline(confirm, store, missing, progress, candidate_id=base_cand, backend=backend)
        )

    slots = asyncio.Semaphore(backend.capacity)

    async def one(idea: ArchivedIdea, seed: int) -> None:
        async with slots:
            progress(f"confirmation: seed {seed}: {idea.text[:50]}")
            await _run_arm(idea, replace(confirm, seed=seed), store, backend)

    for idea in arms:
        done = {int(r["seed"]) for r in store.idea_runs(idea.idea_id, "confirm")}
        jobs += [one(idea, s) for s in seeds if s not in done]
    await asyncio.gather(*jobs)
    table = load_table(store, search_id)
    store.save_search_table(search_id, TABLE, table.canonical(), table.sha256())
    return table


async def _run_arm(
    idea: ArchivedIdea, req: RunRequest, store: Store, backend: Backend
) -> RunResult | None:
    """One confirmation run of an arm: its validated commit replayed as a patch (the null
    control: the unchanged baseline)."""
    if is_null(idea.role, idea.payload):
        return await run_unchanged(idea.idea_id, req, store, backend)
    # Its validated commit, as screening ran it (None: it never validated, nothing to confirm,
    # and the table says so).
    return await run_validated(idea.idea_id, req, store, backend)


def load_table(store: Store, search_id: str) -> ConfirmationTable:
    """The confirmation table recomputed from the store alone: the same bytes every time."""
    search = store.search(search_id)
    if search is None:
        raise StoreError(f"no search {search_id} in this store")
    if not search["metric"] or not search["baseline_candidate"]:
        raise StoreError(
            f"search {search_id} has no confirmation data (it predates confirmation tables, or "
            "stopped before measuring its baseline)"
        )
    config = SearchConfig(**search["config"])
    metric, direction = search["metric"]["name"], search["metric"]["direction"]
    base_cand = store.candidate(search["baseline_candidate"])
    assert base_cand is not None
    base = outcomes(store, store.idea_runs(base_cand["idea_id"], "confirm"), metric)
    archive = Archive(store)
    arms = []
    for idea in _arms(archive, search_id):
        kind: Literal["idea", "control"] = "control" if idea.role == ROLE else "idea"
        null = is_null(idea.role, idea.payload)
        arm = Arm(idea.idea_id, idea.text, kind, idea.reward, null)
        arms.append((arm, outcomes(store, store.idea_runs(idea.idea_id, "confirm"), metric)))
    d: Direction = "minimize" if direction == "minimize" else "maximize"
    # The metric the search ranked by (a focus's rank_by), watched for a rise by abstention.
    rank_by = search["config"].get("rank_by") or None
    return build_table(search_id, metric, d, config.alpha, base, arms, rank_by)
