"""`executor search --focus NAME --ensembles K --controls` on the toy environment's focus:
edits outside the focus and candidates its check rejects never run, flags are kept, the top-k
ideas are combined into an ensemble candidate, a random subset runs as a control, and a
search killed during the ensemble round resumes to the same table."""

from __future__ import annotations

import json
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
from tests.search.focus_toy import add_focus, replay_file, scale_edit

pytestmark = pytest.mark.slow

TRAIN_EDIT = "train.py\n<<<<<<< SEARCH\nSTEPS = 100\n=======\nSTEPS = 400\n>>>>>>> REPLACE\n"
IDEAS = [
    ("Multiply the learning rate by 4", scale_edit("4.0")),
    ("Double it, marked for rejection", scale_edit("2.0", "REJECT_ME")),
    ("Multiply it by 8, marked for a flag", scale_edit("8.0", "FLAG_ME")),
    ("Double the learning rate", scale_edit("2.0")),
    ("Train four times longer (outside the focus)", TRAIN_EDIT),
    ("Halve the learning rate", scale_edit("0.5")),
]
SEARCH = {
    "epochs": 2,
    "ideas_per_epoch": 3,
    "baseline_seeds": 1,
    "rerun_top": 2,
    "rerun_seeds": 2,
    "focus": "schedule",
    "ensembles": "2",
}


def search_cmd(env: Path, runs: Path, replay: Path, *extra: str) -> list[str]:
    return executor_argv(
        "search", env, runs, "--controls", *extra, ideator=f"replay:{replay}", **SEARCH, slots=2
    )


def ideas(runs: Path) -> dict[str, dict[str, object]]:
    db = sqlite3.connect(runs / "executor.db")
    db.row_factory = sqlite3.Row
    rows = db.execute(
        "SELECT i.text, s.idea_id, s.epoch, s.role, s.status, s.reason, s.payload "
        "FROM search_ideas s JOIN ideas i ON i.id = s.idea_id ORDER BY s.epoch, s.position"
    ).fetchall()
    db.close()
    return {r["text"]: dict(r) for r in rows}


