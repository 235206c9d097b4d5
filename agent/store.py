"""The store (Contract 4 of DESIGN.md): one SQLite file per run directory.

Ideas, candidates (with their attempts and diffs), runs, and LLM calls. Every state change
is its own committed transaction, written before the next step starts, so a killed process
leaves a consistent record to resume from. WAL lets readers (`executor show`) work while a
search writes.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
DB_NAME = "executor.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ideas (
    id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    env TEXT NOT NULL,
    env_hash TEXT NOT NULL,
    scale TEXT NOT NULL,
    source TEXT NOT NULL,              -- cli | patch | baseline | search | ideator
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS candidates (
    id TEXT PRIMARY KEY,
    idea_id TEXT NOT NULL REFERENCES ideas(id),
    sample INTEGER NOT NULL,
    status TEXT NOT NULL,              -- implementing | validated | rejected | error | abandoned
    implementer TEXT NOT NULL,         -- provider:model, "patch" or "baseline"
    parent_commit TEXT NOT NULL,
    commit_sha TEXT,
    diff TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    candidate_id TEXT NOT NULL REFERENCES candidates(id),
    n INTEGER NOT NULL,
    response TEXT NOT NULL,            -- what the LLM (or the patch file) said
    phase TEXT,                        -- where it failed: parse|apply|protected|compile|smoke
    error TEXT,                        -- NULL when the attempt validated
    created_at REAL NOT NULL,
    PRIMARY KEY (candidate_id, n)
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    candidate_id TEXT NOT NULL REFERENCES candidates(id),
    scale TEXT NOT NULL,
    seed INTEGER NOT NULL,
    sandbox TEXT NOT NULL,
    status TEXT NOT NULL,              -- running, then one of Contract 2's statuses
    reason TEXT,
    metrics TEXT,                      -- JSON object
    flags TEXT,                        -- JSON list
    reward REAL,
    timings TEXT,                      -- JSON: seconds per step
    artifacts TEXT NOT NULL,           -- folder with logs/, output/, eval/
    started_at REAL NOT NULL,
    ended_at REAL
);
CREATE TABLE IF NOT EXISTS llm_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    candidate_id TEXT REFERENCES candidates(id),
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd REAL,
    latency_s REAL NOT NULL,
    cached INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    error TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS candidates_by_idea ON candidates(idea_id);
CREATE INDEX IF NOT EXISTS runs_by_candidate ON runs(candidate_id);
CREATE INDEX IF NOT EXISTS calls_by_candidate ON llm_calls(candidate_id);
"""

TERMINAL_CANDIDATE = {"validated", "rejected", "error", "abandoned"}
_JSON_COLUMNS = {"metrics", "flags", "timings"}


class StoreError(RuntimeError):
    pass


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


