"""A search killed with SIGKILL mid-epoch resumes to exactly what an uninterrupted one does."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    assert_store_consistent,
    clean_environ,
    confirmation_rows,
    executor_argv,
    rows_while_running,
    sigkill_when,
    slowed_toy,
    store_rows,
)

# A search killed mid-way and resumed, through the CLI.
pytestmark = pytest.mark.slow


SEARCH = {"epochs": 2, "ideas_per_epoch": 3, "baseline_seeds": 2, "rerun_top": 1}


def search_cmd(env: Path, runs: Path, *extra: str) -> list[str]:
    return executor_argv("search", env, runs, *extra, **SEARCH, rerun_seeds=2, slots=2)


def idea_states(runs: Path) -> list[tuple[int, str]]:
    return rows_while_running(runs, "SELECT epoch, status FROM search_ideas")


def outcome(runs: Path) -> list[tuple[int, str, str, float | None]]:
    db = sqlite3.connect(runs / "executor.db")
    rows = db.execute(
        "SELECT s.epoch, i.text, s.status, (SELECT r.reward FROM runs r JOIN candidates c ON "
        "r.candidate_id = c.id WHERE c.idea_id = s.idea_id AND r.status != 'cancelled' AND "
        "r.seed < 1000) FROM search_ideas s JOIN ideas i ON i.id = s.idea_id "
        "ORDER BY s.epoch, s.position"
    ).fetchall()
    db.close()
    return rows


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_search(toy_env, tmp_path) -> None:
    env = slowed_toy(toy_env, 0.8)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    ref = subprocess.run(
        search_cmd(env, whole), capture_output=True, text=True, timeout=300, env=clean_environ()
    )
    assert ref.returncode == 0, ref.stderr

    def mid_epoch() -> bool:  # of epoch 0: some ideas done, some running
        states = {s for _, s in idea_states(killed)}
        return {"running", "succeeded"} <= states

    sigkill_when(
        search_cmd(env, killed),
        mid_epoch,
        within=120,
        every=0.05,
        late=lambda: f"never reached mid-epoch: {idea_states(killed)}",
    )
    interrupted = [r for r in store_rows(killed, "runs") if r["status"] == "running"]
    assert interrupted, "the kill should leave runs in flight"

    res = subprocess.run(
        search_cmd(env, killed, "--resume"),
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_environ(),
    )
    assert res.returncode == 0, res.stderr
    # The same ideas, statuses and rewards as the uninterrupted search.
    assert outcome(killed) == outcome(whole)
    # Every idea has exactly one final run in the search (re-runs use held-out seeds).
    runs = store_rows(killed, "runs")
    cands = {c["id"]: c["idea_id"] for c in store_rows(killed, "candidates")}
    for _epoch, _text, status, _reward in outcome(killed):
        assert status == "succeeded"
    final: dict[str, int] = {}
    for r in runs:
        if r["status"] != "cancelled" and r["seed"] < 1000 and cands[r["candidate_id"]]:
            idea = cands[r["candidate_id"]]
            final[idea] = final.get(idea, 0) + 1
    search_ideas = {row["idea_id"] for row in store_rows(killed, "search_ideas")}
    assert all(final[i] == 1 for i in search_ideas), final
    assert {r["status"] for r in runs if r["id"] in {x["id"] for x in interrupted}} == {"cancelled"}
    assert_store_consistent(killed)


def test_sigkill_during_confirmation_then_resume_gives_the_same_table(cli, toy_env, tmp_path):
    env = slowed_toy(toy_env, 0.8)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    ref = subprocess.run(
        search_cmd(env, whole, "--controls"),
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_environ(),
    )
    assert ref.returncode == 0, ref.stderr

    def confirming() -> bool:  # confirmation runs in flight (the baseline's or an arm's)
        rows = rows_while_running(killed, "SELECT status FROM runs WHERE seed >= 1000")
        return any(s == "running" for (s,) in rows)

    sigkill_when(
        search_cmd(env, killed, "--controls"),
        confirming,
        within=180,
        every=0.05,
        late=lambda: "never reached confirmation",
    )
    res = subprocess.run(
        search_cmd(env, killed, "--controls", "--resume"),
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_environ(),
    )
    assert res.returncode == 0, res.stderr
    assert confirmation_rows(killed) == confirmation_rows(whole)
    # No confirmation seed ran twice to completion for any arm or the baseline.
    idea_of = {c["id"]: c["idea_id"] for c in store_rows(killed, "candidates")}
    runs = [r for r in store_rows(killed, "runs") if r["seed"] >= 1000]
    done = [(idea_of[r["candidate_id"]], r["seed"]) for r in runs if r["status"] == "succeeded"]
    assert len(done) == len(set(done)) == 3 * 2  # baseline, finalist, null control; 2 seeds
    assert_store_consistent(killed)
    assert cli("stats", killed, "--verify").rc == 0
