"""What running ideas returns: typed results, each with the JSON that `executor ... --json` prints.

`to_json()` is a public contract (scripts read the CLI's JSON): its keys come from the fields,
in their declared order, so a field added, renamed or moved changes the output;
tests/test_results.py pins the keys. A search's result (`agent.search.loop.SearchResult`) is
built from these pieces and lives with the search, whose types it holds.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Protocol

from runner.run import RunOutcome
from sandbox import RunStatus

# How an implementation ended (agent/implementer/attempts.py); a validated one goes on to run,
# and its result then carries the run's status instead.
CandidateStatus = Literal["validated", "rejected", "error", "abandoned"]


class ToJson(Protocol):
    def to_json(self) -> dict[str, Any]: ...


def plain(value: Any) -> Any:
    """`value` as JSON-ready data: dataclasses by field (or their own `to_json`), enums and
    paths as strings."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum | Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Result:
    """A dataclass whose JSON is its fields, in order."""

    def to_json(self) -> dict[str, Any]:
        assert is_dataclass(self)
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class Attempt(Result):
    """One implementation attempt: where it failed (None: it validated) and why."""

    n: int
    phase: str | None
    error: str | None


@dataclass(frozen=True)
class MeanStd(Result):
    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, xs: list[float]) -> MeanStd:
        return cls(statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0, len(xs))


@dataclass(frozen=True)
class BaselineSummary(Result):
    """The baseline reward an idea's is read against: one measurement (`executor baseline`)
    under the same conditions as the idea's run (host, sandbox, budget, split), never a pool
    of measurements made at other times; else the manifest's declared figure."""

    mean: float
    std: float | None
    n: int | None
    source: Literal["measured", "manifest"]
    seed_reward: float | None = None  # the baseline's reward on the idea's own seed (matched)
    measured_by: str | None = None  # the baseline candidate whose runs these are
    other_conditions: int = 0  # baseline runs not shown: measured under other conditions


@dataclass
class SeedRun(Result):
    """One seed of a baseline measurement."""

    seed: int
    run_id: str
    status: RunStatus
    reason: str | None
    reward: float | None
    metrics: dict[str, float]
    flags: list[str]
    artifacts: Path
    timings: dict[str, float]

    @classmethod
    def of(cls, seed: int, run_id: str, o: RunOutcome) -> SeedRun:
        return cls(
            seed, run_id, o.status, o.reason, o.reward, o.metrics, o.flags, o.artifacts, o.timings
        )


@dataclass
class BaselineResult(Result):
    """`run_baseline`'s: each seed's run, and mean ± std of the reward and of each metric over
    the seeds that succeeded."""

    idea_id: str
    candidate_id: str
    env: str
    scale: str
    status: Literal["succeeded", "failed"]  # failed: at least one seed did not succeed
    runs: list[SeedRun]
    summary: dict[str, MeanStd]


@dataclass
class RunResult(Result):
    """`run_idea`'s: the implementation, and its run when it validated."""

    idea_id: str
    candidate_id: str
    env: str
    scale: str
    status: RunStatus | CandidateStatus
    reason: str | None
    reward: float | None
    metrics: dict[str, float]
    flags: list[str]
    attempts: list[Attempt]
    diff: str
    commit: str | None
    run_id: str | None  # None: it never ran (the implementation did not validate)
    artifacts: Path | None
    cost_usd: float | None
    baseline: BaselineSummary | None
    timings: dict[str, float]  # implement, the run's steps, total

    @property
    def succeeded(self) -> bool:
        return self.status == RunStatus.SUCCEEDED

    def add_run(self, run_id: str, o: RunOutcome) -> None:
        """Take the run's outcome; its timings follow the implementation's."""
        self.run_id, self.status, self.reason = run_id, o.status, o.reason
        self.reward, self.metrics, self.flags = o.reward, o.metrics, o.flags
        self.artifacts = o.artifacts
        self.timings.update(o.timings)


@dataclass
class TrainingResult(Result):
    """`train_ideator`'s, also written to the training's summary.json."""

    training_id: str
    env: str
    scale: str
    model: str
    vllm: bool
    baseline: float | None
    adapter: Path
    resumed_from: str | None  # the checkpoint it resumed from
    steps: list[dict[str, Any]]  # per step: its number and the collapse instruments
    config: dict[str, Any]  # the training's stored settings
