"""What an ideator training writes to the store: the training, every sample, every step's
collapse instruments, and the execution cache.

Same SQLite file as the executor's ideas, candidates and runs (and the search archive), so
every idea the policy was trained on can be inspected, re-run and reused by a search. A step
re-done after a resume overwrites its rows: each (training, step) holds one final record.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from agent.store import Store, new_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS rl_trainings (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    env_hash TEXT NOT NULL,
    scale TEXT NOT NULL,
    config TEXT NOT NULL,              -- JSON: TrainIdeatorConfig, fixed at the start
    status TEXT NOT NULL,              -- running | done | failed
    reason TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rl_samples (
    training_id TEXT NOT NULL REFERENCES rl_trainings(id),
    step INTEGER NOT NULL,             -- 1-based optimizer step the sample trained
    position INTEGER NOT NULL,         -- index in the step's batch
    grp INTEGER NOT NULL,              -- GRPO group (prompt) inside the batch
    completion TEXT NOT NULL,
    thinking_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    idea TEXT NOT NULL,                -- "" when the completion held none
    idea_id TEXT REFERENCES ideas(id), -- the executed idea (shared by cached repeats)
    status TEXT NOT NULL,              -- run status, rejected (not implementable) or no_idea
    reason TEXT,
    cached INTEGER NOT NULL,           -- 1: the result came from an earlier identical idea
    execution_reward REAL NOT NULL,    -- the run's reward, or the failure reward
    reward REAL NOT NULL,              -- what GRPO trained on (after shaping)
    parts TEXT NOT NULL,               -- JSON: transformed, diversity, novelty, length terms
    PRIMARY KEY (training_id, step, position)
);
CREATE TABLE IF NOT EXISTS rl_steps (
    training_id TEXT NOT NULL REFERENCES rl_trainings(id),
    step INTEGER NOT NULL,
    instruments TEXT NOT NULL,         -- JSON: the collapse instruments of this step
    created_at REAL NOT NULL,
    PRIMARY KEY (training_id, step)
);
CREATE TABLE IF NOT EXISTS rl_cache (
    key TEXT NOT NULL,                 -- the idea, canonical for its implementer
    env_hash TEXT NOT NULL,
    scale TEXT NOT NULL,
    idea_id TEXT NOT NULL REFERENCES ideas(id),
    status TEXT NOT NULL,
    reason TEXT,
    reward REAL,
    PRIMARY KEY (key, env_hash, scale)
);
"""


@dataclass(frozen=True)
class CachedResult:
    idea_id: str
    status: str
    reason: str | None
    reward: float | None


@dataclass(frozen=True)
class SampleRecord:
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


class Records:
    """The ideator-RL tables over a `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.db.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")

    def _rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in self.store.db.execute(sql, args).fetchall()]

    # -- trainings ----------------------------------------------------------------------

    def start(self, env: str, env_hash: str, scale: str, config: dict[str, Any]) -> str:
        training_id, now = new_id("train"), time.time()
        with self.store.tx() as db:
            db.execute(
                "INSERT INTO rl_trainings VALUES (?,?,?,?,?,?,?,?,?)",
                (training_id, env, env_hash, scale, json.dumps(config), "running", None, now, now),
            )
        return training_id

    def latest(self) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM rl_trainings ORDER BY created_at DESC LIMIT 1")
        if not rows:
            return None
        return {**rows[0], "config": json.loads(rows[0]["config"])}

    def finish(self, training_id: str, status: str, reason: str | None = None) -> None:
        with self.store.tx() as db:
            db.execute(
                "UPDATE rl_trainings SET status=?, reason=?, updated_at=? WHERE id=?",
                (status, reason, time.time(), training_id),
            )

    def close_interrupted(self, training_id: str) -> int:
        """Runs a killed training left `running`: cancelled (their ideas run again on resume)."""
        return self.store.close_interrupted(
            "SELECT id FROM ideas WHERE source=?", (f"ideator_rl:{training_id}",), "training"
        )

    # -- samples and steps --------------------------------------------------------------

    def record_step(
        self,
        training_id: str,
        step: int,
        samples: list[SampleRecord],
        instruments: dict[str, float],
    ) -> None:
        with self.store.tx() as db:
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

    def steps(self, training_id: str) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT step, instruments FROM rl_steps WHERE training_id=? ORDER BY step", training_id
        )
        return [{"step": r["step"], **json.loads(r["instruments"])} for r in rows]

    def samples(self, training_id: str, step: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM rl_samples WHERE training_id=?"
        args: list[Any] = [training_id]
        if step is not None:
            sql += " AND step=?"
            args.append(step)
        rows = self._rows(sql + " ORDER BY step, position", *args)
        return [{**r, "parts": json.loads(r["parts"])} for r in rows]

    def recent_ideas(self, training_id: str, before_step: int, steps: int) -> list[str]:
        """The non-empty ideas of the `steps` steps before `before_step`."""
        rows = self.store.db.execute(
            "SELECT idea FROM rl_samples WHERE training_id=? AND step<? AND step>=? AND idea!=''",
            (training_id, before_step, before_step - steps),
        ).fetchall()
        return [r[0] for r in rows]

    def archive_ideas(self, env_hash: str, scale: str, training_id: str) -> list[str]:
        """Ideas in the store for this environment that this training did not write."""
        rows = self.store.db.execute(
            "SELECT text FROM ideas WHERE env_hash=? AND scale=? AND source NOT IN ('baseline', ?)",
            (env_hash, scale, f"ideator_rl:{training_id}"),
        ).fetchall()
        return [r[0] for r in rows]

    # -- the execution cache ------------------------------------------------------------

    def cached(self, key: str, env_hash: str, scale: str) -> CachedResult | None:
        row = self.store.db.execute(
            "SELECT idea_id, status, reason, reward FROM rl_cache WHERE key=? AND env_hash=? "
            "AND scale=?",
            (key, env_hash, scale),
        ).fetchone()
        return CachedResult(*row) if row else None

    def cache(self, key: str, env_hash: str, scale: str, result: CachedResult) -> None:
        with self.store.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO rl_cache VALUES (?,?,?,?,?,?,?)",
                (key, env_hash, scale, result.idea_id, result.status, result.reason, result.reward),
            )
