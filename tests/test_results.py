"""The JSON of each result: the keys scripts read from `executor ... --json`, in their order.

These pin the public shape. A result that gains, loses or renames a key fails here first: change
the expected keys only together with the documentation of the output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.results import (
    Attempt,
    BaselineResult,
    BaselineSummary,
    MeanStd,
    RunResult,
    SeedRun,
    TrainingResult,
)
from agent.search.archive import ArchivedIdea
from agent.search.loop import SearchResult
from agent.search.verdicts import Arm, Outcomes, build_table
from runner.backends import RunSpec
from runner.run import RunOutcome
from sandbox import RunStatus

RUN_KEYS = [
    "idea_id",
    "candidate_id",
    "env",
    "scale",
    "status",
    "reason",
    "reward",
    "metrics",
    "flags",
    "attempts",
    "diff",
    "commit",
    "run_id",
    "artifacts",
    "cost_usd",
    "baseline",
    "timings",
]
SEED_RUN_KEYS = [
    "seed",
    "run_id",
    "status",
    "reason",
    "reward",
    "metrics",
    "flags",
    "artifacts",
    "timings",
]
BASELINE_KEYS = ["idea_id", "candidate_id", "env", "scale", "status", "runs", "summary"]
SEARCH_KEYS = [
    "status",
    "reason",
    "spend",
    "search_id",
    "env",
    "scale",
    "baseline",
    "ideas",
    "confirmation",
    "promotions",
]
TABLE_KEYS = [
    "search_id",
    "metric",
    "direction",
    "alpha",
    "bootstrap_samples",
    "bootstrap_seed",
    "baseline",
    "rows",
    "pairs",
    "warnings",
]
ROW_KEYS = [
    "idea_id",
    "text",
    "kind",
    "screen_reward",
    "seeds",
    "items",
    "metric",
    "metric_low",
    "metric_high",
    "diff",
    "diff_low",
    "diff_high",
    "test",
    "b",
    "c",
    "p",
    "p_holm",
    "wins",
    "reason",
]
PAIR_KEYS = [
    "a",
    "b",
    "seeds",
    "items",
    "diff",
    "diff_low",
    "diff_high",
    "test",
    "a_only",
    "b_only",
    "p",
    "p_holm",
    "verdict",
    "reason",
]
IDEA_KEYS = [
    "idea_id",
    "text",
    "epoch",
    "role",
    "status",
    "reason",
    "reward",
    "payload",
    "metrics",
]
TRAINING_KEYS = [
    "training_id",
    "env",
    "scale",
    "model",
    "vllm",
    "baseline",
    "adapter",
    "resumed_from",
    "steps",
    "config",
]


def _round_trip(data: dict[str, Any]) -> dict[str, Any]:
    """What a script reading the CLI's output gets; equal to `data` when it is plain JSON."""
    back = json.loads(json.dumps(data))
    assert back == data
    return back


def _outcome(tmp_path: Path, reward: float = 0.5) -> RunOutcome:
    return RunOutcome(
        RunStatus.SUCCEEDED,
        None,
        tmp_path / "run_1",
        metrics={"loss": 1.5},
        flags=[],
        reward=reward,
        timings={"train": 2.0, "evaluate": 1.0},
    )


def test_a_run_idea_that_ran_has_the_documented_keys(tmp_path: Path) -> None:
    result = RunResult(
        idea_id="idea_1",
        candidate_id="cand_1",
        env="toy",
        scale="tiny",
        status="validated",
        reason=None,
        reward=None,
        metrics={},
        flags=[],
        attempts=[Attempt(1, "validate", "boom"), Attempt(2, None, None)],
        diff="+x",
        commit="abc",
        run_id=None,
        artifacts=None,
        cost_usd=0.25,
        baseline=None,
        timings={"implement": 3.0},
    )
    result.add_run("run_1", _outcome(tmp_path))
    result.baseline = BaselineSummary(0.4, 0.01, 3, "measured")
    result.timings["total"] = 7.0
    data = _round_trip(result.to_json())
    assert list(data) == RUN_KEYS
    assert data["status"] == "succeeded" and data["run_id"] == "run_1" and data["reward"] == 0.5
    assert data["artifacts"] == str(tmp_path / "run_1")
    assert data["attempts"] == [
        {"n": 1, "phase": "validate", "error": "boom"},
        {"n": 2, "phase": None, "error": None},
    ]
    assert data["baseline"] == {
        "mean": 0.4,
        "std": 0.01,
        "n": 3,
        "source": "measured",
        "seed_reward": None,
        "measured_by": None,
        "other_conditions": 0,
    }
    # The implementation's time first, then the run's steps, then the total.
    assert list(data["timings"]) == ["implement", "train", "evaluate", "total"]
    assert result.succeeded


