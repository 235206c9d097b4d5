"""`SearchConfig`: every setting of a search, each with its help text.

The `executor search` options are generated from these fields (agent/cli/options.py), so the
command line and the stored settings cannot drift apart. Fixed at a search's start and stored
with it, so `--resume` cannot drift either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from agent.settings import setting

SearchMode = Literal["epochs", "async"]
SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)


@dataclass
class SearchConfig:
    """A search's settings; fixed at its start and stored, so a resume cannot drift."""

    epochs: int = setting(3, "Epochs of ideas.", min=1)
    ideas_per_epoch: int = setting(8, "Ideas generated per epoch.", min=1)
    ideator: str = setting(
        "hparam", "hparam, replay:FILE, PROVIDER:MODEL, or package.module:Class."
    )
    implementer: str = setting(
        "",
        "PROVIDER:MODEL that implements LLM ideas (default: the ideator's LLM).",
        show_default=False,
    )
    baseline_seeds: int = setting(3, "Baseline runs (the noise estimate).", min=1)
    rerun_top: int = setting(3, "Top ideas re-run at the end.", min=0)
    rerun_seeds: int = setting(2, "Held-out seeds per re-run idea.", min=1)
    seed: int = setting(0, "Seeds the ideator's sampling.")
    mode: SearchMode = setting(
        "epochs", "epochs (the published method, with barriers) or async (none)."
    )
    budget_usd: float | None = setting(None, "Stop cleanly at this LLM spend.")
    budget_gpu_hours: float | None = setting(None, "Stop cleanly at this many GPU-hours of runs.")

    def __post_init__(self) -> None:
        if self.mode not in SEARCH_MODES:  # a stored config is read back without the CLI
            raise ValueError(f"--mode is epochs or async, not {self.mode!r}")
        for name in ("budget_usd", "budget_gpu_hours"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be above 0 (leave it out for no limit)")
