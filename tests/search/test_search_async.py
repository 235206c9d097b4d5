"""Async mode: no epoch barrier; each idea is generated when a slot frees, from the archive
as it stands."""

from __future__ import annotations

import asyncio

import pytest

from agent.executor import RunRequest
from agent.search.archive import Archive
from agent.search.config import SearchConfig
from agent.search.ideators import HparamIdeator
from agent.search.loop import run_search
from agent.store import Store
from environments import load_environment

# A real search over the toy environment, runs in the local sandbox.
pytestmark = pytest.mark.slow


def test_async_search_generates_as_slots_free(toy_env, tmp_path) -> None:
    env = load_environment(toy_env)
    run_dir = tmp_path / "runs"
    store = Store(run_dir)
    config = SearchConfig(epochs=2, ideas_per_epoch=3, baseline_seeds=2, rerun_top=0, mode="async")
    try:
        result = asyncio.run(
            run_search(
                config, RunRequest(env, "tiny", run_dir=run_dir, slots=2), store, HparamIdeator()
            )
        )
        ideas = Archive(store).ideas(result.search_id)
        created = {
            r[0]: r[1] for r in store.db.execute("SELECT id, created_at FROM ideas").fetchall()
        }
        ended = sorted(
            r[0]
            for r in store.db.execute(
                "SELECT r.ended_at FROM runs r JOIN candidates c ON r.candidate_id = c.id "
                "JOIN search_ideas s ON s.idea_id = c.idea_id"
            ).fetchall()
        )
    finally:
        store.close()
    assert result.status == "done" and len(ideas) == 6
    assert [i.epoch for i in ideas] == [0, 0, 0, 1, 1, 1]
    assert all(i.status == "succeeded" for i in ideas)
    # Two slots: the first two ideas start at once; every later one was generated only after
    # a run had finished, so it saw that result.
    later = sorted(created[i.idea_id] for i in ideas)[2:]
    assert all(t >= ended[0] for t in later)
