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

import json
import time
from dataclasses import dataclass
from typing import Any

from agent.store import Store, new_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS searches (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    env_hash TEXT NOT NULL,
    scale TEXT NOT NULL,
    config TEXT NOT NULL,              -- JSON: the search's settings, fixed at its start
    status TEXT NOT NULL,              -- running | done | stopped (budget) | failed
    reason TEXT,
    baseline_candidate TEXT,           -- the candidate whose runs are this search's baseline
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS search_epochs (
    search_id TEXT NOT NULL REFERENCES searches(id),
    epoch INTEGER NOT NULL,
    status TEXT NOT NULL,              -- generated | done
    PRIMARY KEY (search_id, epoch)
);
CREATE TABLE IF NOT EXISTS search_ideas (
    idea_id TEXT PRIMARY KEY REFERENCES ideas(id),
    search_id TEXT NOT NULL REFERENCES searches(id),
    epoch INTEGER NOT NULL,
    role TEXT NOT NULL,                -- fresh | exploit | explore | hparam | replay | rerun
    ideator TEXT NOT NULL,
    status TEXT NOT NULL,              -- proposed | running | succeeded | failed | duplicate | ...
    reason TEXT,
    duplicate_of TEXT,
    payload TEXT,                      -- JSON: hparam values and edits, replayed diffs
    position INTEGER NOT NULL          -- order within the epoch
);
"""

HELD_OUT_SEED = 1000  # final re-runs use seeds from here: never those the search itself used

TERMINAL = {
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


class Archive:
    """The search tables over a `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        db = store.db
        db.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")

    # -- searches ---------------------------------------------------------------------

    def start(self, env: str, env_hash: str, scale: str, config: dict[str, Any]) -> str:
        search_id = new_id("search")
        now = time.time()
        with self.store.tx() as db:
            db.execute(
                "INSERT INTO searches VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    search_id,
                    env,
                    env_hash,
                    scale,
                    json.dumps(config),
                    "running",
                    None,
                    None,
                    now,
                    now,
                ),
            )
        return search_id

    def _rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in self.store.db.execute(sql, args).fetchall()]

    def latest(self) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM searches ORDER BY created_at DESC LIMIT 1")
        if not rows:
            return None
        row = rows[0]
        row["config"] = json.loads(row["config"])
        return row

    def get(self, search_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM searches WHERE id=?", search_id)
        if not rows:
            return None
        rows[0]["config"] = json.loads(rows[0]["config"])
        return rows[0]

    def set_baseline(self, search_id: str, candidate_id: str) -> None:
        with self.store.tx() as db:
            db.execute(
                "UPDATE searches SET baseline_candidate=? WHERE id=?", (candidate_id, search_id)
            )

    def baseline_rewards(self, search_id: str) -> list[float]:
        """Rewards of this search's own baseline runs (same scale and timeout as its ideas)."""
        rows = self._rows(
            "SELECT r.reward FROM runs r JOIN searches s ON r.candidate_id = s.baseline_candidate"
            " WHERE s.id=? AND r.status='succeeded' ORDER BY r.seed",
            search_id,
        )
        return [r["reward"] for r in rows]

    def finish(self, search_id: str, status: str, reason: str | None = None) -> None:
        with self.store.tx() as db:
            db.execute(
                "UPDATE searches SET status=?, reason=?, updated_at=? WHERE id=?",
                (status, reason, time.time(), search_id),
            )

    # -- epochs and ideas ---------------------------------------------------------------

    def epochs_generated(self, search_id: str) -> list[int]:
        rows = self._rows(
            "SELECT epoch FROM search_epochs WHERE search_id=? ORDER BY epoch", search_id
        )
        return [r["epoch"] for r in rows]

    def record_ideas(
        self,
        search_id: str,
        epoch: int,
        first_position: int,
        ideas: list[tuple[str, str, str, dict[str, Any]]],
        env: str,
        env_hash: str,
        scale: str,
        close_epoch: bool = False,
    ) -> list[str]:
        """Write ideas (text, role, ideator, payload) in one transaction; returns their ids.
        `close_epoch` also marks the epoch generated, in the same transaction."""
        now = time.time()
        ids = []
        with self.store.tx() as db:
            for k, (text, role, ideator, payload) in enumerate(ideas):
                idea_id = new_id("idea")
                db.execute(
                    "INSERT INTO ideas VALUES (?,?,?,?,?,?,?)",
                    (idea_id, text, env, env_hash, scale, "search", now),
                )
                db.execute(
                    "INSERT INTO search_ideas VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        idea_id,
                        search_id,
                        epoch,
                        role,
                        ideator,
                        "proposed",
                        None,
                        None,
                        json.dumps(payload),
                        first_position + k,
                    ),
                )
                ids.append(idea_id)
            if close_epoch:
                db.execute(
                    "INSERT INTO search_epochs VALUES (?,?,?)", (search_id, epoch, "generated")
                )
        return ids

    def record_epoch(
        self,
        search_id: str,
        epoch: int,
        ideas: list[tuple[str, str, str, dict[str, Any]]],
        env: str,
        env_hash: str,
        scale: str,
    ) -> list[str]:
        """An epoch's ideas, written at once with the epoch: it is never generated twice."""
        return self.record_ideas(search_id, epoch, 0, ideas, env, env_hash, scale, True)

    def set_status(
        self, idea_id: str, status: str, reason: str | None = None, duplicate_of: str | None = None
    ) -> None:
        with self.store.tx() as db:
            db.execute(
                "UPDATE search_ideas SET status=?, reason=?, duplicate_of=? WHERE idea_id=?",
                (status, reason, duplicate_of, idea_id),
            )

    def finish_epoch(self, search_id: str, epoch: int) -> None:
        with self.store.tx() as db:
            db.execute(
                "UPDATE search_epochs SET status='done' WHERE search_id=? AND epoch=?",
                (search_id, epoch),
            )

    def ideas(self, search_id: str, epoch: int | None = None) -> list[ArchivedIdea]:
        """Every idea of the search (or of one epoch) with its best final reward, in order."""
        sql = (
            "SELECT s.*, i.text, (SELECT MAX(r.reward) FROM candidates c JOIN runs r"
            " ON r.candidate_id = c.id WHERE c.idea_id = s.idea_id AND r.status='succeeded'"
            f" AND r.seed < {HELD_OUT_SEED})"
            " AS reward FROM search_ideas s JOIN ideas i ON i.id = s.idea_id WHERE s.search_id=?"
        )
        args: list[Any] = [search_id]
        if epoch is not None:
            sql += " AND s.epoch=?"
            args.append(epoch)
        sql += " ORDER BY s.epoch, s.position"
        return [
            ArchivedIdea(
                r["idea_id"],
                r["text"],
                r["epoch"],
                r["role"],
                r["status"],
                r["reason"],
                r["reward"],
                json.loads(r["payload"] or "{}"),
            )
            for r in self._rows(sql, *args)
        ]

    def close_interrupted_runs(self, search_id: str) -> int:
        """Runs a killed process left `running`: mark them cancelled; their ideas run again."""
        n = self.store.close_interrupted(
            "SELECT idea_id FROM search_ideas WHERE search_id=?", (search_id,), "search"
        )
        with self.store.tx() as db:
            db.execute(
                "UPDATE search_ideas SET status='proposed' WHERE search_id=? AND status='running'",
                (search_id,),
            )
        return n
