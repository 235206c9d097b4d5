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
from dataclasses import astuple, dataclass
from typing import Any

from agent.store.base import new_id
from agent.store.core import CoreTables


def training_source(training_id: str) -> str:
    """The `source` of the ideas a training executed: how its ideas are told from others."""
    return f"ideator_rl:{training_id}"


@dataclass(frozen=True)
class CachedResult:
    """What executing an idea gave, kept so an identical idea is not run again."""

    idea_id: str
    status: str
    reason: str | None
    reward: float | None


@dataclass(frozen=True)
class SampleRecord:
    """One trained sample: its completion, the idea in it, what running it gave, and the
    reward GRPO trained on."""

    position: int
    group: int
    completion: str
    thinking_tokens: int
    completion_tokens: int
    idea: str
    idea_id: str | None
    status: str
    reason: str | None
    cached: bool
    execution_reward: float
    reward: float
    parts: dict[str, float]


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
        samples: Sequence[SampleRecord],
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

    def cached_execution(self, key: str, env_hash: str, scale: str) -> CachedResult | None:
        """The result of an identical idea already executed, if any."""
        row = self._one(
            "SELECT idea_id, status, reason, reward FROM rl_cache WHERE key=? AND env_hash=? "
            "AND scale=?",
            key,
            env_hash,
            scale,
        )
        return CachedResult(**row) if row else None

    def cache_execution(self, key: str, env_hash: str, scale: str, result: CachedResult) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO rl_cache VALUES (?,?,?,?,?,?,?)",
                (key, env_hash, scale, *astuple(result)),
            )
