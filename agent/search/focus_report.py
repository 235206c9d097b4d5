"""The report's "Reward search" section: what a focused search (`--focus`, e.g. rewards) did.

Per round (an epoch of ideas; controls and ensembles apart) how many ideas were scored and the
mean and best of the metric the search ranks by; the ensembles and their members; then every
reward with its code (the validated candidate's diff, which under the focus touches only the
focus's files), the check's flags and any sign that its score rose by abstention. The stored
config is read with .get: a search from before focuses has none of these keys.
"""

from __future__ import annotations

import statistics
from typing import Any

from agent.pages.svg import Chart, line_chart
from agent.search.abstention import watched_note
from agent.search.archive import Archive, ArchivedIdea
from agent.search.controls import is_null
from agent.store import Store

CONTROL, ENSEMBLE = "control", "ensemble"


def reward_search(store: Store, search: dict[str, Any]) -> dict[str, Any] | None:
    """The section's content, or None when the search had no focus."""
    config = search["config"]
    if not config.get("focus"):
        return None
    rank = config.get("rank_by") or "reward"
    archive = Archive(store)
    ideas = archive.ideas(search["id"], controls=True)
    base = archive.baseline_metrics(search["id"])
    rounds = _rounds(ideas, rank)
    return {
        "focus": config["focus"],
        "rank": rank,
        "rounds": rounds,
        "chart": _chart(rounds, rank),
        "ensembles": _ensembles(ideas, rank),
        # The null control is the baseline's reward: no code of its own to show.
        "rewards": [_reward(store, i, rank, base) for i in ideas if not is_null(i.role, i.payload)],
    }


def _value(idea: ArchivedIdea, rank: str) -> float | None:
    return idea.reward if rank == "reward" else idea.metrics.get(rank)


def _shown(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _rounds(ideas: list[ArchivedIdea], rank: str) -> list[dict[str, Any]]:
    """Each epoch's ideator ideas: how many, how many scored, the mean and best score."""
    ideator = [i for i in ideas if i.epoch >= 0 and i.role not in (CONTROL, ENSEMBLE)]
    out = []
    for epoch in sorted({i.epoch for i in ideator}):
        here = [i for i in ideator if i.epoch == epoch]
        values = [v for i in here if i.status == "succeeded" and (v := _value(i, rank)) is not None]
        out.append(
            {
                "epoch": epoch,
                "ideas": len(here),
                "n": len(values),
                "mean": statistics.fmean(values) if values else None,
                "best": max(values) if values else None,
            }
        )
    return out


def _chart(rounds: list[dict[str, Any]], rank: str) -> Chart:
    series = {
        name: [(r["epoch"], r[name]) for r in rounds if r[name] is not None]
        for name in ("mean", "best")
    }
    return line_chart(series, f"{rank} per round", "round", rank)


def _label(idea: ArchivedIdea) -> str:
    first = idea.text.strip().splitlines()[0] if idea.text.strip() else ""
    return f"{idea.idea_id}: {first[:80]}"


def _ensembles(ideas: list[ArchivedIdea], rank: str) -> list[dict[str, Any]]:
    by_id = {i.idea_id: i for i in ideas}
    return [
        {
            "label": _label(e),
            "status": e.status,
            "value": _shown(_value(e, rank)),
            "members": [
                {
                    "label": _label(by_id[m]) if m in by_id else str(m),
                    "value": _shown(_value(by_id[m], rank)) if m in by_id else "-",
                }
                for m in e.payload.get("members") or []
            ],
        }
        for e in ideas
        if e.role == ENSEMBLE
    ]


def _reward(store: Store, idea: ArchivedIdea, rank: str, base: dict[str, float]) -> dict[str, Any]:
    """One reward: its code as its validated candidate left it, flags and abstention note."""
    cand = store.validated_candidate(idea.idea_id)
    diff = (cand["diff"] if cand else None) or idea.payload.get("edits") or ""
    return {
        "label": _label(idea),
        "text": idea.text,
        "epoch": idea.epoch,
        "role": idea.role,
        "status": idea.status,
        "value": _shown(_value(idea, rank)),
        "diff": diff,
        "flags": list(cand.get("flags") or []) if cand else [],  # the store decodes its JSON
        "abstention": watched_note(idea.metrics, base, rank),
    }
