"""End to end: `executor run-idea` with the real openai / anthropic SDKs against a local server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import git
import pytest

from tests.conftest import (
    GOOD_EDIT,
    CLIResult,
    assert_one_line_error,
    assert_store_consistent,
    store_rows,
)
from tests.llm_server import ErrorReply

# Each test runs an idea on the toy environment, with an LLM served locally.
pytestmark = pytest.mark.slow

IDEA = "Raise the learning rate and train for longer."

# GOOD_EDIT's edit, searching for an LR that train.py does not hold (it has 0.01).
BAD_SEARCH = GOOD_EDIT[GOOD_EDIT.index("train.py") :].replace("LR = 0.01", "LR = 0.05", 1)


def openai_args(server: Any) -> dict[str, str]:
    return {"OPENAI_BASE_URL": server.openai_base_url, "OPENAI_API_KEY": "x"}


def run_idea(
    cli: Callable[..., CLIResult],
    toy_env: Path,
    run_dir: Path,
    llm: str,
    *extra: str,
    idea: str = IDEA,
    **environ: str,
) -> CLIResult:
    """`executor run-idea IDEA --env ENV --llm LLM --run-dir RUN_DIR EXTRA...`."""
    return cli(
        "run-idea", idea, "--env", toy_env, "--llm", llm, "--run-dir", run_dir, *extra, **environ
    )


@pytest.fixture
def run_openai(cli, toy_env, run_dir, llm_server) -> Callable[..., CLIResult]:
    """`executor run-idea IDEA --env toy --llm openai:m --run-dir ...` against the server."""

    def run(*extra: str) -> CLIResult:
        return run_idea(cli, toy_env, run_dir, "openai:m", *extra, **openai_args(llm_server))

    return run


def test_openai_correct_edit_runs_and_is_recorded(cli, toy_env, run_dir, llm_server) -> None:
    llm_server.script(GOOD_EDIT)
    res = run_idea(cli, toy_env, run_dir, "openai:some-model", "--json", **openai_args(llm_server))
    assert res.rc == 0, res
    out = res.json
    assert out["status"] == "succeeded"
    assert out["reward"] > 0.9  # the baseline's reward is about 0.68
    assert out["metrics"]["val_mse"] < 0.05
    assert out["attempts"] == [{"n": 1, "phase": None, "error": None}]
    assert "+LR = 0.1" in out["diff"]
    # The prompt showed the task and the editable file, and not the protected one.
    prompt = str(llm_server.requests[0].json["messages"])
    assert "LR = 0.01" in prompt and "Toy task" in prompt and "def make_split" not in prompt
    # The store holds the whole story.
    (cand,) = store_rows(run_dir, "candidates")
    assert cand["status"] == "validated" and cand["commit_sha"] == out["commit"]
    (run,) = store_rows(run_dir, "runs")
    assert run["status"] == "succeeded" and run["reward"] == out["reward"]
    (call,) = store_rows(run_dir, "llm_calls")
    assert call["candidate_id"] == cand["id"] and call["cached"] == 0
    assert_store_consistent(run_dir)


def test_anthropic_correct_edit(cli, toy_env, run_dir, llm_server, tmp_path) -> None:
    llm_server.script(GOOD_EDIT)
    (tmp_path / "idea.md").write_text(IDEA)
    res = run_idea(
        cli,
        toy_env,
        run_dir,
        "anthropic:claude-sonnet-4-5",
        "--json",
        idea=f"@{tmp_path / 'idea.md'}",
        ANTHROPIC_BASE_URL=llm_server.anthropic_base_url,
        ANTHROPIC_API_KEY="x",
    )
    assert res.rc == 0, res
    assert res.json["status"] == "succeeded"
    assert llm_server.requests[0].path.endswith("/v1/messages")
    assert IDEA in str(llm_server.requests[0].json["messages"])  # read from @FILE
    (call,) = store_rows(run_dir, "llm_calls")
    assert call["provider"] == "anthropic" and call["cost_usd"] > 0  # priced model


def test_unmatched_search_is_revised(run_dir, llm_server, run_openai) -> None:
    llm_server.script(BAD_SEARCH, GOOD_EDIT)
    res = run_openai("--json")
    assert res.rc == 0, res
    first, second = res.json["attempts"]
    assert first["phase"] == "apply" and "LR = 0.01" in first["error"]  # the nearest lines
    assert second["error"] is None
    rows = store_rows(run_dir, "attempts")
    assert [(a["n"], a["error"] is None) for a in rows] == [(1, False), (2, True)]
    # The second request carried the error back to the model.
    revision = llm_server.requests[1].json["messages"][-1]["content"]
    assert "NO edit from your last answer was applied" in revision and "LR = 0.01" in revision
    assert "as originally shown" in revision


def test_malformed_answers_fail_after_attempts(run_dir, llm_server, run_openai) -> None:
    llm_server.script(*["Sure! I would change the learning rate."] * 2)
    res = run_openai("--attempts", "2")
    assert_one_line_error(res, "rejected after 2 attempt(s) (parse)")
    assert len(llm_server.requests) == 2
    assert [a["phase"] for a in store_rows(run_dir, "attempts")] == ["parse", "parse"]
    assert store_rows(run_dir, "runs") == []
    assert_store_consistent(run_dir)


def test_rate_limit_then_success(run_dir, llm_server, run_openai) -> None:
    llm_server.script(ErrorReply(429, "slow down", headers={"retry-after": "0"}), GOOD_EDIT)
    res = run_openai("--json")
    assert res.rc == 0, res
    assert len(llm_server.requests) == 2
    (call,) = store_rows(run_dir, "llm_calls")
    assert call["retries"] == 1 and call["error"] is None


def test_rerun_is_served_from_cache(cli, toy_env, run_dir, llm_server) -> None:
    llm_server.script(GOOD_EDIT)
    first = run_idea(cli, toy_env, run_dir, "openai:m", "--json", **openai_args(llm_server))
    second = run_idea(cli, toy_env, run_dir, "openai:m", "--json", **openai_args(llm_server))
    assert first.rc == 0 and second.rc == 0, second
    assert len(llm_server.requests) == 1  # the second run reached no server
    assert second.json["diff"] == first.json["diff"]
    calls = store_rows(run_dir, "llm_calls")
    assert [c["cached"] for c in calls] == [0, 1]
    assert second.json["cost_usd"] == 0.0
    llm_server.script(GOOD_EDIT)
    third = run_idea(
        cli, toy_env, run_dir, "openai:m", "--json", "--no-cache", **openai_args(llm_server)
    )
    assert third.rc == 0 and len(llm_server.requests) == 2, third


def test_samples_first_valid_wins(run_dir, llm_server, run_openai) -> None:
    llm_server.script(BAD_SEARCH, GOOD_EDIT)  # one sample gets each answer
    res = run_openai("--json", "--samples", "2", "--attempts", "1")
    assert res.rc == 0, res
    cands = {c["id"]: c for c in store_rows(run_dir, "candidates")}
    assert len(cands) == 2
    assert cands[res.json["candidate_id"]]["status"] == "validated"
    assert sorted(c["status"] for c in cands.values()) in (
        ["rejected", "validated"],
        ["abandoned", "validated"],
    )
    assert_store_consistent(run_dir)


def test_missing_key(cli, toy_env, run_dir) -> None:
    res = run_idea(cli, toy_env, run_dir, "openai:m")
    assert_one_line_error(res, "OPENAI_API_KEY")
    assert not (run_dir / "executor.db").exists()
    res = run_idea(cli, toy_env, run_dir, "anthropic:m")
    assert_one_line_error(res, "ANTHROPIC_API_KEY")


def test_unreachable_server(cli, toy_env, run_dir) -> None:
    res = run_idea(
        cli,
        toy_env,
        run_dir,
        "openai:m",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        OPENAI_API_KEY="x",
        EXECUTOR_LLM_RETRIES="1",
    )
    assert_one_line_error(res, "127.0.0.1:9")
    assert store_rows(run_dir, "runs") == []
    (cand,) = store_rows(run_dir, "candidates")
    assert cand["status"] == "error" and "127.0.0.1:9" in cand["error"]
    assert_store_consistent(run_dir)


def test_idea_that_produces_no_edit(run_dir, llm_server, run_openai) -> None:
    llm_server.default = "I think the current code is already optimal; no change needed."
    res = run_openai()
    assert_one_line_error(res, "rejected", "no edit")
    assert len(llm_server.requests) == 3  # the default --attempts
    assert store_rows(run_dir, "runs") == []
    assert_store_consistent(run_dir)


def test_context_over_budget_fails_before_any_call(run_dir, llm_server, run_openai) -> None:
    res = run_openai("--context-tokens", "50")
    assert_one_line_error(res, "context budget", "editable")
    assert llm_server.requests == [] and not run_dir.exists()


def test_candidate_commit_carries_the_idea(run_dir, llm_server, run_openai) -> None:
    llm_server.script(GOOD_EDIT)
    out = run_openai("--json").json
    (repo_dir,) = (run_dir / "repos").iterdir()
    repo = git.Repo(repo_dir)
    commit = repo.commit(f"refs/candidates/{out['candidate_id']}")
    assert commit.hexsha == out["commit"] and IDEA in commit.message
    assert commit.parents[0].hexsha == repo.tags["baseline"].commit.hexsha


SMOKE_BREAKER = """train.py
<<<<<<< SEARCH
STEPS = 100
=======
STEPS = 300
if "--smoke" in sys.argv:
    raise SystemExit("smoke broke")
>>>>>>> REPLACE
"""

SMOKE_FIX = """train.py
<<<<<<< SEARCH
if "--smoke" in sys.argv:
    raise SystemExit("smoke broke")
=======
>>>>>>> REPLACE
"""


def test_failed_smoke_is_revised_against_current_content(llm_server, run_openai) -> None:
    llm_server.script(SMOKE_BREAKER, SMOKE_FIX)
    res = run_openai("--json")
    assert res.rc == 0, res
    first, second = res.json["attempts"]
    assert first["phase"] == "smoke" and "smoke broke" in first["error"]
    assert second["error"] is None
    revision = llm_server.requests[1].json["messages"][-1]["content"]
    assert "were applied" in revision and 'raise SystemExit("smoke broke")' in revision
    assert "+STEPS = 300" in res.json["diff"] and "smoke broke" not in res.json["diff"]
