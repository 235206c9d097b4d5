"""`executor report RUN_DIR`: one self-contained HTML file about a search.

Plots are inline SVG (best-so-far and mean screening reward per epoch, execution success rate,
idea categories, diversity, spend). The confirmation table (agent/search/verdicts.py) is the
one the search stored when it ended, with its warnings; its rows open the idea, its diff and
the tails of its logs, and below it the pairwise tests among the finalists. A focused search
(`--focus`) gets a "Reward search" section (agent/search/focus_report.py) holding its rounds,
ensembles, the confirmation table and each reward's code. Nothing is fetched when the file is
opened.
"""

from __future__ import annotations

import itertools
import json
import statistics
from pathlib import Path
from typing import Any

from agent.dedup import jaccard, shingles
from agent.pages import render_page, write_page
from agent.pages.svg import Chart, bar_chart, line_chart
from agent.search.archive import Archive
from agent.search.confirm import TABLE
from agent.search.export import trajectories
from agent.search.fidelity import percent, promotions
from agent.search.focus_report import reward_search
from agent.search.loop import spend
from agent.search.stats import interval
from agent.search.table_view import COLUMNS, PAIR_COLUMNS, PAIRS_NOTE, display_pairs, display_rows
from agent.store import Store

TEMPLATES = Path(__file__).parent / "templates"
LOG_TAIL_LINES = 40


def render_report(store: Store, search_id: str | None = None) -> str:
    archive = Archive(store)
    search = archive.latest() if search_id is None else archive.get(search_id)
    if search is None:
        raise ValueError("this run directory holds no search: run `executor search` first")
    rows = trajectories(store, search["id"])
    baseline = archive.baseline_rewards(search["id"])
    spent = spend(store)
    title = f"Search {search['id']}: {search['env']} ({search['scale']})"
    meta = [
        ("status", f"{search['status']}" + (f" ({search['reason']})" if search["reason"] else "")),
        ("ideator", str(search["config"].get("ideator"))),
        ("implementer", str(search["config"].get("implementer") or "-")),
        ("baseline reward (screening)", str(interval(baseline)) if baseline else "not measured"),
        ("ideas", str(len(rows))),
        ("LLM spend", f"${spent['usd']:.4f}"),
        ("GPU-hours", f"{spent['gpu_hours']:.3f}"),
    ]
    return render_page(
        TEMPLATES,
        "report.html",
        title=title,
        meta=meta,
        plots=_plots(rows, baseline, spent),
        confirmation=_confirmation(store, search["id"], rows),
        columns=COLUMNS,
        pair_columns=PAIR_COLUMNS,
        reward_search=reward_search(store, search),
        screening=_screening(store, search, rows),
        ideas=[_idea_row(store, r) for r in rows],
        log_tail_lines=LOG_TAIL_LINES,
    )


def write_report(store: Store, out: Path, search_id: str | None = None) -> Path:
    html = render_report(store, search_id)
    return write_page(out, html)


def _plots(
    rows: list[dict[str, Any]], baseline: list[float], spent: dict[str, float]
) -> list[Chart]:
    epochs = sorted({r["epoch"] for r in rows})
    best, mean, success, diversity = [], [], [], []
    best_so_far = float("-inf")
    for e in epochs:
        here = [r for r in rows if r["epoch"] == e]
        rewards = [
            r["result"]["reward"]
            for r in here
            if r["result"]["reward"] is not None and r["status"] == "succeeded"
        ]
        if rewards:
            best_so_far = max(best_so_far, max(rewards))
            mean.append((e, statistics.fmean(rewards)))
        if best_so_far > float("-inf"):
            best.append((e, best_so_far))
        ran = [r for r in here if r["status"] not in ("duplicate", "proposed")]
        if ran:
            success.append((e, sum(r["status"] == "succeeded" for r in ran) / len(ran)))
        grams = [shingles(r["idea"]) for r in here]
        pairs = list(itertools.combinations(grams, 2))
        if pairs:
            diversity.append((e, statistics.fmean(1 - jaccard(a, b) for a, b in pairs)))
    series = {"best so far": best, "mean of succeeded": mean}
    if baseline:
        series["baseline mean"] = [(e, statistics.fmean(baseline)) for e in epochs]
    categories: dict[str, float] = {}
    for r in rows:
        key = r["category"] or ("duplicate" if r["status"] == "duplicate" else "not implemented")
        categories[key] = categories.get(key, 0) + 1
    return [
        line_chart(series, "Reward per epoch", "epoch", "reward"),
        line_chart({"succeeded / ran": success}, "Execution success rate", "epoch", "rate"),
        bar_chart(categories, "Idea categories (from the diffs)", "ideas", "{:.0f}"),
        line_chart(
            {"mean pairwise distance": diversity},
            "Diversity within an epoch",
            "epoch",
            "1 - n-gram Jaccard",
        ),
        bar_chart(
            {"LLM $": spent["usd"], "GPU-hours": spent["gpu_hours"]},
            "Spend",
            "amount",
            "{:.4g}",
        ),
    ]


