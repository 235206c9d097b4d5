"""`setting`: how a settings dataclass (agent/search/config.py, agent/ideator_rl/config.py)
declares a field with its help text, which agent/cli/options.py turns into an option."""

from __future__ import annotations

from dataclasses import field
from typing import Any, TypeVar

T = TypeVar("T")


def setting(default: T, help: str, **meta: Any) -> T:
    """A field defaulting to `default`; `help` and the other metadata ("min", "flag", "hidden",
    "show_default", "cli") are agent/cli/options.py's."""
    return field(default=default, metadata={"help": help, **meta})