class Store:
    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / DB_NAME
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self.db.row_factory = sqlite3.Row
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable, fast
            self._migrate()
        except sqlite3.DatabaseError as e:
            self.db.close()
            # Never repaired or overwritten here: it may be someone's only archive.
            raise StoreError(
                f"{self.path} is not a readable executor store ({e}); restore it from a backup "
                "or use another --run-dir"
            ) from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        # The script carries its own transaction: executescript() would commit ours.
        self.db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        with self.tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {row[0]}, newer than this executor "
                    f"({SCHEMA_VERSION}): upgrade executor or use another --run-dir"
                )

    # -- writes ---------------------------------------------------------------------------

    def add_idea(self, text: str, env: str, env_hash: str, scale: str, source: str) -> str:
        idea_id = new_id("idea")
        with self.tx() as db:
            db.execute(
                "INSERT INTO ideas VALUES (?,?,?,?,?,?,?)",
                (idea_id, text, env, env_hash, scale, source, time.time()),
            )
        return idea_id

    def add_candidate(self, idea_id: str, sample: int, implementer: str, parent: str) -> str:
        cand_id = new_id("cand")
        now = time.time()
        with self.tx() as db:
            db.execute(
                "INSERT INTO candidates (id, idea_id, sample, status, implementer, parent_commit,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
                (cand_id, idea_id, sample, "implementing", implementer, parent, now, now),
            )
        return cand_id

    def add_attempt(
        self, cand_id: str, n: int, response: str, phase: str | None, error: str | None
    ) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO attempts VALUES (?,?,?,?,?,?)",
                (cand_id, n, response, phase, error, time.time()),
            )

    def finish_candidate(
        self,
        cand_id: str,
        status: str,
        *,
        commit_sha: str | None = None,
        diff: str | None = None,
        error: str | None = None,
    ) -> None:
        if status not in TERMINAL_CANDIDATE:
            raise ValueError(f"not a terminal candidate status: {status}")
        with self.tx() as db:
            db.execute(
                "UPDATE candidates SET status=?, commit_sha=?, diff=?, error=?, updated_at=?"
                " WHERE id=?",
                (status, commit_sha, diff, error, time.time(), cand_id),
            )

    def start_run(
        self, cand_id: str, scale: str, seed: int, sandbox: str, artifacts: Path, run_id: str
    ) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO runs (id, candidate_id, scale, seed, sandbox, status, artifacts,"
                " started_at) VALUES (?,?,?,?,?,?,?,?)",
                (run_id, cand_id, scale, seed, sandbox, "running", str(artifacts), time.time()),
            )

    def finish_run(
        self,
        run_id: str,
        status: str,
        *,
        reason: str | None,
        metrics: dict[str, float],
        flags: list[str],
        reward: float | None,
        timings: dict[str, float],
    ) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE runs SET status=?, reason=?, metrics=?, flags=?, reward=?, timings=?,"
                " ended_at=? WHERE id=?",
                (
                    status,
                    reason,
                    json.dumps(metrics),
                    json.dumps(flags),
                    reward,
                    json.dumps(timings),
                    time.time(),
                    run_id,
                ),
            )

    def close_interrupted(self, ideas_sql: str, args: tuple[Any, ...], process: str) -> int:
        """Runs and candidates a killed `process` left open, for the ideas that `ideas_sql` (a
        SELECT of idea ids) picks: runs end `cancelled`, candidates `abandoned`, so their ideas
        run again on resume. Returns how many runs were closed."""
        now = time.time()
        with self.tx() as db:
            cur = db.execute(
                f"UPDATE runs SET status='cancelled', reason='interrupted: the {process} "
                "process died; the idea runs again on resume', ended_at=? WHERE "
                "status='running' AND candidate_id IN (SELECT id FROM candidates WHERE "
                f"idea_id IN ({ideas_sql}))",
                (now, *args),
            )
            db.execute(
                "UPDATE candidates SET status='abandoned', error='interrupted', updated_at=? "
                f"WHERE status='implementing' AND idea_id IN ({ideas_sql})",
                (now, *args),
            )
        return int(cur.rowcount)

    def add_llm_call(self, cand_id: str | None, record: Any) -> None:
        """`record` is an agent.llm.CallRecord (duck-typed to keep the store import-light)."""
        with self.tx() as db:
            db.execute(
                "INSERT INTO llm_calls (candidate_id, provider, model, request_hash, input_tokens,"
                " output_tokens, cost_usd, latency_s, cached, retries, error, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    cand_id,
                    record.provider,
                    record.model,
                    record.request_hash,
                    record.input_tokens,
                    record.output_tokens,
                    record.cost_usd,
                    record.latency_s,
                    int(record.cached),
                    record.retries,
                    record.error,
                    time.time(),
                ),
            )

    # -- reads ----------------------------------------------------------------------------

    def _rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        rows = [dict(r) for r in self.db.execute(sql, args).fetchall()]
        for r in rows:
            for k in _JSON_COLUMNS & r.keys():
                if r[k] is not None:
                    r[k] = json.loads(r[k])
        return rows

    def idea(self, idea_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM ideas WHERE id=?", idea_id)
        return rows[0] if rows else None

    def candidate(self, cand_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM candidates WHERE id=?", cand_id)
        return rows[0] if rows else None

    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM runs WHERE id=?", run_id)
        return rows[0] if rows else None

    def candidates(self, idea_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM candidates WHERE idea_id=? ORDER BY sample", idea_id)

    def attempts(self, cand_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM attempts WHERE candidate_id=? ORDER BY n", cand_id)

    def runs(self, cand_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM runs WHERE candidate_id=? ORDER BY started_at", cand_id)

    def llm_calls(self, cand_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM llm_calls WHERE candidate_id=? ORDER BY id", cand_id)

    def latest_ideas(self, limit: int) -> list[dict[str, Any]]:
        """Newest ideas first, each with its best run's status and reward."""
        return self._rows(
            "SELECT ideas.id, ideas.text, ideas.env, ideas.scale, ideas.source, ideas.created_at,"
            " (SELECT COUNT(*) FROM candidates c WHERE c.idea_id = ideas.id) AS candidates,"
            " (SELECT c.status FROM candidates c WHERE c.idea_id = ideas.id"
            "   ORDER BY c.status = 'validated' DESC LIMIT 1) AS candidate_status,"
            " (SELECT MAX(r.reward) FROM runs r JOIN candidates c ON r.candidate_id = c.id"
            "   WHERE c.idea_id = ideas.id) AS best_reward,"
            " (SELECT COUNT(*) FROM runs r JOIN candidates c ON r.candidate_id = c.id"
            "   WHERE c.idea_id = ideas.id) AS runs"
            " FROM ideas ORDER BY ideas.created_at DESC LIMIT ?",
            limit,
        )

    def baseline_rewards(self, env_hash: str, scale: str) -> list[float]:
        """Rewards of succeeded baseline runs of this environment version and scale."""
        rows = self.db.execute(
            "SELECT runs.reward FROM runs JOIN candidates ON runs.candidate_id = candidates.id"
            " JOIN ideas ON candidates.idea_id = ideas.id WHERE ideas.source = 'baseline'"
            " AND ideas.env_hash = ? AND runs.scale = ? AND runs.status = 'succeeded'",
            (env_hash, scale),
        )
        return [float(r[0]) for r in rows]

    def count(self, table: str) -> int:
        if table not in {"ideas", "candidates", "attempts", "runs", "llm_calls"}:
            raise ValueError(table)
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def resolve(self, ident: str) -> tuple[str, dict[str, Any]]:
        """Find an idea, candidate or run by full id or unique prefix: (kind, row)."""
        matches: list[tuple[str, dict[str, Any]]] = []
        for kind, table in (("idea", "ideas"), ("candidate", "candidates"), ("run", "runs")):
            for row in self._rows(f"SELECT * FROM {table} WHERE id LIKE ? || '%'", ident):
                matches.append((kind, row))
        if not matches:
            raise StoreError(f"no idea, candidate or run with id {ident!r} in {self.path}")
        if len(matches) > 1:
            ids = ", ".join(r["id"] for _, r in matches[:5])
            raise StoreError(f"id {ident!r} is ambiguous ({ids}); give more characters")
        return matches[0]
