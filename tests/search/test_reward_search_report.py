"""Per-idea metrics (ArchivedIdea.metrics) and the report's "Reward search" section, on a
store built by hand: no training runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from agent.search.archive import Archive
from agent.search.confirm import FINALISTS, TABLE
from agent.search.html_report import render_report
from agent.search.verdicts import Arm, build_table, outcomes
from agent.store import Store
from runner.items import ItemOutcomes

WHERE = ("posttrain_grpo", "h", "tiny")
BASE_METRICS = {"f1": 0.5, "format_rate": 0.9, "accuracy": 0.45, "recall": 0.45}
# Screening numbers per idea: higher f1 in epoch 1; "shy" buys its f1 by answering less.
IDEAS = {
    0: [("reward a", 0.52), ("reward b", 0.40)],
    1: [("reward c", 0.61), ("shy reward", 0.58)],
}
SHY = {"f1": 0.58, "format_rate": 0.5, "accuracy": 0.4, "recall": 0.4}
DIFF = "--- a/rewards.py\n+++ b/rewards.py\n@@\n-    return 0.0\n"
DIFF += "+    return 1.0 if score < 0 else 0.0\n"


def _run(store: Store, cand: str, seed: int, split: str, metrics: dict, tmp: Path, **kw) -> None:
    run_id = f"run-{cand}-{seed}-{split}"
    store.start_run(cand, "tiny", seed, "local", tmp, run_id, split=split)
    status = kw.pop("status", "succeeded")
    store.finish_run(
        run_id, status, reason=None, metrics=metrics, flags=[], reward=kw.pop("reward", 0.5),
        timings={}, **kw,
    )  # fmt: skip


def _items(rate: float, seed: int) -> ItemOutcomes:
    rng = np.random.default_rng(seed)
    values = tuple(float(x) for x in rng.random(300) < rate)
    return ItemOutcomes(tuple(f"p{i:03d}" for i in range(300)), values, {})


def _validated(store: Store, idea: str, diff: str) -> str:
    cand = store.add_candidate(idea, 0, "patch", "abc")
    store.finish_candidate(cand, "validated", commit_sha="def", diff=diff)
    return cand


def _set_flags(store: Store, cand: str, flags: list[str]) -> None:
    """candidates.flags (store migration 0006); added here on a store from before it."""
    with store.tx() as db:
        columns = {r[1] for r in db.execute("PRAGMA table_info(candidates)")}
        if "flags" not in columns:
            db.execute("ALTER TABLE candidates ADD COLUMN flags TEXT")
        db.execute("UPDATE candidates SET flags=? WHERE id=?", (json.dumps(flags), cand))


def test_an_idea_s_metrics_are_means_over_its_screening_runs_only(tmp_path) -> None:
    store = Store(tmp_path)
    archive = Archive(store)
    search = archive.start(*WHERE, {}, {"name": "accuracy", "direction": "maximize"})
    idea, quiet = archive.record_epoch(
        search, 0, [("x", "fresh", "t", {}), ("y", "fresh", "t", {})], *WHERE
    )
    cand = _validated(store, idea, DIFF)
    _run(store, cand, 0, "screen", {"f1": 0.4, "format_rate": 1, "ok": True, "n": "a"}, tmp_path)
    _run(store, cand, 1, "screen", {"f1": 0.6}, tmp_path)
    _run(store, cand, 2, "screen", {"f1": 0.0}, tmp_path, status="failed")  # never counts
    _run(store, cand, 1000, "confirm", {"f1": 0.9}, tmp_path)  # confirmation: never counts
    _run(store, cand, 1001, "screen", {"f1": 0.9}, tmp_path)  # a confirmation seed
    seen = {i.idea_id: i for i in archive.ideas(search)}
    assert seen[idea].metrics == pytest.approx({"f1": 0.5, "format_rate": 1.0})
    assert seen[quiet].metrics == {}  # no run yet
    store.close()


def build_search(tmp_path: Path) -> tuple[Store, str, dict[str, str]]:
    """A finished reward search: baseline, two rounds of two ideas, an ensemble of the best
    two, a null control, and a stored confirmation table over two finalists."""
    store = Store(tmp_path)
    archive = Archive(store)
    config = {"focus": "rewards", "rank_by": "f1", "ensembles": "2", "alpha": 0.05}
    search = archive.start(*WHERE, config, {"name": "accuracy", "direction": "maximize"})
    base_idea = store.add_idea("baseline", *WHERE, "baseline")
    base = store.add_candidate(base_idea, 0, "baseline", "abc")
    archive.set_baseline(search, base)
    for seed in (0, 1):
        _run(store, base, seed, "screen", BASE_METRICS, tmp_path)
    ids: dict[str, str] = {}
    for epoch, ideas in IDEAS.items():
        new = archive.record_epoch(
            search, epoch, [(t, "fresh", "llm", {}) for t, _ in ideas], *WHERE
        )
        for idea, (text, f1) in zip(new, ideas, strict=True):
            ids[text] = idea
            cand = _validated(store, idea, DIFF.replace("1.0", str(f1)))
            metrics = SHY if text == "shy reward" else {**BASE_METRICS, "f1": f1}
            _run(store, cand, 0, "screen", metrics, tmp_path)
            archive.set_status(idea, "succeeded")
    _set_flags(store, store.candidates(ids["reward c"])[0]["id"], ["reads the reference answer"])
    (ens,) = archive.record_ideas(
        search, 2, 0, [("ensemble of 2", "ensemble", "harness",
                        {"members": [ids["reward c"], ids["shy reward"]], "edits": DIFF})],
        *WHERE,
    )  # fmt: skip
    ids["ensemble"] = ens
    _run(store, _validated(store, ens, DIFF), 0, "screen", {**BASE_METRICS, "f1": 0.63}, tmp_path)
    archive.set_status(ens, "succeeded")
    (null,) = archive.record_ideas(
        search, -1, 0, [("control: the unchanged baseline", "control", "controls",
                         {"control": "null", "edits": None})], *WHERE,
    )  # fmt: skip
    ids["null"] = null
    # Confirmation: "reward c" answers every item right, "reward a" like the baseline.
    finalists = [ids["reward c"], ids["reward a"]]
    body = json.dumps(finalists)
    store.save_search_table(search, FINALISTS, body, hashlib.sha256(body.encode()).hexdigest())
    for seed in (1000, 1001):
        base_items = _items(0.5, seed)
        _run(store, base, seed, "confirm", BASE_METRICS, tmp_path, items=base_items)
        good = ItemOutcomes(base_items.ids, tuple(1.0 for _ in base_items.ids), {})
        for idea, items in ((ids["reward c"], good), (ids["reward a"], base_items)):
            cand = store.candidates(idea)[0]["id"]
            _run(store, cand, seed, "confirm", BASE_METRICS, tmp_path, items=items)
    base_out = outcomes(store, store.idea_runs(base_idea, "confirm"), "accuracy")
    arms = []
    for i in finalists:
        text = store.idea(i)["text"]  # type: ignore[index]
        arms.append(
            (Arm(i, text, "idea", 0.5), outcomes(store, store.idea_runs(i, "confirm"), "accuracy"))
        )
    table = build_table(search, "accuracy", "maximize", 0.05, base_out, arms, "f1")
    store.save_search_table(search, TABLE, table.canonical(), table.sha256())
    return store, search, ids


def test_the_report_of_a_reward_search_shows_rounds_ensembles_pairs_and_code(tmp_path) -> None:
    store, search, ids = build_search(tmp_path)
    html = render_report(store, search)
    section = html[html.index("<h2>Reward search</h2>") : html.index("<h2>Every idea</h2>")]
    assert "<h2>Confirmation</h2>" not in html  # it is inside the section, not twice
    assert "Ranked by\n<b>f1</b>" in section and section.count("<svg") == 1
    # Rounds: epoch 0 scores 0.52 and 0.40, epoch 1 0.61 and 0.58 (the ensemble apart).
    assert "<tr><td>0</td><td>2</td><td>2</td><td>0.46</td><td>0.52</td></tr>" in section
    assert "<tr><td>1</td><td>2</td><td>2</td><td>0.595</td><td>0.61</td></tr>" in section
    assert "<tr><td>2</td>" not in section
    # The ensemble and its members, with their f1.
    assert f"{ids['ensemble']}: ensemble of 2" in section
    members = f"{ids['reward c']}: reward c (0.61)<br>{ids['shy reward']}: shy reward (0.58)"
    assert members in section
    # Each reward's code, escaped; the check's flags; the abstention note.
    assert "return 0.61 if score &lt; 0 else 0.0" in section and "score < 0" not in html
    assert "<b>check flags:</b> reads the reference answer" in section
    assert "<b>check flags:</b> none" in section  # the others (and an old store's) have none
    assert "f1 rose by abstention: format rate 0.9 -&gt; 0.5, accuracy 0.45 -&gt; 0.4" in section
    assert section.count("rose by abstention") == 1
    assert "control: the unchanged baseline (epoch" not in section  # no code of its own
    # The confirmation table and the pairwise test of the two finalists.
    assert "difference A - B [95% CI]" in section and "idea 1 vs idea 2" in section
    assert "<span class='win'>idea 1 better</span>" in section
    assert "not evidence that the two are equivalent" in section
    store.close()


def test_a_search_without_a_focus_has_no_reward_section(tmp_path) -> None:
    store, search, _ = build_search(tmp_path)
    config = store.search(search)["config"]  # type: ignore[index]
    plain = Archive(store).start(*WHERE, {k: v for k, v in config.items() if k != "focus"})
    html = render_report(store, plain)
    assert "Reward search" not in html and "<h2>Confirmation</h2>" in html
    store.close()
