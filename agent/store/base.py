"""The connection, transactions and numbered migrations every part of the store shares."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

DB_NAME = "executor.db"
_MIGRATION_NAME = re.compile(r"(\d{4})_\w+\.sql")
_JSON_COLUMNS = {
    "metrics",
    "flags",
    "timings",
    "config",
    "payload",
    "parts",
    "instruments",
    "conditions",
    "metric",
}


class StoreError(RuntimeError):
    pass


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def migrations() -> list[tuple[int, str]]:
    """(version, script) of every file in migrations/, in order; versions run 1, 2, 3, ..."""
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if match:
            found.append((int(match[1]), entry.read_text(encoding="utf-8")))
    found.sort()
    if [v for v, _ in found] != list(range(1, len(found) + 1)):
        raise StoreError(f"store migrations are not numbered 1..n: {[v for v, _ in found]}")
    return found


def _statements(script: str) -> Iterator[str]:
    """One SQL statement at a time: executescript() would commit the migration's transaction
    before running (Python 3.11), so each statement runs on its own inside it."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    leftover = [s for s in pending.splitlines() if s.strip() and not s.strip().startswith("--")]
    if leftover:
        raise StoreError(f"unterminated statement in a store migration: {pending.strip()[:60]}")


MIGRATIONS = migrations()
SCHEMA_VERSION = MIGRATIONS[-1][0]


class StoreBase:
    """One SQLite file per run directory. Every state change is its own committed transaction,
    written before the next step starts, so a killed process leaves a consistent record to
    resume from. WAL lets readers (`executor show`) work while a search writes."""

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / DB_NAME
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self.db.row_factory = sqlite3.Row
        self._depth = 0
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
        except StoreError:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction. Nested uses join the outermost one, so a method that
        writes in its own transaction can be grouped with others (ideas with their epoch)."""
        if self._depth:
            self._depth += 1
            try:
                yield self.db
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0
        self.db.execute("COMMIT")

    def schema_version(self) -> int:
        """The last migration applied; 0 for an empty file."""
        has_meta = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if has_meta is None:
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return 0 if row is None else int(row[0])

    def _migrate(self) -> None:
        # Read first without the write lock: readers of an up-to-date store never take it.
        if self._check_version() == SCHEMA_VERSION:
            return
        with self.tx() as db:
            version = self._check_version()  # again: another process may have migrated it
            for number, script in MIGRATIONS[version:]:
                try:
                    for statement in _statements(script):
                        db.execute(statement)
                except sqlite3.DatabaseError as e:
                    raise StoreError(
                        f"{self.path}: migration {number} failed ({e}); the store is unchanged "
                        f"at schema version {version}"
                    ) from None
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(number),)
                )

    def _check_version(self) -> int:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this executor "
                f"({SCHEMA_VERSION}): upgrade executor or use another --run-dir"
            )
        return version

    def _rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows as dicts, their JSON columns decoded."""
        rows = [dict(r) for r in self.db.execute(sql, args).fetchall()]
        for r in rows:
            for k in _JSON_COLUMNS & r.keys():
                if r[k] is not None:
                    r[k] = json.loads(r[k])
        return rows

    def _one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        rows = self._rows(sql, *args)
        return rows[0] if rows else None

    def _column(self, sql: str, *args: Any) -> list[Any]:
        return [r[0] for r in self.db.execute(sql, args).fetchall()]
