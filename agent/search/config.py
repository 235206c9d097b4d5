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
    baseline_seeds: int = setting(
        3, "Baseline runs in screening, seeds 0..N-1 (the noise estimate).", min=1
    )
    screen_seeds: int = setting(
        1, "Seeds each idea runs in screening, 0..N-1: matched to the baseline's.", min=1
    )
    rerun_top: int = setting(
        3, "Finalists: the top ideas by screening, confirmed at the end.", min=0
    )
    rerun_seeds: int = setting(
        2,
        "Confirmation seeds (1000, 1001, ...): the baseline, every finalist and every control "
        "run on them, scored on the evaluator's confirm split.",
        min=1,
    )
    controls: bool = setting(
        False,
        "Add control arms run like ideas: the unchanged baseline as an idea, and the "
        "environment's own (e.g. a reward that ignores correctness). None may win.",
    )
    alpha: float = setting(0.05, "Significance level of the Holm-adjusted tests.")
    focus: str = setting(
        "",
        "A focus of the environment (its manifest's focus.NAME table, e.g. rewards): ideas may "
        "change only its files, only its knobs apply, and its check runs on every candidate.",
        show_default=False,
    )
    rank_by: str = setting(
        "",
        "Metric that ranks ideas in the ideator's feedback and picks finalists and ensemble "
        "members (default: the focus's rank_by, else the reward).",
        show_default=False,
    )
    ensembles: str = setting(
        "",
        "Ensemble sizes, e.g. 2,3,5: after the epochs, the top-k ideas are combined into one "
        "candidate each (the focus must declare how: focus.NAME.ensemble) and screened like ideas.",
        show_default=False,
    )
    screen: float = setting(
        0.0,
        "Multi-fidelity screening: every idea first trains for this share of the budget "
        "(e.g. 0.3), beside the baseline at that share; the best --promote share of each "
        "epoch, unless shown worse than that baseline, then trains at the full budget. 0: off.",
    )
    promote: float = setting(
        0.34, "With --screen: the share of each epoch's ideas promoted (at least one)."
    )
    seed: int = setting(0, "Seeds the ideator's sampling.")
    mode: SearchMode = setting(
        "epochs", "epochs (the published method, with barriers) or async (none)."
    )
    budget_usd: float | None = setting(None, "Stop cleanly at this LLM spend.")
    budget_gpu_hours: float | None = setting(None, "Stop cleanly at this many GPU-hours of runs.")

    def __post_init__(self) -> None:
        if self.mode not in SEARCH_MODES:  # a stored config is read back without the CLI
            raise ValueError(f"--mode is epochs or async, not {self.mode!r}")
        if self.screen_seeds > self.baseline_seeds:
            raise ValueError(
                f"--screen-seeds {self.screen_seeds} is above --baseline-seeds "
                f"{self.baseline_seeds}: every seed an idea runs needs the baseline's match"
            )
        self.ensemble_sizes()  # a malformed list fails before anything runs
        if self.ensembles and not self.focus:
            raise ValueError("--ensembles needs --focus: a focus says how ideas combine")
        if not 0 <= self.screen < 1:
            raise ValueError(
                f"--screen is a share of the training budget below 1 (e.g. 0.3), not {self.screen}"
            )
        if not 0 < self.promote <= 1:
            raise ValueError(f"--promote is a share above 0 and at most 1, not {self.promote}")
        if self.screen and self.mode != "epochs":
            raise ValueError("--screen promotes per epoch: use it with --mode epochs")
        if not 0 < self.alpha < 1:
            raise ValueError(f"--alpha must lie between 0 and 1, not {self.alpha}")
        for name in ("budget_usd", "budget_gpu_hours"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be above 0 (leave it out for no limit)")

    def ensemble_sizes(self) -> list[int]:
        """--ensembles as sorted distinct sizes; ValueError (one line) when malformed."""
        if not self.ensembles.strip():
            return []
        try:
            sizes = sorted({int(x) for x in self.ensembles.split(",") if x.strip()})
        except ValueError:
            raise ValueError(
                f"--ensembles takes sizes like 2,3,5, not {self.ensembles!r}"
            ) from None
        if not sizes or sizes[0] < 2:
            raise ValueError(f"--ensembles sizes must be 2 or more, not {self.ensembles!r}")
        return sizes