def test_a_focused_search_with_ensembles_and_controls(cli, toy_env, tmp_path) -> None:
    env = add_focus(toy_env)
    runs = tmp_path / "runs"
    replay = replay_file(tmp_path / "ideas.jsonl", IDEAS)
    res = subprocess.run(
        search_cmd(env, runs, replay), capture_output=True, text=True, timeout=600,
        env=clean_environ(),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    found = ideas(runs)
    runs_of = {}
    cands = {c["id"]: c for c in store_rows(runs, "candidates")}
    for r in store_rows(runs, "runs"):
        runs_of.setdefault(cands[r["candidate_id"]]["idea_id"], []).append(r)

    # Outside the focus, or rejected by its check: never run, with the reason.
    outside = found["Train four times longer (outside the focus)"]
    assert outside["status"] == "rejected" and outside["idea_id"] not in runs_of
    rejected = found["Double it, marked for rejection"]
    assert rejected["status"] == "rejected" and "REJECT_ME" in str(rejected["reason"])
    assert rejected["idea_id"] not in runs_of
    attempts = [
        a for a in store_rows(runs, "attempts")
        if cands[a["candidate_id"]]["idea_id"] == rejected["idea_id"]
    ]  # fmt: skip
    assert [a["phase"] for a in attempts] == ["check"]
    # Flagged, yet run; the flag is kept with its candidate.
    flagged = found["Multiply it by 8, marked for a flag"]
    assert flagged["status"] == "succeeded"
    flags = [
        json.loads(c["flags"]) for c in cands.values()
        if c["idea_id"] == flagged["idea_id"] and c["flags"]
    ]  # fmt: skip
    assert flags and flags[0] == ["schedule.py says FLAG_ME"]
    shown = cli("show", flagged["idea_id"], "--run-dir", runs)
    assert "check flag: schedule.py says FLAG_ME" in shown.stdout

    # The ensemble of the top 2 by val_mse: x4 and x8 (the toy underfits at x2 and below).
    (ensemble,) = [i for i in found.values() if i["role"] == "ensemble"]
    payload = json.loads(str(ensemble["payload"]))
    top2 = {flagged["idea_id"], found["Multiply the learning rate by 4"]["idea_id"]}
    assert set(payload["members"]) == top2
    assert ensemble["epoch"] == 2 and ensemble["status"] == "succeeded"
    assert "+++ b/schedule_member_1.py" in payload["edits"]
    assert "+++ b/schedule_member_2.py" in payload["edits"]
    # The random subset control: 2 of the scored ideas, run like any arm.
    (subset,) = [i for i in found.values() if "random_subset" in str(i["payload"])]
    assert subset["role"] == "control" and subset["status"] == "succeeded"
    assert len(json.loads(str(subset["payload"]))["members"]) == 2

    table = json.loads(cli("stats", runs, "--json").stdout)
    arms = {r["text"]: r for r in table["rows"]}
    assert ensemble["text"] in arms and subset["text"] in arms
    assert all(len(r["seeds"]) == 2 for r in table["rows"] if r["kind"] == "control")
    assert cli("stats", runs, "--verify").rc == 0
    assert_store_consistent(runs)


def test_sigkill_during_the_ensemble_round_then_resume_gives_the_same_table(
    toy_env, tmp_path
) -> None:
    env = slowed_toy(add_focus(toy_env), 0.5)
    replay = replay_file(tmp_path / "ideas.jsonl", IDEAS)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    ref = subprocess.run(
        search_cmd(env, whole, replay), capture_output=True, text=True, timeout=600,
        env=clean_environ(),
    )  # fmt: skip
    assert ref.returncode == 0, ref.stderr

    def ensembling() -> bool:
        rows = rows_while_running(killed, "SELECT status FROM search_ideas WHERE role='ensemble'")
        return any(s == "running" for (s,) in rows)

    sigkill_when(
        search_cmd(env, killed, replay),
        ensembling,
        within=300,
        every=0.05,
        late=lambda: "never reached the ensemble round",
    )
    res = subprocess.run(
        search_cmd(env, killed, replay, "--resume"), capture_output=True, text=True,
        timeout=600, env=clean_environ(),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    # ids differ between searches, and an ensemble's text carries its members'
    strip = ("idea_id", "text")
    assert confirmation_rows(killed, strip) == confirmation_rows(whole, strip)
    assert [i["role"] for i in ideas(killed).values()].count("ensemble") == 1
    assert_store_consistent(killed)


X3 = "Triple the learning rate multiplier"
X6 = "Multiply the learning rate by six"
X5 = "Multiply the learning rate by five"
X7 = "Multiply the learning rate by seven"
LLM_EDITS = {X3: "3.0", X6: "6.0", X5: "5.0", X7: "7.0"}


def test_an_llm_focused_search_shows_the_focus_and_ranked_rounds(
    llm_server, toy_env, tmp_path, monkeypatch
) -> None:
    import asyncio

    from agent.executor import RunRequest
    from agent.llm import make_client
    from agent.search.config import SearchConfig
    from agent.search.ideators import LLMIdeator
    from agent.search.loop import run_search
    from agent.store import Store
    from environments import load_environment

    def answer(request: dict[str, object]) -> str:
        text = json.dumps(request)
        if "research scientist proposing" in text:  # ideation
            pair = (X5, X7) if "Earlier rounds" in text else (X3, X6)
            return "\n".join(f"<idea>{i}</idea>" for i in pair)
        for idea, value in LLM_EDITS.items():
            if idea in text:
                return "Here it is.\n\n" + scale_edit(value)
        return "I cannot."

    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
    llm_server.default = answer
    client = make_client("openai:gpt-4.1", base_url=llm_server.openai_base_url)
    ideator = LLMIdeator(client)
    env = load_environment(add_focus(toy_env))
    run_dir = tmp_path / "runs"
    store = Store(run_dir)
    config = SearchConfig(
        epochs=2, ideas_per_epoch=2, baseline_seeds=1, rerun_top=0, focus="schedule",
        ideator="openai:gpt-4.1",
    )  # fmt: skip
    try:
        asyncio.run(
            run_search(
                config, RunRequest(env, "tiny", run_dir=run_dir), store, ideator, implementer=client
            )
        )
    finally:
        store.close()
    fresh, later = ideator.prompts[0], ideator.prompts[-1]
    assert "# Focus: schedule" in fresh and "lr_scale" in fresh
    assert "Earlier rounds, ranked by val_mse" in later and "## Round 1" in later
    assert X3 in later.split("Earlier rounds")[1] and "val_mse " in later
    # The implementer was shown the focus's file alone as editable.
    implement = [json.dumps(r.json) for r in llm_server.requests if X3 in json.dumps(r.json)]
    implement = [t for t in implement if "research scientist proposing" not in t]
    assert implement and "### schedule.py" in implement[0]
    assert "### train.py" not in implement[0]