def test_a_rejected_idea_keeps_every_key_empty(tmp_path: Path) -> None:
    result = RunResult(
        "idea_1",
        "cand_1",
        "toy",
        "tiny",
        "rejected",
        "no edits",
        None,
        {},
        [],
        [],
        "",
        None,
        None,
        None,
        None,
        BaselineSummary(0.3, None, None, "manifest"),
        {"implement": 1.0, "total": 1.0},
    )
    data = _round_trip(result.to_json())
    assert list(data) == RUN_KEYS
    assert data["run_id"] is None and data["artifacts"] is None and not result.succeeded
    assert data["baseline"] == {
        "mean": 0.3,
        "std": None,
        "n": None,
        "source": "manifest",
        "seed_reward": None,
        "measured_by": None,
        "other_conditions": 0,
    }


def test_a_baseline_has_the_documented_keys(tmp_path: Path) -> None:
    runs = [SeedRun.of(s, f"run_{s}", _outcome(tmp_path, 0.5 + s)) for s in range(2)]
    result = BaselineResult(
        "idea_b",
        "cand_b",
        "toy",
        "tiny",
        "succeeded",
        runs,
        {"reward": MeanStd.of([0.5, 1.5]), "loss": MeanStd.of([1.5, 1.5])},
    )
    data = _round_trip(result.to_json())
    assert list(data) == BASELINE_KEYS
    assert [list(r) for r in data["runs"]] == [SEED_RUN_KEYS] * 2
    assert data["runs"][1]["status"] == "succeeded" and data["runs"][1]["reward"] == 1.5
    assert data["summary"]["reward"] == {"mean": 1.0, "std": MeanStd.of([0.5, 1.5]).std, "n": 2}
    assert MeanStd.of([2.0]).to_json() == {"mean": 2.0, "std": 0.0, "n": 1}


def test_a_search_has_the_documented_keys() -> None:
    idea = ArchivedIdea("idea_1", "lr=0.1", 0, "explore", "succeeded", None, 0.9, {"edits": "x"})
    base = Outcomes({1000: {"a": 1.0, "b": 0.0}, 1001: {"a": 1.0, "b": 1.0}}, {})
    mine = Outcomes({1000: {"a": 1.0, "b": 1.0}, 1001: {"a": 1.0, "b": 1.0}}, {})
    arms = [(Arm("idea_1", "lr=0.1", "idea", 0.9), mine), (Arm("c", "null", "control", 0.5), base)]
    table = build_table("search_1", "accuracy", "maximize", 0.05, base, arms)
    result = SearchResult(
        "done",
        None,
        {"usd": 0.0, "gpu_hours": 0.1},
        "search_1",
        "toy",
        "tiny",
        "0.5",
        [idea],
        table,
    )
    data = _round_trip(result.to_json())
    assert list(data) == SEARCH_KEYS
    assert [list(i) for i in data["ideas"]] == [IDEA_KEYS]
    assert data["ideas"][0]["payload"] == {"edits": "x"}
    assert list(data["confirmation"]) == TABLE_KEYS
    assert [list(r) for r in data["confirmation"]["rows"]] == [ROW_KEYS] * 2
    first, control = data["confirmation"]["rows"]
    assert first["text"] == "lr=0.1" and control["kind"] == "control"
    assert (first["b"], first["c"], first["test"]) == (1, 0, "mcnemar")
    assert first["p"] == 1.0 and first["wins"] is False  # one discordant pair proves nothing
    assert control["diff"] == 0.0 and control["b"] == control["c"] == 0
    assert data["confirmation"]["pairs"] == [] and data["ideas"][0]["metrics"] == {}


def test_a_pair_of_finalists_has_the_documented_keys() -> None:
    base = Outcomes({1000: {"a": 1.0, "b": 0.0}, 1001: {"a": 1.0, "b": 1.0}}, {})
    arms = [(Arm(n, n, "idea", 0.5), base) for n in ("x", "y")]
    table = build_table("search_1", "accuracy", "maximize", 0.05, base, arms)
    (pair,) = _round_trip(table.to_json())["pairs"]
    assert list(pair) == PAIR_KEYS
    assert (pair["a"], pair["b"], pair["verdict"]) == ("x", "y", "no difference shown")


def test_a_training_has_the_documented_keys(tmp_path: Path) -> None:
    result = TrainingResult(
        "train_1",
        "toy",
        "tiny",
        "tiny",
        False,
        0.5,
        tmp_path / "adapter",
        None,
        [{"step": 1, "mean_reward": 0.4}],
        {"steps": 1},
    )
    data = _round_trip(result.to_json())
    assert list(data) == TRAINING_KEYS
    assert data["adapter"] == str(tmp_path / "adapter")


def test_a_spec_ships_all_but_the_environment(toy_env: Path) -> None:
    from agent.executor import RunRequest
    from environments import load_environment

    env = load_environment(toy_env)
    req = RunRequest(env, "tiny", "docker", 60.0, seed=3, run_dir=toy_env, slots=2)
    assert req.portable() == {
        "scale": "tiny",
        "sandbox": "docker",
        "timeout_s": 60.0,
        "seed": 3,
        "split": "screen",
    }
    assert RunSpec(env, **req.portable()) == RunSpec(env, "tiny", "docker", 60.0, seed=3)
