"""`executor report RUN_DIR`: one self-contained HTML file about a search.

Plots are inline SVG (best-so-far and mean reward per epoch, execution success rate,
idea categories, diversity, spend); the leaderboard's rows open the idea, its diff and the
tails of its logs. Nothing is fetched when the file is opened.
"""

from __future__ import annotations

import itertools
import statistics
from html import escape
from pathlib import Path
from typing import Any

from agent.dedup import jaccard, shingles
from agent.pages import fill, write_page
from agent.pages.svg import bar_chart, line_chart
from agent.search.archive import HELD_OUT_SEED, Archive
from agent.search.export import trajectories
from agent.search.loop import spend
from agent.search.stats import compare, interval
from agent.store import Store

TEMPLATE = Path(__file__).parent / "templates" / "report.html"
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
        ("baseline reward", str(interval(baseline)) if baseline else "not measured"),
        ("ideas", str(len(rows))),
        ("LLM spend", f"${spent['usd']:.4f}"),
        ("GPU-hours", f"{spent['gpu_hours']:.3f}"),
    ]
    values = {
        "title": escape(title),
        "meta": "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in meta),
        "plots": _plots(rows, baseline, spent),
        "leaderboard": _leaderboard(store, rows, baseline),
        "ideas": _ideas_table(store, rows),
    }
    return fill(TEMPLATE, values)


def write_report(store: Store, out: Path, search_id: str | None = None) -> Path:
    html = render_report(store, search_id)
    return write_page(out, html)


def _plots(rows: list[dict[str, Any]], baseline: list[float], spent: dict[str, float]) -> str:
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
    return "".join(
        [
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
    )


def _leaderboard(store: Store, rows: list[dict[str, Any]], baseline: list[float]) -> str:
    board = []
    for r in rows:
        held = store.rewards_from_seed(r["idea_id"], HELD_OUT_SEED)
        if held:
            board.append((r, held))
    if not board:
        return "<p>No idea was re-run on held-out seeds.</p>"
    board.sort(key=lambda b: statistics.fmean(b[1]), reverse=True)
    out = [
        "<table class='ideas'><tr><th>#</th><th>idea</th><th>epoch</th><th>search reward"
        "</th><th>re-run mean ± 95%</th><th>vs baseline</th></tr>"
    ]
    for n, (r, held) in enumerate(board, 1):
        iv = interval(held)
        versus = "-"
        if baseline:
            c = compare(held, baseline)
            cls = " class='win'" if c.wins else ""
            versus = f"<span{cls}>{c.difference}{' — wins' if c.wins else ''}</span>"
        reward = r["result"]["reward"]
        out.append(
            f"<tr><td>{n}</td><td>{_idea_details(store, r)}</td><td>{r['epoch']}</td>"
            f"<td>{'-' if reward is None else f'{reward:.4g}'}</td><td>{escape(str(iv))}</td>"
            f"<td>{versus}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def _ideas_table(store: Store, rows: list[dict[str, Any]]) -> str:
    out = [
        "<table class='ideas'><tr><th>epoch</th><th>role</th><th>idea</th><th>status</th>"
        "<th>reward</th><th>category</th></tr>"
    ]
    for r in rows:
        reward = r["result"]["reward"]
        out.append(
            f"<tr><td>{r['epoch']}</td><td>{escape(r['role'])}</td>"
            f"<td>{_idea_details(store, r)}</td>"
            f"<td class='{escape(r['status'])}'>{escape(r['status'])}</td>"
            f"<td>{'-' if reward is None else f'{reward:.4g}'}</td>"
            f"<td>{escape(r['category'] or '-')}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def _idea_details(store: Store, r: dict[str, Any]) -> str:
    parts = [f"<details><summary>{escape(r['idea'])}</summary>"]
    if r["result"]["reason"]:
        parts.append(f"<p><b>reason:</b></p><pre>{escape(r['result']['reason'])}</pre>")
    if r["code_diff"]:
        parts.append(f"<p><b>diff:</b></p><pre>{escape(r['code_diff'])}</pre>")
    for name, text in _log_tails(store, r["idea_id"]).items():
        parts.append(
            f"<p><b>{escape(name)}</b> (last {LOG_TAIL_LINES} lines):</p><pre>{escape(text)}</pre>"
        )
    parts.append("</details>")
    return "".join(parts)


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
