"""The confirmation table: each finalist and control against the baseline, on the confirmation
split's items and the confirmation seeds, with the verdict a reviewer would accept.

Computed from the store alone (runs, their per-item outcomes, the search's settings), with a
fixed bootstrap seed, so recomputing it later gives the same bytes: `executor stats RUN_DIR
--verify` checks that against the copy the search stored when it ended.

Per arm (agent/significance.py does the statistics):
- matched seeds: the confirmation seeds on which both the arm and the baseline succeeded;
- matched items: the scored items (runner/items.py) common to all those runs; an environment
  whose evaluator writes no items gives one item per run, the metric itself;
- the metric's mean and its bootstrap interval over seeds x items; the difference from the
  baseline with its paired bootstrap interval;
- the test: exact McNemar on the discordant (seed, item) pairs when the metric is 0/1, else the
  paired bootstrap's p; Holm-adjusted across every row of the table;
- the verdict: adjusted p below alpha, the interval on the better side of zero, and at least
  two matched seeds, all three.

Then every pair of finalists, tested against each other the same way (agent/search/pairwise.py:
"A better", "B better" or "no difference shown", which is not a proof of equivalence), and
the warnings: a control that wins, abstention bought with precision or F1
(agent/search/abstention.py).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from agent.results import Result
from agent.search.abstention import mean_metrics, watched_note
from agent.search.pairwise import Pair, compare_pairs, matched
from agent.search.pairwise import matrix as _matrix
from agent.search.pairwise import rounded as _round
from agent.significance import (
    BOOTSTRAP_SAMPLES,
    BOOTSTRAP_SEED,
    BootstrapInterval,
    holm,
    paired_bootstrap,
    verdict,
)
from agent.store import Store

Direction = Literal["maximize", "minimize"]
# A run that answers few items but nearly always right: accuracy is unaffected, but metrics
# that reward abstention (precision, F1 with abstention) would be bought by it.
PRECISION_NEAR_ONE = 0.95
LOW_RECALL = 0.5


@dataclass(frozen=True)
class Arm:
    """What goes into the table: a finalist or a control, by its idea in the store."""

    idea_id: str
    text: str
    kind: Literal["idea", "control"]
    screen_reward: float | None  # its mean screening reward (what chose it)
    null: bool = False  # the null control: the unchanged baseline entered as an idea


@dataclass(frozen=True)
class Row(Result):
    idea_id: str
    text: str
    kind: Literal["idea", "control"]
    screen_reward: float | None
    seeds: list[int]  # matched confirmation seeds
    items: int  # matched items per seed
    metric: float | None  # the arm's mean over seeds x items
    metric_low: float | None
    metric_high: float | None
    diff: float | None  # arm minus baseline
    diff_low: float | None
    diff_high: float | None
    test: Literal["mcnemar", "bootstrap"] | None
    b: int | None  # McNemar: arm right, baseline wrong (pooled over seeds)
    c: int | None  # McNemar: arm wrong, baseline right
    p: float | None
    p_holm: float | None
    wins: bool
    reason: str


@dataclass(frozen=True)
class BaselineRow(Result):
    seeds: list[int]
    items: int
    metric: float | None
    metric_low: float | None
    metric_high: float | None


@dataclass(frozen=True)
class ConfirmationTable(Result):
    search_id: str
    metric: str
    direction: Direction
    alpha: float
    bootstrap_samples: int
    bootstrap_seed: int
    baseline: BaselineRow
    rows: list[Row]
    # Every pair of finalists (kind "idea"), in table order; empty in tables stored before
    # pairs were computed.
    pairs: list[Pair] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def canonical(self) -> str:
        """The table as canonical JSON: what is stored and compared on recomputation."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()


@dataclass(frozen=True)
class Outcomes:
    """One arm's confirmation runs: per seed, the scored items of its first succeeded run
    (id -> value) and that run's metrics; and the seeds it ran but never succeeded on."""

    values: dict[int, dict[str, float]]
    metrics: dict[int, dict[str, float]]
    failed: frozenset[int] = frozenset()


