"""Bad input to `executor search`: a one-line error or a recorded failure, never a lost archive."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.conftest import as_flags, assert_one_line_error
from tests.llm_server import llm_server_fixture  # noqa: F401

# Each test runs a search through the CLI.
pytestmark = pytest.mark.slow


def test_an_ideator_answering_prose_fails_the_search_on_record(
    cli, llm_server, toy_env, tmp_path
) -> None:
    llm_server.default = "What a fascinating problem! Let me think about it some more."
    runs = tmp_path / "runs"
    flags = as_flags(
        ideator="openai:gpt-4.1", base_url=llm_server.openai_base_url, baseline_seeds=1
    )
    res = cli("search", "--env", toy_env, *flags, "--run-dir", runs, OPENAI_API_KEY="sk-local")
    assert_one_line_error(res, "no parseable idea", "fascinating problem")
    db = sqlite3.connect(runs / "executor.db")
    status, reason = db.execute("SELECT status, reason FROM searches").fetchone()
    baseline_runs = db.execute("SELECT COUNT(*) FROM runs WHERE status='succeeded'").fetchone()
    db.close()
    assert status == "failed" and "no parseable idea" in reason
    assert baseline_runs[0] == 1  # what ran before the failure is kept


def test_a_replay_file_that_runs_out_stops_the_search_cleanly(cli, toy_env, tmp_path) -> None:
    replay = tmp_path / "ideas.jsonl"
    edits = "train.py\n<<<<<<< SEARCH\nSTEPS = 100\n=======\nSTEPS = 200\n>>>>>>> REPLACE\n"
    replay.write_text(json.dumps({"idea": "Train for 200 steps", "code_diff": edits}) + "\n")
    runs = tmp_path / "runs"
    flags = as_flags(
        ideator=f"replay:{replay}", epochs=3, ideas_per_epoch=1, baseline_seeds=1, rerun_top=0
    )
    res = cli("search", "--env", toy_env, *flags, "--run-dir", runs, "--json")
    assert res.rc == 0, res
    assert res.json["status"] == "stopped" and "no ideas for epoch 1" in res.json["reason"]
    assert [i["status"] for i in res.json["ideas"]] == ["succeeded"]


def test_bad_replay_files(cli, toy_env, tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    for content, needle in (
        ("not json\n", "not JSON"),
        ('{"text": "x"}\n', '"idea" string'),
        ("", "holds no ideas"),
    ):
        bad.write_text(content)
        res = cli(
            "search", "--env", toy_env, "--ideator", f"replay:{bad}", "--run-dir", tmp_path / "r"
        )
        assert res.rc == 2
        assert_one_line_error(res, needle)
    assert not (tmp_path / "r").exists()


def test_a_run_dir_from_another_environment(cli, toy_env, tmp_path) -> None:
    runs = tmp_path / "runs"
    flags = as_flags(epochs=1, ideas_per_epoch=1, baseline_seeds=1, rerun_top=0)
    first = cli("search", "--env", toy_env, *flags, "--run-dir", runs)
    assert first.rc == 0, first
    (toy_env / "repo" / "train.py").write_text(
        (toy_env / "repo" / "train.py").read_text() + "\n# another version\n"
    )
    res = cli("search", "--env", toy_env, "--resume", "--run-dir", runs)
    assert res.rc == 2
    assert_one_line_error(res, "holds a search of toy", "use another --run-dir")
    assert cli("search", "--env", toy_env, "--resume", "--run-dir", tmp_path / "empty").rc == 2


def test_an_environment_without_knobs_cannot_use_hparam(cli, toy_env, tmp_path) -> None:
    manifest = toy_env / "env.toml"
    text = manifest.read_text()
    manifest.write_text(text[: text.index("[[knobs]]")])
    res = cli("search", "--env", toy_env, "--run-dir", tmp_path / "r")
    assert res.rc == 2
    assert_one_line_error(res, "declares no knobs")
