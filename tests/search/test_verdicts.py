"""The confirmation table's verdicts (agent/search/verdicts.py) on outcomes built by hand."""

from __future__ import annotations

import numpy as np

from agent.search.verdicts import Arm, Outcomes, build_table

SEEDS = (1000, 1001)


def binary(rate: float, seed: int, n: int = 400) -> dict[str, float]:
    """n items answered right with probability `rate`, reproducibly."""
    rng = np.random.default_rng(seed)
    return {f"p{i:04d}": float(x) for i, x in enumerate(rng.random(n) < rate)}


def arm(name: str, kind: str = "idea") -> Arm:
    return Arm(name, f"text of {name}", kind, 0.5)  # type: ignore[arg-type]


def run_table(base: Outcomes, *arms: tuple[Arm, Outcomes], direction: str = "maximize"):
    return build_table("s", "accuracy", direction, 0.05, base, list(arms))  # type: ignore[arg-type]


BASE = Outcomes({s: binary(0.5, s) for s in SEEDS}, {})


def test_a_clear_improvement_on_two_seeds_wins_and_the_same_arm_on_one_seed_does_not() -> None:
    better = Outcomes({s: {k: 1.0 for k in BASE.values[s]} for s in SEEDS}, {})
    (row,) = run_table(BASE, (arm("good"), better)).rows
    assert row.wins and row.test == "mcnemar" and row.c == 0 and row.b > 300
    assert row.diff_low is not None and row.diff_low > 0 and row.p_holm is not None
    one_seed = Outcomes({1000: better.values[1000]}, {})
    base_one = Outcomes({1000: BASE.values[1000]}, {})
    (row,) = run_table(base_one, (arm("good"), one_seed)).rows
    assert not row.wins and "1 matched seed" in row.reason


def test_an_arm_that_fails_a_confirmation_seed_cannot_win_on_the_others() -> None:
    # Crashing on the seeds where it would lose must not buy a sample of its good seeds.
    seeds = (1000, 1001, 1002)
    base = Outcomes({s: binary(0.5, s) for s in seeds}, {})
    great = {s: {k: 1.0 for k in base.values[s]} for s in seeds[:2]}
    (row,) = run_table(base, (arm("picky"), Outcomes(great, {}, frozenset({1002})))).rows
    assert not row.wins and "1002" in row.reason and len(row.seeds) == 2
    (row,) = run_table(base, (arm("absent"), Outcomes(great, {}))).rows  # never ran 1002
    assert not row.wins and "1002" in row.reason


def test_holm_adjusts_across_every_row_controls_included() -> None:
    same = Outcomes(dict(BASE.values), {})
    slightly = Outcomes({s: binary(0.56, s + 7) for s in SEEDS}, {})
    table = run_table(BASE, (arm("a"), slightly), (arm("b"), slightly), (arm("n", "control"), same))
    rows = {r.idea_id: r for r in table.rows}
    assert rows["a"].p_holm is not None and rows["a"].p is not None
    assert rows["a"].p_holm >= rows["a"].p and rows["n"].p == 1.0 and rows["n"].p_holm == 1.0
    assert [r.kind for r in table.rows][-1] == "control"  # controls listed after the ideas


def test_a_loss_is_compared_by_bootstrap_and_lower_is_better() -> None:
    rng = np.random.default_rng(0)
    losses = {s: {f"w{i}": 2.0 + float(rng.normal(0, 0.2)) for i in range(300)} for s in SEEDS}
    base = Outcomes(losses, {})
    lower = Outcomes({s: {k: v - 0.1 for k, v in losses[s].items()} for s in SEEDS}, {})
    higher = Outcomes({s: {k: v + 0.1 for k, v in losses[s].items()} for s in SEEDS}, {})
    table = run_table(base, (arm("lower"), lower), (arm("higher"), higher), direction="minimize")
    rows = {r.idea_id: r for r in table.rows}
    assert rows["lower"].wins and rows["lower"].test == "bootstrap" and rows["lower"].b is None
    assert not rows["higher"].wins and rows["higher"].diff == 0.1
    assert table.rows[0].idea_id == "lower"  # best first, in the metric's direction


def test_a_winning_control_and_abstention_are_warned_about() -> None:
    better = Outcomes({s: {k: 1.0 for k in BASE.values[s]} for s in SEEDS}, {})
    abstains = Outcomes(dict(BASE.values), {s: {"precision": 0.99, "recall": 0.2} for s in SEEDS})
    table = run_table(BASE, (arm("null", "control"), better), (arm("shy"), abstains))
    assert any("control 'text of null' beats the baseline" in w for w in table.warnings)
    assert any("text of shy: precision 0.990 with recall 0.200" in w for w in table.warnings)


def test_the_table_is_the_same_bytes_when_recomputed() -> None:
    slightly = Outcomes({s: binary(0.55, s + 3) for s in SEEDS}, {})
    first = run_table(BASE, (arm("a"), slightly))
    again = run_table(Outcomes(dict(BASE.values), {}), (arm("a"), slightly))
    assert first.canonical() == again.canonical() and first.sha256() == again.sha256()


def test_every_shipped_control_patch_applies_to_its_environment() -> None:
    from agent.implementer.edits_apply import plan_edits
    from agent.implementer.edits_parse import parse_edits
    from agent.search.controls import NULL, control_arms
    from environments import list_environments

    seen = 0
    for env in list_environments():
        if isinstance(env, tuple):
            continue
        arms = control_arms(env)
        assert arms[0].name == NULL and arms[0].patch is None
        for control in arms[1:]:
            assert control.patch is not None
            plan = plan_edits(env.repo, parse_edits(control.patch), env.is_editable)
            assert plan, control.name  # it changes something
            seen += 1
    assert seen >= 1  # posttrain_grpo's reward that ignores correctness


def flipped(values: dict[str, float], which: float, n: int) -> dict[str, float]:
    """`values` with the first `n` items whose value is `which` flipped."""
    out, left = dict(values), n
    for k, v in values.items():
        if v == which and left:
            out[k], left = 1.0 - v, left - 1
    return out


def test_a_null_control_that_differs_sets_the_bar_a_win_must_clear() -> None:
    """The unchanged baseline, measured as different from itself (here worse, so it does not
    'win'), shows the comparison's own error: a win must lie beyond it."""
    better = Outcomes({s: {k: 1.0 for k in BASE.values[s]} for s in SEEDS}, {})
    slightly = Outcomes({s: flipped(BASE.values[s], 0.0, 30) for s in SEEDS}, {})
    worse = Outcomes({s: flipped(BASE.values[s], 1.0, 60) for s in SEEDS}, {})
    null = Arm("null", "the unchanged baseline", "control", 0.5, null=True)
    table = run_table(BASE, (arm("good"), better), (arm("small"), slightly), (null, worse))
    rows = {r.idea_id: r for r in table.rows}
    assert rows["null"].p_holm is not None and rows["null"].p_holm < 0.05
    assert not rows["null"].wins and "worse side of zero" in rows["null"].reason
    band = max(abs(rows["null"].diff_low), abs(rows["null"].diff_high))  # type: ignore[arg-type]
    assert rows["good"].wins and "beyond the null control" in rows["good"].reason
    assert rows["small"].diff_low is not None and rows["small"].diff_low < band
    assert not rows["small"].wins and "does not clear that" in rows["small"].reason
    assert any(w.startswith("the null control") for w in table.warnings)
    # A null control that matches the baseline leaves the verdicts alone.
    table = run_table(BASE, (arm("small"), slightly), (null, Outcomes(dict(BASE.values), {})))
    assert table.rows[0].wins and not table.warnings