def outcomes(store: Store, runs: list[dict[str, Any]], metric: str) -> Outcomes:
    """`runs` (non-cancelled, oldest first) read into Outcomes; a run without items counts as
    a single item, its metric."""
    by_seed: dict[int, dict[str, float]] = {}
    metrics: dict[int, dict[str, float]] = {}
    for run in runs:
        seed = int(run["seed"])
        if run["status"] != "succeeded" or seed in by_seed:
            continue
        items = store.run_items(run["id"])
        values = items.scored() if items is not None else None
        if not values:
            value = (run["metrics"] or {}).get(metric)
            if value is None:
                continue
            values = {"(metric)": float(value)}
        by_seed[seed] = values
        metrics[seed] = run["metrics"] or {}
    failed = frozenset(int(r["seed"]) for r in runs) - by_seed.keys()
    return Outcomes(by_seed, metrics, failed)


def compare_arm(
    arm: Arm, mine: Outcomes, base: Outcomes, direction: Direction
) -> tuple[Row, float | None]:
    """One row before the Holm adjustment (p_holm and the verdict are filled in later)."""
    m = matched(mine, base)
    empty = Row(
        arm.idea_id, arm.text, arm.kind, arm.screen_reward, m.seeds, 0, None, None, None, None,
        None, None, None, None, None, None, None, False, "",
    )  # fmt: skip
    if m.missing == "seeds":
        return replace(
            empty, reason="no confirmation seed on which both it and the baseline ran"
        ), None
    if m.missing == "items":
        return replace(empty, reason="no items common to it and the baseline"), None
    assert m.x is not None and m.diff is not None
    level = paired_bootstrap(m.x, np.zeros_like(m.x), BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED)
    diff, counts, p = m.diff, m.counts, m.p
    row = Row(
        arm.idea_id, arm.text, arm.kind, _round(arm.screen_reward), m.seeds, m.items,
        _round(level.estimate), _round(level.low), _round(level.high),
        _round(diff.estimate), _round(diff.low), _round(diff.high),
        m.test, counts[0], counts[1], _round(p), None, False, "",
    )  # fmt: skip
    return row, p


def baseline_row(base: Outcomes) -> BaselineRow:
    seeds = sorted(base.values)
    if not seeds:
        return BaselineRow([], 0, None, None, None)
    ids = sorted(set.intersection(*(set(base.values[s]) for s in seeds)))
    if not ids:
        return BaselineRow(seeds, 0, None, None, None)
    m = _matrix(base.values, seeds, ids)
    level = paired_bootstrap(m, np.zeros_like(m), BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED)
    return BaselineRow(
        seeds, len(ids), _round(level.estimate), _round(level.low), _round(level.high)
    )


def build_table(
    search_id: str,
    metric: str,
    direction: Direction,
    alpha: float,
    base: Outcomes,
    arms: list[tuple[Arm, Outcomes]],
    rank_by: str | None = None,
) -> ConfirmationTable:
    """The table from outcomes already read: rows, Holm across them, verdicts, the pairs of
    finalists, warnings. `rank_by`: the metric the search ranked ideas by, watched (with f1)
    for a rise bought by abstention."""
    pending = [compare_arm(arm, mine, base, direction) for arm, mine in arms]
    tested = [k for k, (_, p) in enumerate(pending) if p is not None]
    adjusted = dict(zip(tested, holm([pending[k][1] for k in tested]), strict=True))  # type: ignore[misc]
    rows = []
    for k, (row, _) in enumerate(pending):
        if k not in adjusted:
            rows.append(row)
            continue
        assert row.diff is not None and row.diff_low is not None and row.diff_high is not None
        interval = BootstrapInterval(
            row.diff, row.diff_low, row.diff_high, BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED
        )
        v = verdict(interval, adjusted[k], len(row.seeds), direction, alpha)
        wins, reason = v.wins, v.reason
        if missing := _missing_seeds(arms[k][1], base):
            # Dropping the seeds an arm failed on would let it choose its own sample.
            wins = False
            reason = f"no result on confirmation seed(s) {missing}: a win needs every one"
        rows.append(replace(row, p_holm=_round(adjusted[k]), wins=wins, reason=reason))
    off = [
        r
        for (a, _), r in zip(arms, rows, strict=True)
        if a.null and r.p_holm is not None and r.p_holm < alpha and _excludes_zero(r)
    ]
    band = None
    if off:
        # The unchanged baseline measured as different from itself: the comparison's own error
        # (run-to-run noise the seeds do not capture, conditions that changed) is at least that
        # large, for every arm. A win must then lie beyond it: the whole interval outside the
        # band of +-(the null control's largest difference).
        band = max(max(abs(r.diff_low or 0.0), abs(r.diff_high or 0.0)) for r in off)
        rows = [_beyond(r, band, direction) if r.wins else r for r in rows]
    sign = 1.0 if direction == "maximize" else -1.0
    rows.sort(
        key=lambda r: (
            r.kind == "control",
            -(sign * r.diff) if r.diff is not None else math.inf,
            r.idea_id,
        )
    )
    by_id = {arm.idea_id: o for arm, o in arms}
    pairs = compare_pairs(
        [(r.idea_id, by_id[r.idea_id]) for r in rows if r.kind == "idea"], direction, alpha, band
    )
    warnings = _warnings(rows, [(arm.text, o.metrics) for arm, o in arms], base.metrics)
    warnings += _abstention(
        [(arm.text, o.metrics) for arm, o in arms if arm.kind == "idea"], base.metrics, rank_by
    )
    warnings += [
        f"the null control ({r.text!r}) differs from the baseline: difference {r.diff:+.4g} "
        f"[{r.diff_low:.4g}, {r.diff_high:.4g}], adjusted p {r.p_holm:.3g}. The same code on "
        "the same seeds should not; the runs vary more than the seeds show (on a CPU clock, "
        "contention between concurrent runs), so a win must lie beyond that error. Confirm on "
        "more seeds (--rerun-seeds), one run at a time (--slots 1)"
        for r in off
    ]
    return ConfirmationTable(
        search_id,
        metric,
        direction,
        alpha,
        BOOTSTRAP_SAMPLES,
        BOOTSTRAP_SEED,
        baseline_row(base),
        rows,
        pairs,
        warnings,
    )


