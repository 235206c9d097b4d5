"""Multi-fidelity screening (`executor search --screen F`): a cheap look first, then the budget.

Every idea of an epoch first trains for a share F of the training budget (its short runs,
recorded with `fidelity` F). Then, per epoch, the promotion:
- the ideas are ranked by the search's rank metric over their short runs;
- an idea is held back when it is *shown worse* than the baseline measured at that same short
  budget (same seeds, same items): the paired bootstrap and exact McNemar or bootstrap p of
  agent/search/pairwise.py, Holm across the epoch's ideas, and an interval that clears the
  baseline's own seed-to-seed spread at that budget (a one-seed item bootstrap ignores seed
  noise, so a difference inside that spread is not evidence);
- of the rest, the best ceil(`--promote` x ideas) are promoted and train again at the full
  budget, from scratch, on the same screening seeds. The others end `screened_out`.

Only full-budget runs are an idea's screening reward, so what the ideator, the finalists and
the confirmation see is measured exactly as without --screen; a screened-out idea shows its
short figures, labelled as such. Each epoch's decisions are stored (a search table) before any
promoted run starts, so a resumed search promotes the same ideas.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from agent.results import Result
from agent.search.archive import ArchivedIdea
from agent.search.pairwise import matched, rounded
from agent.search.ranking import label, rank_value, ranked
from agent.search.verdicts import outcomes
from agent.significance import BootstrapInterval, holm
from agent.store import Store

if TYPE_CHECKING:
    from agent.executor import RunRequest
    from agent.search.config import SearchConfig
    from environments import Environment


def table_name(epoch: int) -> str:
    return f"promotion:{epoch}"


def short_request(req: RunRequest, share: float) -> RunRequest:
    """`req` cut to `share` of its training budget (the scale's, or what --timeout left of it),
    keeping the scale's margin for start-up, as runner/run.py derives the budget."""
    scale = req.env.scale(req.scale)
    if scale.time_budget is None:
        raise ValueError(
            f"--screen needs a training time budget, and scale {req.scale!r} of "
            f"{req.env.name} has none: leave --screen out"
        )
    margin = scale.timeout - scale.time_budget
    full = max(1.0, min(scale.time_budget, (req.timeout_s or scale.timeout) - margin))
    return replace(req, timeout_s=share * full + margin, fidelity=share)


def percent(share: float) -> str:
    return f"{share * 100:.0f}% of the budget"


@dataclass(frozen=True)
class Decision(Result):
    """One idea's promotion: its short-budget figures against the baseline's, and the call."""

    idea_id: str
    text: str
    status: str  # of its short runs: succeeded, or how the first failure ended
    reward: float | None  # mean over its short runs
    rank_value: float | None  # what it was ranked by (higher is better)
    rank: int | None  # 1 = best of the epoch's succeeded ideas
    diff: float | None  # idea minus baseline on the manifest's metric, short budget
    diff_low: float | None
    diff_high: float | None
    p: float | None
    p_holm: float | None
    worse: bool  # shown worse than the baseline at the short budget
    promoted: bool
    reason: str


@dataclass(frozen=True)
class Promotion(Result):
    """An epoch's promotion decisions, as stored."""

    epoch: int
    share: float  # of the training budget the short runs had
    promote: float  # --promote
    slots: int  # how many could be promoted: ceil(promote x ideas), at least 1
    rank_by: str  # reward, or the rank metric
    baseline_reward: float | None  # mean over the baseline's short runs
    band: float | None  # the baseline's seed-to-seed spread of the metric, short budget
    decisions: list[Decision]

    def canonical(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    @classmethod
    def from_json(cls, body: str) -> Promotion:
        data = json.loads(body)
        data["decisions"] = [Decision(**d) for d in data["decisions"]]
        return cls(**data)

    def decision(self, idea_id: str) -> Decision | None:
        return next((d for d in self.decisions if d.idea_id == idea_id), None)


def _short_view(store: Store, idea: ArchivedIdea, share: float) -> tuple[ArchivedIdea, list]:
    """The idea as its short runs show it (status, mean reward and metrics), and those runs."""
    runs = store.idea_runs(idea.idea_id, "screen", share)
    ok = [r for r in runs if r["status"] == "succeeded" and r["reward"] is not None]
    bad = next((r for r in runs if r["status"] != "succeeded"), None)
    metrics: dict[str, list[float]] = {}
    for r in ok:
        for k, v in (r["metrics"] or {}).items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                metrics.setdefault(k, []).append(float(v))
    view = replace(
        idea,
        status="succeeded" if ok and bad is None else (bad["status"] if bad else "failed"),
        reward=sum(r["reward"] for r in ok) / len(ok) if ok else None,
        metrics={k: sum(v) / len(v) for k, v in metrics.items()},
    )
    return view, runs


def _band(runs: list[dict[str, Any]], metric: str) -> float | None:
    """The spread (max - min) of the baseline's per-seed metric at the short budget."""
    values = [
        float(v)
        for r in runs
        if r["status"] == "succeeded"
        and isinstance(v := (r["metrics"] or {}).get(metric), int | float)
    ]
    return max(values) - min(values) if len(values) >= 2 else None


def decide(
    store: Store,
    search_id: str,
    epoch: int,
    ideas: list[ArchivedIdea],
    baseline_idea: str,
    config: SearchConfig,
    env: Environment,
    rank_by: str | None,
) -> Promotion:
    """The epoch's promotion: the stored one if it exists (a resume), else decided now from the
    short runs of `ideas` and of the baseline, and stored before it is returned."""
    name = table_name(epoch)
    if (stored := store.search_table(search_id, name)) is not None:
        return Promotion.from_json(stored["body"])
    share = config.screen
    m = env.whole.metric
    base_runs = store.idea_runs(baseline_idea, "screen", share)
    base = outcomes(store, base_runs, m.name)
    band = _band(base_runs, m.name)
    views = {i.idea_id: _short_view(store, i, share) for i in ideas}
    tested: dict[str, tuple[BootstrapInterval, float]] = {}  # idea minus baseline, and p
    for idea_id, (view, runs) in views.items():
        if view.status == "succeeded":
            mm = matched(outcomes(store, runs, m.name), base)
            if mm.diff is not None and mm.p is not None:
                tested[idea_id] = (mm.diff, mm.p)
    adjusted = dict(zip(tested, holm([p for _, p in tested.values()]), strict=True))
    worse: dict[str, bool] = {}
    for idea_id, (d, _) in tested.items():
        bad_side = d.low > 0 if m.direction == "minimize" else d.high < 0
        near = min(abs(d.low), abs(d.high))
        worse[idea_id] = (
            adjusted[idea_id] < config.alpha and bad_side and (band is None or near > band)
        )
    order = ranked([v for v, _ in views.values()], rank_by, env)
    slots = max(1, math.ceil(config.promote * len(ideas)))
    eligible = [i.idea_id for i in order if not worse.get(i.idea_id, False)]
    promoted = set(eligible[:slots])
    rank = {i.idea_id: k + 1 for k, i in enumerate(order)}
    where = percent(share)
    base_rewards = [r["reward"] for r in base_runs if r["status"] == "succeeded"]
    base_mean = sum(base_rewards) / len(base_rewards) if base_rewards else None
    decisions = []
    for idea in ideas:
        view, _ = views[idea.idea_id]
        got = tested.get(idea.idea_id)
        n = len(order)
        if view.status != "succeeded":
            reason = f"{view.status} at {where}: not promoted"
        elif worse.get(idea.idea_id):
            assert got is not None
            d = got[0]
            reason = (
                f"shown worse than the baseline at {where}: {m.name} "
                f"{d.estimate:+.4g} [{d.low:+.4g}, {d.high:+.4g}], "
                f"Holm p {adjusted[idea.idea_id]:.3g}"
            )
        else:
            there = "" if base_mean is None else f"; the baseline's {base_mean:.4g}"
            call = "promoted" if idea.idea_id in promoted else f"below the top {slots} promoted"
            reason = (
                f"rank {rank[idea.idea_id]} of {n} by {label(rank_by)} at {where} "
                f"(reward {view.reward:.4g}{there}): {call}"
            )
        decisions.append(
            Decision(
                idea.idea_id,
                idea.text,
                view.status,
                rounded(view.reward),
                rounded(_rank_value(view, rank_by, env)),
                rank.get(idea.idea_id),
                rounded(got[0].estimate) if got else None,
                rounded(got[0].low) if got else None,
                rounded(got[0].high) if got else None,
                rounded(got[1]) if got else None,
                rounded(adjusted.get(idea.idea_id)),
                worse.get(idea.idea_id, False),
                idea.idea_id in promoted,
                reason,
            )
        )
    promotion = Promotion(
        epoch,
        share,
        config.promote,
        slots,
        label(rank_by),
        rounded(base_mean),
        rounded(band),
        decisions,
    )
    body = promotion.canonical()
    store.save_search_table(search_id, name, body, hashlib.sha256(body.encode()).hexdigest())
    return promotion


def _rank_value(view: ArchivedIdea, rank_by: str | None, env: Environment) -> float | None:
    return rank_value(view, rank_by, env) if view.status == "succeeded" else None


def promotions(store: Store, search_id: str, epochs: int) -> list[Promotion]:
    """Every stored promotion of the search, by epoch (none without --screen)."""
    out = []
    for epoch in range(epochs):
        if (stored := store.search_table(search_id, table_name(epoch))) is not None:
            out.append(Promotion.from_json(stored["body"]))
    return out


def decision_of(store: Store, idea_id: str) -> tuple[Promotion, Decision] | None:
    """The promotion decision a --screen search took on the idea (None: it had none)."""
    place = store.search_of_idea(idea_id)
    if place is None:
        return None
    stored = store.search_table(place["search_id"], table_name(place["epoch"]))
    if stored is None:
        return None
    promotion = Promotion.from_json(stored["body"])
    found = promotion.decision(idea_id)
    return None if found is None else (promotion, found)


def describe(promotion: Promotion, d: Decision) -> str:
    """One line for `executor show` and the report."""
    base = promotion.baseline_reward
    vs = "" if base is None else f" (baseline {base:.4g})"
    short = "-" if d.reward is None else f"{d.reward:.4g}"
    interval = ""
    if d.diff is not None and d.diff_low is not None and d.diff_high is not None:
        interval = f", vs baseline {d.diff:+.4g} [{d.diff_low:+.4g}, {d.diff_high:+.4g}]"
    call = "promoted" if d.promoted else "not promoted"
    return f"{call} at {percent(promotion.share)}: reward {short}{vs}{interval}; {d.reason}"
