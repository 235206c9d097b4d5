"""What an ideator training writes to the store: the training, every sample, every step's
collapse instruments, and the execution cache.

Same SQLite file as the executor's ideas, candidates and runs (and the search archive), so
every idea the policy was trained on can be inspected, re-run and reused by a search. A step
re-done after a resume overwrites its rows: each (training, step) holds one final record.
"""

from __future__ import annotations

from typing import Any

from agent.store import Store
from agent.store.training import CachedResult, SampleRecord

__all__ = ["CachedResult", "Records", "SampleRecord"]


class Records:
    """A training's view of the store: its tables are agent/store/training.py's."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- trainings ----------------------------------------------------------------------

    def start(self, env: str, env_hash: str, scale: str, config: dict[str, Any]) -> str:
        return self.store.start_training(env, env_hash, scale, config)

    def latest(self) -> dict[str, Any] | None:
        return self.store.latest_training()

    def finish(self, training_id: str, status: str, reason: str | None = None) -> None:
        self.store.finish_training(training_id, status, reason)

    def close_interrupted(self, training_id: str) -> int:
        """Runs a killed training left `running`: cancelled (their ideas run again on resume)."""
        return self.store.close_interrupted_training(training_id)

    # -- samples and steps --------------------------------------------------------------

    def record_step(
        self,
        training_id: str,
        step: int,
        samples: list[SampleRecord],
        instruments: dict[str, float],
    ) -> None:
        self.store.record_training_step(training_id, step, samples, instruments)

    def steps(self, training_id: str) -> list[dict[str, Any]]:
        return self.store.training_steps(training_id)

    def samples(self, training_id: str, step: int | None = None) -> list[dict[str, Any]]:
        return self.store.training_samples(training_id, step)

    def recent_ideas(self, training_id: str, before_step: int, steps: int) -> list[str]:
        """The non-empty ideas of the `steps` steps before `before_step`."""
        return self.store.recent_training_ideas(training_id, before_step, steps)

    def archive_ideas(self, env_hash: str, scale: str, training_id: str) -> list[str]:
        """Ideas in the store for this environment that this training did not write."""
        return self.store.ideas_not_from_training(env_hash, scale, training_id)

    # -- the execution cache ------------------------------------------------------------

    def cached(self, key: str, env_hash: str, scale: str) -> CachedResult | None:
        return self.store.cached_execution(key, env_hash, scale)

    def cache(self, key: str, env_hash: str, scale: str, result: CachedResult) -> None:
        self.store.cache_execution(key, env_hash, scale, result)