def _beyond(row: Row, band: float, direction: Direction) -> Row:
    """A winning row kept only if its whole interval lies beyond the null control's band."""
    assert row.diff_low is not None and row.diff_high is not None
    clear = row.diff_low > band if direction == "maximize" else row.diff_high < -band
    if clear and row.kind == "idea":
        return replace(row, reason=f"{row.reason}, and beyond the null control's +-{band:.4g}")
    why = (
        f"the null control differs from the baseline by up to {band:.4g}, and this interval "
        f"[{row.diff_low:.4g}, {row.diff_high:.4g}] does not clear that"
    )
    return replace(row, wins=False, reason=why if row.kind == "idea" else f"withheld: {why}")


def _excludes_zero(row: Row) -> bool:
    return (
        row.diff_low is not None
        and row.diff_high is not None
        and (row.diff_low > 0 or row.diff_high < 0)
    )


def _missing_seeds(mine: Outcomes, base: Outcomes) -> list[int]:
    """Seeds the baseline or the arm ran on where the arm has no succeeded run."""
    ran = base.values.keys() | base.failed | mine.failed
    return sorted(ran - mine.values.keys())


def _warnings(
    rows: list[Row],
    arm_metrics: list[tuple[str, dict[int, dict[str, float]]]],
    base_metrics: dict[int, dict[str, float]],
) -> list[str]:
    """A control that wins; a run that buys precision with abstention (precision near 1, low
    recall), the baseline's or an arm's, on the confirmation runs."""
    out = []
    for row in rows:
        if row.kind == "control" and row.wins:
            out.append(
                f"control {row.text!r} beats the baseline (adjusted p {row.p_holm:.3g}): an arm "
                "that should not win did, so no win on this table can be trusted; look for "
                "what differs between the baseline's runs and the arms' (load, seeds, items)"
            )
    for text, metrics in [("the baseline", base_metrics), *arm_metrics]:
        runs = [m for m in metrics.values() if "precision" in m and "recall" in m]
        if not runs:
            continue
        precision = sum(m["precision"] for m in runs) / len(runs)
        recall = sum(m["recall"] for m in runs) / len(runs)
        if precision >= PRECISION_NEAR_ONE and recall <= LOW_RECALL:
            out.append(
                f"{text}: precision {precision:.3f} with recall {recall:.3f} on the "
                "confirmation items: it abstains on most items and answers only where sure; "
                "accuracy is the reward, but a precision- or F1-with-abstention score would "
                "reward that"
            )
    return out


def _abstention(
    arm_metrics: list[tuple[str, dict[int, dict[str, float]]]],
    base_metrics: dict[int, dict[str, float]],
    rank_by: str | None,
) -> list[str]:
    """A finalist whose f1 (or rank metric) rose over the baseline's while it answered fewer
    items and got no more right, on the means over the confirmation runs."""
    base = mean_metrics(base_metrics.values())
    notes = (
        watched_note(mean_metrics(metrics.values()), base, rank_by, repr(text))
        for text, metrics in arm_metrics
    )
    return [n for n in notes if n is not None]  # one warning per arm
