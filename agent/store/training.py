"""The ideator training's tables: the training, every sample, every step's collapse
instruments, and the execution cache.

Same file as the ideas, candidates and runs, so every idea the policy was trained on can be
inspected, re-run and reused by a search. A step re-done after a resume overwrites its rows:
each (training, step) holds one final record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Protocol

from agent.store.base import new_id
from agent.store.core import CoreTables


def training_source(training_id: str) -> str:
    """The `source` of the ideas a training executed: how its ideas are told from others."""
    return f"ideator_rl:{training_id}"


class Sample(Protocol):
    """One trained sample (agent.ideator_rl.records.SampleRecord is one)."""

    @property
    def position(self) -> int: ...
    @property
    def group(self) -> int: ...
    @property
    def completion(self) -> str: ...
    @property
    def thinking_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def idea(self) -> str: ...
    @property
    def idea_id(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def cached(self) -> bool: ...
    @property
    def execution_reward(self) -> float: ...
    @property
    def reward(self) -> float: ...
    @property
    def parts(self) -> dict[str, float]: ...


class TrainingTables(CoreTables):
    def start_training(self, env: str, env_hash: str, scale: str, config: dict[str, Any]) -> str:
        training_id, now = new_id("train"), time.time()
        with self.tx() as db:
            db.execute(
                "INSERT INTO rl_trainings VALUES (?,?,?,?,?,?,?,?,?)",
                (training_id, env, env_hash, scale, json.dumps(config), "running", None, now, now),
            )
        return training_id

    def latest_training(self) -> dict[str, Any] | None:
        return self._one("SELECT * FROM rl_trainings ORDER BY created_at DESC LIMIT 1")

    def finish_training(self, training_id: str, status: str, reason: str | None = None) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE rl_trainings SET status=?, reason=?, updated_at=? WHERE id=?",
                (status, reason, time.time(), training_id),
            )

    def close_interrupted_training(self, training_id: str) -> int:
        """Runs a killed training left `running`: cancelled (their ideas run again on resume).
        Returns how many runs closed."""
        return self._close_interrupted(
            "SELECT id FROM ideas WHERE source=?", (training_source(training_id),), "training"
        )

    def record_training_step(
        self,
        training_id: str,
        step: int,
        samples: Sequence[Sample],
        instruments: dict[str, float],
    ) -> None:
        """The step's samples and instruments, replacing any earlier record of that step."""
        with self.tx() as db:
            db.execute("DELETE FROM rl_samples WHERE training_id=? AND step=?", (training_id, step))
            rows = [
                (
                    training_id,
                    step,
                    s.position,
                    s.group,
                    s.completion,
                    s.thinking_tokens,
                    s.completion_tokens,
                    s.idea,
                    s.idea_id,
                    s.status,
                    s.reason,
                    int(s.cached),
                    s.execution_reward,
                    s.reward,
                    json.dumps(s.parts),
                )
                for s in samples
            ]
            db.executemany("INSERT INTO rl_samples VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            db.execute(
                "INSERT OR REPLACE INTO rl_steps VALUES (?,?,?,?)",
                (training_id, step, json.dumps(instruments), time.time()),
            )

    def training_steps(self, training_id: str) -> list[dict[str, Any]]:
        """Each step's number and instruments, in order."""
        rows = self._rows(
            "SELECT step, instruments FROM rl_steps WHERE training_id=? ORDER BY step", training_id
        )
        return [{"step": r["step"], **r["instruments"]} for r in rows]

    def training_samples(self, training_id: str, step: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM rl_samples WHERE training_id=?"
        args: list[Any] = [training_id]
        if step is not None:
            sql += " AND step=?"
            args.append(step)
        return self._rows(sql + " ORDER BY step, position", *args)

    def recent_training_ideas(self, training_id: str, before_step: int, steps: int) -> list[str]:
        """The non-empty ideas of the `steps` steps before `before_step`."""
        return self._column(
            "SELECT idea FROM rl_samples WHERE training_id=? AND step<? AND step>=? AND idea!=''",
            training_id,
            before_step,
            before_step - steps,
        )

    def ideas_not_from_training(self, env_hash: str, scale: str, training_id: str) -> list[str]:
        """Texts of this environment's ideas that neither the training nor a baseline wrote."""
        return self._column(
            "SELECT text FROM ideas WHERE env_hash=? AND scale=? AND source NOT IN ('baseline', ?)",
            env_hash,
            scale,
            training_source(training_id),
        )

    def cached_execution(self, key: str, env_hash: str, scale: str) -> dict[str, Any] | None:
        """The cached result (idea_id, status, reason, reward) of an idea already executed."""
        return self._one(
            "SELECT idea_id, status, reason, reward FROM rl_cache WHERE key=? AND env_hash=? "
            "AND scale=?",
            key,
            env_hash,
            scale,
        )

    def cache_execution(
        self,
        key: str,
        env_hash: str,
        scale: str,
        *,
        idea_id: str,
        status: str,
        reason: str | None,
        reward: float | None,
    ) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO rl_cache VALUES (?,?,?,?,?,?,?)",
                (key, env_hash, scale, idea_id, status, reason, reward),
            )
