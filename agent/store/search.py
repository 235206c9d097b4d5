"""The search archive's tables: searches, their epochs, and each search idea's role and fate.

Same file and transactions as the ideas, candidates and runs, so a killed search resumes from
exactly what was written (agent/search/archive.py says how it uses them).
"""

from __future__ import annotations

import json
import time
from typing import Any

from agent.store.base import new_id
from agent.store.core import CoreTables

# (text, role, ideator, payload) of one idea to record.
SearchIdea = tuple[str, str, str, dict[str, Any]]


class SearchTables(CoreTables):
    def start_search(
        self,
        env: str,
        env_hash: str,
        scale: str,
        config: dict[str, Any],
        metric: dict[str, str] | None = None,
    ) -> str:
        """A new search; `metric` ({name, direction}) is what its verdicts are about."""
        search_id = new_id("search")
        now = time.time()
        with self.tx() as db:
            db.execute(
                "INSERT INTO searches VALUES (?,?,?,?,?,?,?,?,?,?,?)",
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
                    None if metric is None else json.dumps(metric, sort_keys=True),
                ),
            )
        return search_id

    def latest_search(self) -> dict[str, Any] | None:
        return self._one("SELECT * FROM searches ORDER BY created_at DESC LIMIT 1")

    def search(self, search_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM searches WHERE id=?", search_id)

    def set_search_baseline(self, search_id: str, candidate_id: str) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE searches SET baseline_candidate=? WHERE id=?", (candidate_id, search_id)
            )

    def search_baseline_rewards(self, search_id: str, fidelity: float | None = None) -> list[float]:
        """Rewards of the search's own baseline runs in screening, in seed order (its
        confirmation runs are read with the confirmation table, never fed back), at the full
        budget or at `fidelity`'s share of it."""
        return self._column(
            "SELECT r.reward FROM runs r JOIN searches s ON r.candidate_id = s.baseline_candidate"
            " WHERE s.id=? AND r.status='succeeded' AND COALESCE(r.split, 'screen')='screen'"
            " AND r.fidelity IS ? ORDER BY r.seed",
            search_id,
            fidelity,
        )

    def finish_search(self, search_id: str, status: str, reason: str | None = None) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE searches SET status=?, reason=?, updated_at=? WHERE id=?",
                (status, reason, time.time(), search_id),
            )

    def search_of_idea(self, idea_id: str) -> dict[str, Any] | None:
        """The idea's place in a search (search_id, epoch, position, role, status), if any."""
        return self._one("SELECT * FROM search_ideas WHERE idea_id=?", idea_id)

    def search_epochs(self, search_id: str) -> list[int]:
        """The epochs whose ideas were all generated, in order."""
        return self._column(
            "SELECT epoch FROM search_epochs WHERE search_id=? ORDER BY epoch", search_id
        )

    def add_search_ideas(
        self,
        search_id: str,
        epoch: int,
        ideas: list[SearchIdea],
        where: tuple[str, str, str],
        *,
        first_position: int = 0,
        close_epoch: bool = False,
    ) -> list[str]:
        """Ideas (source `search`) of environment `where` (env, env_hash, scale) and their
        archive rows, numbered from `first_position` within the epoch, in one transaction;
        returns their ids. `close_epoch` also marks the epoch generated, in the same one."""
        ids = []
        with self.tx() as db:
            for k, (text, role, ideator, payload) in enumerate(ideas):
                idea_id = self.add_idea(text, *where, "search")
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

    def set_search_idea_status(
        self, idea_id: str, status: str, reason: str | None = None, duplicate_of: str | None = None
    ) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE search_ideas SET status=?, reason=?, duplicate_of=? WHERE idea_id=?",
                (status, reason, duplicate_of, idea_id),
            )

    def finish_search_epoch(self, search_id: str, epoch: int) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE search_epochs SET status='done' WHERE search_id=? AND epoch=?",
                (search_id, epoch),
            )

    def search_ideas(
        self, search_id: str, confirm_seed: int, epoch: int | None = None
    ) -> list[dict[str, Any]]:
        """The search's ideas (or one epoch's), in order, each with its text and its mean
        succeeded reward in screening: the screen split and seeds below `confirm_seed` (a run
        from before splits has none, and counts as screening by its seed)."""
        sql = (
            "SELECT s.*, i.text, (SELECT AVG(r.reward) FROM candidates c JOIN runs r"
            " ON r.candidate_id = c.id WHERE c.idea_id = s.idea_id AND r.status='succeeded'"
            " AND COALESCE(r.split, 'screen') = 'screen' AND r.fidelity IS NULL"
            " AND r.seed < ?) AS reward"
            " FROM search_ideas s JOIN ideas i ON i.id = s.idea_id WHERE s.search_id=?"
        )
        args: list[Any] = [confirm_seed, search_id]
        if epoch is not None:
            sql += " AND s.epoch=?"
            args.append(epoch)
        return self._rows(sql + " ORDER BY s.epoch, s.position", *args)

    def search_idea_metrics(self, search_id: str, confirm_seed: int) -> dict[str, dict[str, float]]:
        """Per idea of the search: the mean of each numeric run metric over its succeeded
        screening runs (the screen split, or none, and seeds below `confirm_seed`)."""
        return self._metric_means(
            "c.idea_id IN (SELECT idea_id FROM search_ideas WHERE search_id=?)",
            search_id,
            confirm_seed,
        )

    def idea_screening_metrics(self, idea_id: str, confirm_seed: int) -> dict[str, float]:
        """The same means for one idea (a search's baseline, whose idea is not an archived
        one): {} when it has no succeeded screening run."""
        return self._metric_means("c.idea_id=?", idea_id, confirm_seed).get(idea_id, {})

    def _metric_means(self, which: str, key: str, confirm_seed: int) -> dict[str, dict[str, float]]:
        """Means per (idea, metric) over the ideas `which` selects (given `key`); a metric is
        averaged over the runs that report it, and only numbers count (booleans do not)."""
        out: dict[str, dict[str, float]] = {}
        rows = self.db.execute(
            "SELECT c.idea_id, j.key, AVG(j.value) FROM runs r JOIN candidates c"
            " ON r.candidate_id = c.id, json_each(r.metrics) j WHERE "
            + which
            + " AND r.status='succeeded' AND COALESCE(r.split, 'screen') = 'screen'"
            " AND r.fidelity IS NULL AND r.seed < ? AND j.type IN ('integer', 'real')"
            " GROUP BY c.idea_id, j.key ORDER BY c.idea_id, j.key",
            (key, confirm_seed),
        ).fetchall()
        for idea_id, name, mean in rows:
            out.setdefault(idea_id, {})[name] = float(mean)
        return out

    def close_interrupted_search(self, search_id: str) -> int:
        """Runs a killed search left `running`: cancelled, their candidates abandoned and
        their ideas back to `proposed`, so they run again. Returns how many runs closed."""
        with self.tx() as db:
            # The search's baseline too: its confirmation runs may have been interrupted.
            n = self._close_interrupted(
                "SELECT idea_id FROM search_ideas WHERE search_id=? UNION SELECT c.idea_id"
                " FROM candidates c JOIN searches s ON c.id = s.baseline_candidate WHERE s.id=?",
                (search_id, search_id),
                "search",
            )
            db.execute(
                "UPDATE search_ideas SET status='proposed' WHERE search_id=? AND status='running'",
                (search_id,),
            )
        return n

    def idea_runs(
        self, idea_id: str, split: str, fidelity: float | None = None
    ) -> list[dict[str, Any]]:
        """The idea's runs on `split` that were not cancelled, oldest first (id, candidate,
        seed, status, reward, metrics), at the full budget or at `fidelity`'s share of it. A
        run from before splits counts by its seed: the searches of that time re-ran their best
        ideas on seeds from 1000."""
        return self._rows(
            "SELECT r.id, r.candidate_id, r.seed, r.status, r.reward, r.metrics FROM runs r"
            " JOIN candidates c ON r.candidate_id = c.id WHERE c.idea_id=? AND COALESCE(r.split,"
            " CASE WHEN r.seed >= 1000 THEN 'confirm' ELSE 'screen' END)=?"
            " AND r.fidelity IS ? AND r.status != 'cancelled' ORDER BY r.started_at",
            idea_id,
            split,
            fidelity,
        )

    def save_search_table(self, search_id: str, name: str, body: str, sha256: str) -> None:
        """A table a search computed (canonical JSON), kept so a recomputation can be
        compared with it byte for byte."""
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO search_tables VALUES (?,?,?,?,?)",
                (search_id, name, body, sha256, time.time()),
            )

    def search_table(self, search_id: str, name: str) -> dict[str, Any] | None:
        return self._one(
            "SELECT body, sha256, created_at FROM search_tables WHERE search_id=? AND name=?",
            search_id,
            name,
        )
