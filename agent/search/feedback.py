"""What the ideator is told about earlier rounds: each round's ideas ranked by the search's
rank metric, with the focus's feedback metrics (e.g. F1, accuracy, precision, format rate and
the share of zero-advantage groups in a reward search), and a note where a score rose by
abstaining. Only screening runs reach it: confirmation is never shown to the ideator.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agent.search.abstention import watched_note
from agent.search.archive import ArchivedIdea
from agent.search.ranking import label, ranked
from agent.templating import Prompts

if TYPE_CHECKING:  # ideators.py imports this module
    from agent.search.ideators import IdeationContext

PROMPTS = Prompts(Path(__file__).with_name("prompts"))


def ranked_summary(ctx: IdeationContext) -> str:
    """Earlier rounds, each ranked best first by the rank metric, as a block that follows a
    prompt's list of ideas; "" before any result, and in a search with neither a rank metric
    nor feedback metrics (no focus, no --rank-by)."""
    if ctx.rank_by is None and not ctx.feedback:
        return ""  # a plain search: its prompts show rewards alone, as they always have
    rounds: dict[int, list[ArchivedIdea]] = {}
    for idea in ctx.history:
        if idea.epoch >= 0:
            rounds.setdefault(idea.epoch, []).append(idea)
    if not any(i.status == "succeeded" for ideas in rounds.values() for i in ideas):
        return ""
    columns = list(dict.fromkeys(c for c in [ctx.rank_by, *ctx.feedback] if c))
    blocks = []
    for epoch in sorted(rounds):
        ideas = rounds[epoch]
        scored = ranked(ideas, ctx.rank_by, ctx.env)
        failed = [i for i in ideas if i.status not in ("succeeded", "duplicate", "proposed")]
        lines = []
        for n, idea in enumerate(scored, 1):
            shown = [f"reward {idea.reward:.4g}"] if idea.reward is not None else []
            shown += [f"{c} {idea.metrics[c]:.4g}" for c in columns if c in idea.metrics]
            note = watched_note(idea.metrics, ctx.baseline_metrics, ctx.rank_by)
            lines.append(
                f"{n}. {', '.join(shown)}{f' (WARNING: {note})' if note else ''}: "
                f"{_first_line(idea.text)}"
            )
        lines += [f"- failed ({i.status}): {_first_line(i.text)}" for i in failed]
        blocks.append(f"## Round {epoch + 1}\n\n" + "\n".join(lines))
    base = ", ".join(
        f"{c} {ctx.baseline_metrics[c]:.4g}" for c in columns if c in ctx.baseline_metrics
    )
    text = PROMPTS.render(
        "ideate_ranked",
        rank=label(ctx.rank_by),
        rounds="\n\n".join(blocks),
        baseline=base or "unknown",
    )
    return "\n\n" + text.rstrip("\n")  # follows the prompt's list of ideas


def _first_line(text: str, limit: int = 300) -> str:
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    return (lines[0] if lines else "")[:limit]
