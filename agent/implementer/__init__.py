"""The implementer: idea text -> edits -> a validated commit on the baseline.

Public surface: `implement`, `ImplementerConfig`, `Implementation`, `ContextTooLarge`.
"""

from agent.implementer.context import ContextTooLarge
from agent.implementer.implement import (
    CURRENT_CANDIDATE,
    Implementation,
    ImplementerConfig,
    implement,
)

__all__ = [
    "CURRENT_CANDIDATE",
    "ContextTooLarge",
    "Implementation",
    "ImplementerConfig",
    "implement",
]
