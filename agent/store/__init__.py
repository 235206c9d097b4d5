"""The store: one SQLite file per run directory, and the only code that speaks SQL.

Every table lives here: the executor's ideas, candidates, runs and LLM calls (core.py), the
search archive (search.py) and the ideator training (training.py). The schema is built by
the numbered scripts in migrations/, applied in order when a store opens; the last applied
is recorded in the meta table, and a store written by a newer executor is refused.
"""

from __future__ import annotations

from agent.store.base import DB_NAME, SCHEMA_VERSION, StoreError, new_id
from agent.store.core import TERMINAL_CANDIDATE
from agent.store.search import SearchIdea, SearchTables
from agent.store.training import CachedResult, SampleRecord, TrainingTables, training_source


class Store(SearchTables, TrainingTables):
    """Every table of a run directory, behind named methods."""


__all__ = [
    "DB_NAME",
    "SCHEMA_VERSION",
    "TERMINAL_CANDIDATE",
    "CachedResult",
    "SampleRecord",
    "SearchIdea",
    "Store",
    "StoreError",
    "new_id",
    "training_source",
]
