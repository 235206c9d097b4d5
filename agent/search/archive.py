"""The search archive: which search an idea belongs to, its epoch, role and fate.

Its tables live in the run directory's store (same SQLite file, same transactions), beside
ideas, candidates and runs, so a killed search resumes from exactly what was written:
- an epoch's ideas are recorded together, before any of them runs: a resumed search never
  re-generates an epoch;
- each idea moves proposed -> running -> a terminal status, and a run left `running` by a
  killed process is closed as `cancelled` and the idea runs again: every idea ends with
  exactly one final run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.store import SearchIdea, Store

# Confirmation runs use seeds from here (and the evaluator's confirm split): never the seeds or
# items that screening, and so the choice of finalists, saw.
CONFIRM_SEED = 1000

# An idea that --screen's short look did not promote to the full budget
# (agent/search/fidelity.py): finished, with no screening reward, but not a failure.
SCREENED_OUT = "screened_out"

TERMINAL = {
    SCREENED_OUT,
    "succeeded",
    "failed",
    "timeout",
    "killed",
    "flagged",
    "rejected",
    "duplicate",
    "cancelled",
    "infra_error",
    "error",
}


@dataclass
class ArchivedIdea:
    idea_id: str
    text: str
    epoch: int
    role: str
    status: str
    reason: str | None
    reward: float | None
    payload: dict[str, Any]
    # Mean over its succeeded screening runs of each numeric run metric (f1, format_rate...):
    # what a focus's `rank_by` ranks by when it is not the reward.
    metrics: dict[str, float] = field(default_factory=dict)


class Archive:
    """A search's view of the store: its tables are agent/store/search.py's."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- searches ---------------------------------------------------------------------

    def start(
        self,
        env: str,
        env_hash: str,
        scale: str,
        config: dict[str, Any],
        metric: dict[str, str] | None = None,
    ) -> str:
        return self.store.start_search(env, env_hash, scale, config, metric)

    def latest(self) -> dict[str, Any] | None:
        return self.store.latest_search()

    def get(self, search_id: str) -> dict[str, Any] | None:
        return self.store.search(search_id)

    def set_baseline(self, search_id: str, candidate_id: str) -> None:
        self.store.set_search_baseline(search_id, candidate_id)

    def baseline_rewards(self, search_id: str) -> list[float]:
        """Rewards of this search's own baseline runs (same scale and timeout as its ideas)."""
        return self.store.search_baseline_rewards(search_id)

    def baseline_metrics(self, search_id: str) -> dict[str, float]:
        """Mean of each numeric metric over the search's own baseline screening runs ({}
        before the baseline ran): what an idea's `metrics` are read against."""
        search = self.store.search(search_id)
        cand = (
            search
            and search["baseline_candidate"]
            and self.store.candidate(search["baseline_candidate"])
        )
        if not cand:
            return {}
        return self.store.idea_screening_metrics(cand["idea_id"], CONFIRM_SEED)

    def finish(self, search_id: str, status: str, reason: str | None = None) -> None:
        self.store.finish_search(search_id, status, reason)

    # -- epochs and ideas ---------------------------------------------------------------

    def epochs_generated(self, search_id: str) -> list[int]:
        return self.store.search_epochs(search_id)

    def record_ideas(
        self,
        search_id: str,
        epoch: int,
        first_position: int,
        ideas: list[SearchIdea],
        env: str,
        env_hash: str,
        scale: str,
        close_epoch: bool = False,
    ) -> list[str]:
        """Write ideas (text, role, ideator, payload) in one transaction; returns their ids.
        `close_epoch` also marks the epoch generated, in the same transaction."""
        return self.store.add_search_ideas(
            search_id,
            epoch,
            ideas,
            (env, env_hash, scale),
            first_position=first_position,
            close_epoch=close_epoch,
        )

    def record_epoch(
        self,
        search_id: str,
        epoch: int,
        ideas: list[SearchIdea],
        env: str,
        env_hash: str,
        scale: str,
    ) -> list[str]:
        """An epoch's ideas, written at once with the epoch: it is never generated twice."""
        return self.record_ideas(search_id, epoch, 0, ideas, env, env_hash, scale, True)

    def set_status(
        self, idea_id: str, status: str, reason: str | None = None, duplicate_of: str | None = None
    ) -> None:
        self.store.set_search_idea_status(idea_id, status, reason, duplicate_of)

    def finish_epoch(self, search_id: str, epoch: int) -> None:
        self.store.finish_search_epoch(search_id, epoch)

    def ideas(
        self, search_id: str, epoch: int | None = None, *, controls: bool = False
    ) -> list[ArchivedIdea]:
        """Every idea of the search (or of one epoch) with its mean screening reward, in order:
        confirmation runs (seeds from CONFIRM_SEED, the confirm split) never count. Control
        arms only with `controls` (they are the experimenter's, not the ideator's)."""
        metrics = self.store.search_idea_metrics(search_id, CONFIRM_SEED)
        return [
            ArchivedIdea(
                r["idea_id"],
                r["text"],
                r["epoch"],
                r["role"],
                r["status"],
                r["reason"],
                r["reward"],
                r["payload"] or {},
                metrics.get(r["idea_id"], {}),
            )
            for r in self.store.search_ideas(search_id, CONFIRM_SEED, epoch)
            if controls or r["role"] != "control"
        ]

    def close_interrupted_runs(self, search_id: str) -> int:
        """Runs a killed process left `running`: mark them cancelled; their ideas run again."""
        return self.store.close_interrupted_search(search_id)
