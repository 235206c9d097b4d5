"""Ensembles (`executor search --ensembles 2,3,5`) and the random-subset control.

After the epochs, the top-k ideas by rank are combined into one candidate per size k: each
member's version of the focus file (e.g. rewards.py) goes into its own module
(reward_member_1.py, ...), and the focus's template writes the file that combines them with
equal weights (environments/manifest.py `Ensemble`). The result is an ordinary candidate: a
patch that the implementer applies and validates (the focus check included) like any other.

With `--controls` a random subset of the scored ideas, as large as the largest ensemble, is
combined the same way and run as a control arm: a win for the top-k over it says that the
ranking chose well, not that any combination of rewards would have done.

The round is written to the store before any of it runs, so a resume combines the same ideas.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.search.archive import Archive, ArchivedIdea
from agent.search.config import SearchConfig
from agent.search.controls import CONTROL_EPOCH
from agent.search.controls import ROLE as CONTROL_ROLE
from agent.search.ranking import label, rank_metric, ranked
from agent.templating import text_environment
from environments import Environment
from runner.workspace import BaselineRepo

ROLE = "ensemble"
RANDOM_SUBSET = "random_subset"


@dataclass(frozen=True)
class Member:
    idea: ArchivedIdea
    text: str  # its version of the focus's ensemble file


def is_combination(idea: ArchivedIdea) -> bool:
    """An ensemble or the random-subset control: validated with the member modules editable.
    By role, which only the harness sets (an ideator's payload may say anything)."""
    return idea.role in (ROLE, CONTROL_ROLE) and bool(idea.payload.get("members"))


def combine(env: Environment, baseline: BaselineRepo, members: list[Member]) -> str:
    """The unified diff that turns the baseline into the combination of `members`."""
    spec = env.focus.ensemble if env.focus is not None else None
    if spec is None:
        raise ValueError(f"focus {env.focus_name!r} declares no [ensemble]: nothing to combine")
    template = env.root / spec.template
    modules = [Path(spec.member_path(i)).stem for i in range(1, len(members) + 1)]
    combined = text_environment(template.parent).get_template(template.name).render(modules=modules)
    base = baseline.file_at(baseline.baseline_sha, spec.file) or ""
    parts = [_diff(spec.file, base, combined)]
    for i, m in enumerate(members, 1):
        parts.append(_diff(spec.member_path(i), None, m.text))
    return "".join(parts)


def _diff(rel: str, old: str | None, new: str) -> str:
    a = [] if old is None else old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    if b and not b[-1].endswith("\n"):
        b[-1] += "\n"
    head = "/dev/null" if old is None else f"a/{rel}"
    return "".join(difflib.unified_diff(a, b, head, f"b/{rel}"))


def _members(
    archive: Archive, env: Environment, baseline: BaselineRepo, ideas: list[ArchivedIdea]
) -> list[Member]:
    """The ideas whose validated commit holds the focus file (in the order given)."""
    spec = env.focus.ensemble if env.focus is not None else None
    assert spec is not None
    out = []
    for idea in ideas:
        cand = archive.store.validated_candidate(idea.idea_id)
        text = baseline.file_at(cand["commit_sha"], spec.file) if cand else None
        if text is not None:
            out.append(Member(idea, text))
    return out


def _text(kind: str, members: list[Member]) -> str:
    """What the archive and the table call the combination: its kind, then each member."""
    listed = "; ".join(
        f"[{n}] {m.idea.text.strip().splitlines()[0][:80]}" for n, m in enumerate(members, 1)
    )
    return f"{kind}: {listed}"


def record_round(
    archive: Archive,
    search_id: str,
    config: SearchConfig,
    env: Environment,
    scale: str,
    baseline: BaselineRepo,
    progress: Callable[[str], None],
) -> None:
    """Write the ensembles (epoch `config.epochs`) and, with --controls, the random-subset
    control, each once: a resume finds them and combines nothing again."""
    sizes = config.ensemble_sizes()
    epoch = config.epochs
    arms = archive.ideas(search_id, controls=True)
    ensembles_due = epoch not in archive.epochs_generated(search_id)
    subset_due = config.controls and not any(
        a.role == CONTROL_ROLE and a.payload.get("control") == RANDOM_SUBSET for a in arms
    )
    if not sizes or not (ensembles_due or subset_due):
        return  # nothing left to combine: read no candidate's file
    metric = rank_metric(config, env)
    candidates = [i for i in arms if i.role not in (ROLE, CONTROL_ROLE)]
    pool = _members(archive, env, baseline, ranked(candidates, metric, env))
    if ensembles_due:
        rows = []
        for k in sizes:
            if k > len(pool):
                progress(f"ensembles: no ensemble of {k}, only {len(pool)} scored ideas")
                continue
            top = pool[:k]
            rows.append(
                (
                    _text(f"ensemble of the top {k} by {label(metric)}", top),
                    ROLE,
                    "ensembles",
                    {
                        "members": [m.idea.idea_id for m in top],
                        "edits": combine(env, baseline, top),
                    },
                )
            )
        archive.record_ideas(search_id, epoch, 0, rows, env.name, env.repo_hash, scale, True)
    k = min(max(sizes), len(pool))
    if not subset_due or k < 2:
        return
    # Seeded by the search's seed, from the ideas in their recorded order: a resume draws the
    # same subset.
    order = {i.idea_id: n for n, i in enumerate(candidates)}
    by_order = sorted(pool, key=lambda m: order[m.idea.idea_id])
    chosen = random.Random(f"{config.seed}-{RANDOM_SUBSET}").sample(by_order, k)
    archive.record_ideas(
        search_id,
        CONTROL_EPOCH,
        len(arms),
        [
            (
                _text(f"control: a random subset of {k}", chosen),
                CONTROL_ROLE,
                "controls",
                {
                    "control": RANDOM_SUBSET,
                    "members": [m.idea.idea_id for m in chosen],
                    "edits": combine(env, baseline, chosen),
                },
            )
        ],
        env.name,
        env.repo_hash,
        scale,
    )