def _screening(
    store: Store, search: dict[str, Any], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each epoch's promotion decisions (a --screen search), beside the full-budget rewards."""
    epochs = int(search["config"].get("epochs") or 0)
    full = {r["idea_id"]: r["result"]["reward"] for r in rows}
    out = []
    for p in promotions(store, search["id"], epochs):
        decisions = [
            {
                "text": d.text,
                "reward": _shown(d.reward),
                "rank": d.rank if d.rank is not None else "-",
                "interval": "-"
                if d.diff is None
                else f"{d.diff:+.4g} [{d.diff_low:+.4g}, {d.diff_high:+.4g}]",
                "p_holm": "-" if d.p_holm is None else f"{d.p_holm:.3g}",
                "full": _shown(full.get(d.idea_id)),
                "promoted": d.promoted,
                "reason": d.reason,
            }
            for d in p.decisions
        ]
        out.append(
            {
                "epoch": p.epoch,
                "percent": percent(p.share),
                "promote": f"{p.promote:.0%} ({p.slots} per epoch)",
                "rank_by": p.rank_by,
                "baseline": _shown(p.baseline_reward),
                "promoted": sum(d.promoted for d in p.decisions),
                "decisions": decisions,
            }
        )
    return out


def _confirmation(
    store: Store, search_id: str, rows: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The stored confirmation table as display cells, each arm with its folded details."""
    stored = store.search_table(search_id, TABLE)
    if stored is None:
        return None
    table = json.loads(stored["body"])
    by_id = {r["idea_id"]: r for r in rows}
    cells = display_rows(table)
    arms = [None, *(by_id.get(r["idea_id"]) for r in table["rows"])]
    return {
        "metric": table["metric"],
        "direction": table["direction"],
        "alpha": table["alpha"],
        "samples": table["bootstrap_samples"],
        "seed": table["bootstrap_seed"],
        "sha256": stored["sha256"],
        "warnings": table["warnings"],
        "pairs": display_pairs(table),  # none in tables stored before pairs
        "pairs_note": PAIRS_NOTE,
        "rows": [
            {
                "cells": row,
                "details": _idea_details(store, arm) if arm else _arm_details(table, i),
                "wins": i > 0 and table["rows"][i - 1]["wins"],
                "control": i > 0 and table["rows"][i - 1]["kind"] == "control",
            }
            for i, (row, arm) in enumerate(zip(cells, arms, strict=True))
        ],
    }


def _arm_details(table: dict[str, Any], i: int) -> dict[str, Any] | None:
    """A control arm (not among the search's ideas): its text and its log tails."""
    if i == 0:
        return None
    return {"text": table["rows"][i - 1]["text"], "reason": None, "diff": "", "logs": {}}


def _idea_row(store: Store, r: dict[str, Any]) -> dict[str, Any]:
    return {
        "epoch": r["epoch"],
        "role": r["role"],
        "idea": _idea_details(store, r),
        "status": r["status"],
        "reward": _shown(r["result"]["reward"]),
        "category": r["category"] or "-",
    }


def _idea_details(store: Store, r: dict[str, Any]) -> dict[str, Any]:
    """What the report's folded idea shows: text, failure reason, diff, log tails."""
    return {
        "text": r["idea"],
        "reason": r["result"]["reason"],
        "diff": r["code_diff"],
        "logs": _log_tails(store, r["idea_id"]),
    }


def _shown(reward: float | None) -> str:
    return "-" if reward is None else f"{reward:.4g}"


def _log_tails(store: Store, idea_id: str) -> dict[str, str]:
    run = store.first_uncancelled_run_of_idea(idea_id)
    if run is None:
        return {}
    tails = {}
    for name in ("train.stderr", "train.stdout", "evaluate.stdout"):
        path = Path(run["artifacts"]) / "logs" / name
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        if lines:
            tails[name] = "\n".join(lines[-LOG_TAIL_LINES:])
    return tails
