"""The HTML report of an ideator training: the collapse instruments plotted per step, and the
ideas the policy wrote. `executor report RUN_DIR` writes it when the run holds a training."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from agent.ideator_rl.budget import TIMEOUT_KEY
from agent.ideator_rl.records import Records
from agent.pages import render_page, write_page
from agent.pages.svg import line_chart
from agent.store import Store

TEMPLATES = Path(__file__).parent / "templates"

# (title, y label, {legend: instrument})
PLOTS = [
    ("Execution reward", "reward", {"mean": "mean_reward", "max": "max_reward"}),
    (
        "Ideas that ran",
        "share",
        {"ran": "execution_rate", "no idea": "no_idea_rate", "flat groups": "flat_groups"},
    ),
    (
        "Collapse",
        "share / similarity",
        {"top-2 clusters": "top2_cluster_share", "pairwise similarity": "mean_pairwise_similarity"},
    ),
    ("Lengths", "tokens", {"completion": "completion_tokens", "thinking": "thinking_tokens"}),
    ("Distinct ideas per step", "ideas", {"distinct": "distinct_ideas", "executed": "executed"}),
]


def has_training(store: Store) -> bool:
    return Records(store).latest() is not None


def render_training_report(store: Store) -> str:
    records = Records(store)
    training = records.latest()
    if training is None:
        raise ValueError("this run directory holds no ideator training: run train-ideator first")
    tid, cfg = training["id"], training["config"]
    steps = records.steps(tid)
    samples = records.samples(tid)
    timeout = cfg.get(TIMEOUT_KEY)
    baseline = [
        float(r["reward"])
        for r in store.baseline_runs(training["env_hash"], training["scale"])
        if (r["conditions"] or {}).get("timeout_s") == timeout
    ]
    base = sum(baseline) / len(baseline) if baseline else None
    plots = []
    for title, ylabel, series in PLOTS:
        # `if key in s`: a training recorded before an instrument existed still reports.
        data = {
            name: [(s["step"], s[key]) for s in steps if key in s] for name, key in series.items()
        }
        if title == "Execution reward" and base is not None and steps:
            data["baseline"] = [(steps[0]["step"], base), (steps[-1]["step"], base)]
        plots.append(line_chart(data, title, "step", ylabel))
    first, last = (steps[0], steps[-1]) if steps else ({}, {})
    meta = [
        ("status", training["status"] + (f" ({training['reason']})" if training["reason"] else "")),
        ("model", str(cfg["model"])),
        ("implementer", str(cfg["implementer"])),
        ("steps", f"{len(steps)} of {cfg['steps']}, {cfg['group_size']} ideas per group"),
        (
            "ideas ran at",
            "the scale's full budget"
            if timeout is None
            else f"--timeout {timeout:g} (a screening budget; the baseline at the same)",
        ),
        (
            "reward",
            f"{cfg['reward']}; diversity {cfg['diversity_weight']}, novelty "
            f"{cfg['novelty_weight']}, length bonus {cfg['length_bonus']}",
        ),
        ("baseline reward", "not measured" if base is None else f"{base:.4g}"),
        (
            "mean reward, first → last step",
            f"{first.get('mean_reward', 0):.4g} → {last.get('mean_reward', 0):.4g}"
            if steps
            else "-",
        ),
        ("settings", json.dumps(cfg)),
    ]
    return render_page(
        TEMPLATES,
        "report.html",
        title=f"Ideator training {tid}: {training['env']} ({training['scale']})",
        meta=meta,
        plots=plots,
        ideas=_ideas(samples),
        last=_samples([s for s in samples if steps and s["step"] == last["step"]]),
    )


def write_training_report(store: Store, out: Path) -> Path:
    html = render_training_report(store)
    return write_page(out, html)


def _ideas(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The 50 most sampled distinct ideas, with their one run's outcome and first step."""
    counts = Counter(s["idea"] for s in samples)
    info = {s["idea"]: s for s in samples}
    first: dict[str, int] = {}
    for s in samples:  # ordered by step
        first.setdefault(s["idea"], s["step"])
    return [
        {
            "times": n,
            "idea": idea,
            "status": info[idea]["status"],
            "execution_reward": f"{info[idea]['execution_reward']:.4g}",
            "first_step": first[idea],
        }
        for idea, n in counts.most_common(50)
    ]


def _samples(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "position": s["position"],
            "completion": s["completion"],
            "status": s["status"],
            "cached": s["cached"],
            "execution_reward": f"{s['execution_reward']:.4g}",
            "reward": f"{s['reward']:.4g}",
            "terms": ", ".join(f"{k} {v:.3g}" for k, v in s["parts"].items() if v),
        }
        for s in samples
    ]
