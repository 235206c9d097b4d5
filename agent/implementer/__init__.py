"""The implementer: idea text -> edits -> a validated commit on the baseline.

Public surface: `implement`, `ImplementerConfig`, `Implementation`, `ContextTooLarge`.
Names load on first use, so `agent.implementer.config` (read by the CLI at startup) does not
pull in git, the sandbox and the manifest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.implementer.attempts import CURRENT_CANDIDATE, Implementation, implement
    from agent.implementer.config import ImplementerConfig
    from agent.implementer.context import ContextTooLarge

_HOME = {
    "CURRENT_CANDIDATE": "agent.implementer.attempts",
    "ContextTooLarge": "agent.implementer.context",
    "Implementation": "agent.implementer.attempts",
    "ImplementerConfig": "agent.implementer.config",
    "implement": "agent.implementer.attempts",
}

__all__ = [
    "CURRENT_CANDIDATE",
    "ContextTooLarge",
    "Implementation",
    "ImplementerConfig",
    "implement",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'agent.implementer' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)
