"""The store: WAL, committed transactions, numbered migrations, and stores written by the
previous version (tests/fixtures/store_v1.db, made by tests/fixtures/make_store_v1.py from
the code at commit 113a96b) read back through the store's methods."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from agent.ideator_rl.records import CachedResult, Records, SampleRecord
from agent.search.archive import Archive
from agent.store import DB_NAME, SCHEMA_VERSION, Store, StoreError
from agent.store.base import migrations
from tests.conftest import assert_one_line_error

FIXTURE = Path(__file__).parent / "fixtures" / "store_v1.db"
SEARCH, TRAINING = "search-00000003", "train-0000000c"


def version_1_store(run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURE, run_dir / DB_NAME)
    return run_dir


def set_version(run_dir: Path, version: int) -> None:
    db = sqlite3.connect(run_dir / DB_NAME)
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))
    db.commit()
    db.close()


def dump(run_dir: Path) -> list[str]:
    db = sqlite3.connect(run_dir / DB_NAME)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def test_migrations_are_numbered_in_order(tmp_path) -> None:
    assert [v for v, _ in migrations()] == list(range(1, SCHEMA_VERSION + 1))
    # A new store reaches the last migration: the items and the search tables exist.
    store = Store(tmp_path)
    tables = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert store.schema_version() == SCHEMA_VERSION and {"run_items", "search_tables"} <= tables
    store.close()


def test_store_schema_and_wal(tmp_path) -> None:
    store = Store(tmp_path)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.schema_version() == SCHEMA_VERSION
    idea = store.add_idea("idea", "toy", "h", "tiny", "cli")
    cand = store.add_candidate(idea, 0, "patch", "abc")
    with pytest.raises(ValueError, match="terminal"):
        store.finish_candidate(cand, "implementing")
    store.close()
    # A second process sees every committed change.
    again = Store(tmp_path)
    assert again.candidate(cand)["status"] == "implementing"
    assert again.resolve(cand[:8])[0] == "candidate"
    again.close()


def test_rolled_back_transaction_leaves_nothing(tmp_path) -> None:
    store = Store(tmp_path)
    # Writes inside an outer transaction join it: the crash undoes all of them.
    with pytest.raises(RuntimeError), store.tx():
        idea = store.add_idea("idea", "toy", "h", "tiny", "cli")
        store.add_candidate(idea, 0, "patch", "abc")
        raise RuntimeError("crash mid-write")
    assert store.count("ideas") == 0 and store.count("candidates") == 0
    store.close()


def test_a_newer_store_is_refused_in_one_line(tmp_path, cli) -> None:
    Store(tmp_path).close()
    set_version(tmp_path, SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="newer than this executor") as e:
        Store(tmp_path)
    assert "\n" not in str(e.value) and "upgrade executor" in str(e.value)
    assert_one_line_error(cli("show", "--run-dir", tmp_path), "newer", "upgrade")


def test_opening_twice_changes_nothing(tmp_path) -> None:
    run_dir = version_1_store(tmp_path / "runs")
    Store(run_dir).close()
    migrated = dump(run_dir)
    store = Store(run_dir)
    assert store.schema_version() == SCHEMA_VERSION
    store.close()
    assert dump(run_dir) == migrated


def test_a_version_1_store_reads_back_through_the_store(tmp_path) -> None:
    store = Store(version_1_store(tmp_path / "runs"))
    assert store.schema_version() == SCHEMA_VERSION
    names = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"search_ideas_by_search", "ideas_by_source"} <= names  # migration 4 ran

    # What `executor run` wrote.
    idea = store.idea("idea-00000001")
    assert idea is not None and idea["text"] == "use a larger learning rate"
    [cand] = store.candidates("idea-00000001")
    assert cand["status"] == "validated" and cand["diff"] == "--- a\n+++ b\n"
    assert [a["phase"] for a in store.attempts(cand["id"])] == ["apply", None]
    [run] = store.runs(cand["id"])
    assert run["metrics"] == {"loss": 0.5} and run["flags"] == [] and run["reward"] == 0.75
    assert store.llm_calls(cand["id"])[0]["cost_usd"] == 0.0125
    assert store.spend() == {"usd": 0.0125, "gpu_hours": pytest.approx(2.4)}
    assert store.baseline_rewards("envhash", "tiny") == [0.5, 0.6]
    assert store.resolve("run-cli") == ("run", store.run("run-cli"))

    # The search.
    archive = Archive(store)
    search = archive.latest()
    assert search is not None and search["id"] == SEARCH and search["config"]["epochs"] == 2
    assert archive.baseline_rewards(SEARCH) == [0.5, 0.6]
    assert archive.epochs_generated(SEARCH) == [0, 1]
    ideas = archive.ideas(SEARCH)
    assert [(i.text, i.epoch, i.status, i.reward) for i in ideas] == [
        ("lr 0.01", 0, "succeeded", 0.8),
        ("lr 0.1", 0, "succeeded", 0.4),
        ("lr 0.05", 1, "running", None),
    ]
    assert ideas[0].payload == {"lr": 0.01}
    # The old re-run on seed 1000 reads as confirmation, its seed-0 run as screening.
    (rerun,) = store.idea_runs(ideas[0].idea_id, "confirm")
    assert rerun["seed"] == 1000 and rerun["reward"] == pytest.approx(0.9)
    assert [r["seed"] for r in store.idea_runs(ideas[0].idea_id, "screen")] == [0]
    assert store.validated_diff(ideas[1].idea_id) == "diff 1"
    first = store.first_candidate(ideas[0].idea_id)
    assert first is not None and store.first_uncancelled_run(first["id"])["seed"] == 0

    # The killed search resumes: its open run is cancelled and its idea proposed again.
    assert archive.close_interrupted_runs(SEARCH) == 1
    assert store.run("run-killed")["status"] == "cancelled"
    assert store.candidates(ideas[2].idea_id)[0]["status"] == "abandoned"
    assert archive.ideas(SEARCH, epoch=1)[0].status == "proposed"
    [new] = archive.record_epoch(SEARCH, 2, [("lr 0.2", "fresh", "hparam", {})], "toy", "e", "s")
    assert store.idea(new)["source"] == "search" and archive.epochs_generated(SEARCH)[-1] == 2

    # The ideator training.
    records = Records(store)
    training = records.latest()
    assert training is not None and training["id"] == TRAINING
    assert training["status"] == "done" and training["config"]["steps"] == 2
    assert records.steps(TRAINING) == [{"step": 1, "distinct_ideas": 1.0, "executed": 1.0}]
    samples = records.samples(TRAINING, 1)
    assert [s["status"] for s in samples] == ["succeeded", "no_idea"]
    assert samples[0]["parts"] == {"transformed": 1.0, "novelty": 0.2}
    assert records.recent_ideas(TRAINING, 2, 1) == ["lr 0.02"]
    cached = records.cached("lr 0.02", "envhash", "tiny")
    assert cached == CachedResult(samples[0]["idea_id"], "succeeded", None, 0.7)
    assert "lr 0.02" not in records.archive_ideas("envhash", "tiny", TRAINING)
    assert "lr 0.01" in records.archive_ideas("envhash", "tiny", TRAINING)
    assert records.close_interrupted(TRAINING) == 0
    store.close()


def test_a_version_1_store_without_search_tables_gets_them(tmp_path) -> None:
    # `executor run` alone never created the search and training tables.
    run_dir = version_1_store(tmp_path / "runs")
    db = sqlite3.connect(run_dir / DB_NAME)
    for table in ("search_ideas", "search_epochs", "searches", "rl_samples", "rl_steps"):
        db.execute(f"DROP TABLE {table}")
    db.execute("DROP TABLE rl_cache")
    db.execute("DROP TABLE rl_trainings")
    db.commit()
    db.close()
    store = Store(run_dir)
    assert store.schema_version() == SCHEMA_VERSION
    assert Archive(store).latest() is None and Records(store).latest() is None
    training = Records(store).start("toy", "envhash", "tiny", {})
    sample = SampleRecord(0, 0, "c", 0, 1, "", None, "no_idea", None, False, 0.0, 0.0, {})
    Records(store).record_step(training, 1, [sample], {"executed": 0.0})
    assert Records(store).samples(training)[0]["status"] == "no_idea"
    assert store.idea("idea-00000001") is not None
    store.close()


def test_a_failed_migration_leaves_the_store_as_it_was(tmp_path, monkeypatch) -> None:
    from agent.store import base

    run_dir = version_1_store(tmp_path / "runs")
    before = dump(run_dir)
    broken = (SCHEMA_VERSION + 1, "CREATE TABLE extra (x);\nINSERT INTO missing VALUES (1);\n")
    monkeypatch.setattr(base, "MIGRATIONS", [*base.MIGRATIONS, broken])
    monkeypatch.setattr(base, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match=f"migration {SCHEMA_VERSION + 1} failed.*version 1$"):
        Store(run_dir)
    assert dump(run_dir) == before  # not even the migrations before the broken one


def test_a_file_that_is_not_a_store_is_refused(tmp_path) -> None:
    (tmp_path / DB_NAME).write_text("not sqlite " * 100)
    with pytest.raises(StoreError, match="not a readable executor store"):
        Store(tmp_path)


def test_search_feedback_reads_screening_runs_only(tmp_path) -> None:
    """What the ideator sees (idea rewards, the baseline) never includes a confirmation run,
    whatever its seed."""
    store = Store(tmp_path)
    archive = Archive(store)
    search = archive.start("toy", "h", "tiny", {}, {"name": "val_mse", "direction": "minimize"})
    (idea,) = archive.record_epoch(search, 0, [("lr", "fresh", "x", {})], "toy", "h", "tiny")
    cand = store.add_candidate(idea, 0, "patch", "abc")
    base_idea = store.add_idea("baseline", "toy", "h", "tiny", "baseline")
    base = store.add_candidate(base_idea, 0, "baseline", "abc")
    archive.set_baseline(search, base)
    runs = [(cand, 0, "screen", 0.5), (cand, 1, "screen", 0.7), (cand, 1000, "confirm", 0.99)]
    runs += [(cand, 2, "confirm", 0.98), (base, 0, "screen", 0.4), (base, 1000, "confirm", 0.97)]
    for n, (who, seed, split, reward) in enumerate(runs):
        store.start_run(who, "tiny", seed, "local", tmp_path, f"run-{n}", split=split)
        store.finish_run(
            f"run-{n}", "succeeded", reason=None, metrics={}, flags=[], reward=reward, timings={}
        )
    (seen,) = archive.ideas(search)
    assert seen.reward == pytest.approx(0.6)  # the mean of its screening runs
    assert archive.baseline_rewards(search) == [0.4]
    assert [r["seed"] for r in store.idea_runs(idea, "confirm")] == [1000, 2]
    store.close()
