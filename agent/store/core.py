"""Ideas, candidates (with their attempts and diffs), runs and LLM calls."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from agent.store.base import StoreBase, StoreError, new_id
from runner.items import ENCODING, ItemOutcomes, ItemsError

TERMINAL_CANDIDATE = {"validated", "rejected", "error", "abandoned"}


class CoreTables(StoreBase):
    """What `executor run` writes: the record of every idea, candidate and run."""

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
        flags: list[str] | None = None,
    ) -> None:
        if status not in TERMINAL_CANDIDATE:
            raise ValueError(f"not a terminal candidate status: {status}")
        with self.tx() as db:
            db.execute(
                "UPDATE candidates SET status=?, commit_sha=?, diff=?, error=?, flags=?,"
                " updated_at=? WHERE id=?",
                (
                    status,
                    commit_sha,
                    diff,
                    error,
                    json.dumps(flags) if flags else None,
                    time.time(),
                    cand_id,
                ),
            )

    def start_run(
        self,
        cand_id: str,
        scale: str,
        seed: int,
        sandbox: str,
        artifacts: Path,
        run_id: str,
        *,
        split: str = "screen",
        conditions: dict[str, Any] | None = None,
        fidelity: float | None = None,
    ) -> None:
        """A run about to start; `conditions` (host, budget, clock, ...) say what a baseline
        must share with it to be shown beside it; `fidelity`: the share of the training budget
        it gets (None: all of it)."""
        with self.tx() as db:
            db.execute(
                "INSERT INTO runs (id, candidate_id, scale, seed, sandbox, status, artifacts,"
                " started_at, split, conditions, fidelity) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    cand_id,
                    scale,
                    seed,
                    sandbox,
                    "running",
                    str(artifacts),
                    time.time(),
                    split,
                    json.dumps(conditions or {}, sort_keys=True),
                    fidelity,
                ),
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
        items: ItemOutcomes | None = None,
    ) -> None:
        """The run's end, with its per-item outcomes (packed and hashed) in the same
        transaction: a run's result and its items are stored together or not at all."""
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
            if items is not None:
                db.execute(
                    "INSERT OR REPLACE INTO run_items VALUES (?,?,?,?,?)",
                    (run_id, len(items), ENCODING, items.sha256(), items.pack()),
                )

    def run_items(self, run_id: str) -> ItemOutcomes | None:
        """A run's per-item outcomes, checked against their hash; None for a run without
        (one from before items were kept, or whose evaluator writes none)."""
        row = self.db.execute(
            "SELECT encoding, sha256, blob FROM run_items WHERE run_id=?", (run_id,)
        ).fetchone()
        if row is None:
            return None
        if row["encoding"] != ENCODING:
            raise StoreError(f"run {run_id}: items in unknown encoding {row['encoding']!r}")
        try:
            return ItemOutcomes.unpack(bytes(row["blob"]), row["sha256"])
        except ItemsError as e:
            raise StoreError(f"run {run_id}: {e}") from None

    def _close_interrupted(self, ideas_sql: str, args: tuple[Any, ...], process: str) -> int:
        """Runs and candidates a killed `process` left open, for the ideas that `ideas_sql` (a
        SELECT of idea ids, written by the store's own typed methods: the search's and the
        training's close_interrupted_*) picks: runs end `cancelled`, candidates `abandoned`,
        so their ideas run again on resume. Returns how many runs were closed."""
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

    def idea(self, idea_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM ideas WHERE id=?", idea_id)

    def candidate(self, cand_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM candidates WHERE id=?", cand_id)

    def run(self, run_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM runs WHERE id=?", run_id)

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

    def baseline_runs(self, env_hash: str, scale: str) -> list[dict[str, Any]]:
        """Succeeded baseline runs of this environment version and scale, oldest first: each
        with its candidate (one baseline measurement), seed, reward, split and conditions."""
        return self._rows(
            "SELECT runs.id, runs.candidate_id, runs.seed, runs.reward, runs.split,"
            " runs.conditions, runs.started_at FROM runs"
            " JOIN candidates ON runs.candidate_id = candidates.id"
            " JOIN ideas ON candidates.idea_id = ideas.id WHERE ideas.source = 'baseline'"
            " AND ideas.env_hash = ? AND runs.scale = ? AND runs.status = 'succeeded'"
            " ORDER BY runs.started_at",
            env_hash,
            scale,
        )

    def baseline_rewards(self, env_hash: str, scale: str) -> list[float]:
        """Rewards of every succeeded baseline run of this environment version and scale."""
        return [float(r["reward"]) for r in self.baseline_runs(env_hash, scale)]

    def spend(self) -> dict[str, float]:
        """What the run directory has spent so far: LLM dollars and GPU-hours of runs."""
        usd = self.db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM llm_calls").fetchone()[0]
        gpu_s = self.db.execute(
            "SELECT COALESCE(SUM(json_extract(timings, '$.gpu_seconds')), 0) FROM runs"
        ).fetchone()[0]
        return {"usd": float(usd), "gpu_hours": float(gpu_s) / 3600}

    def validated_diff(self, idea_id: str) -> str | None:
        """The diff of the idea's first validated candidate; None when there is none or it is
        empty."""
        diffs = self._column(
            "SELECT diff FROM candidates WHERE idea_id=? AND status='validated' "
            "ORDER BY created_at LIMIT 1",
            idea_id,
        )
        return diffs[0] if diffs and diffs[0] else None

    def validated_candidate(self, idea_id: str) -> dict[str, Any] | None:
        """The idea's first validated candidate with a commit, None when there is none."""
        return self._one(
            "SELECT * FROM candidates WHERE idea_id=? AND status='validated' "
            "AND commit_sha IS NOT NULL ORDER BY created_at LIMIT 1",
            idea_id,
        )

    def first_candidate(self, idea_id: str) -> dict[str, Any] | None:
        return self._one(
            "SELECT * FROM candidates WHERE idea_id=? ORDER BY created_at LIMIT 1", idea_id
        )

    def first_uncancelled_run(self, cand_id: str) -> dict[str, Any] | None:
        """The candidate's first full-budget run that was not cancelled (an interrupted run is
        re-done; a --screen search's short looks are not the idea's result)."""
        return self._one(
            "SELECT * FROM runs WHERE candidate_id=? AND status != 'cancelled' "
            "AND fidelity IS NULL ORDER BY started_at LIMIT 1",
            cand_id,
        )

    def first_uncancelled_run_of_idea(self, idea_id: str) -> dict[str, Any] | None:
        """The first run of any of the idea's candidates that was not cancelled."""
        return self._one(
            "SELECT r.* FROM runs r JOIN candidates c ON r.candidate_id=c.id WHERE "
            "c.idea_id=? AND r.status != 'cancelled' ORDER BY r.started_at LIMIT 1",
            idea_id,
        )

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
