"""Pairwise tests among the finalists (agent/search/pairwise.py) and how the table shows them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console

from agent.search.pairwise import compare_pairs
from agent.search.table_view import display_pairs, markdown
from agent.search.verdicts import Arm, ConfirmationTable, Outcomes, build_table
from tests.search.test_verdicts import BASE, SEEDS, arm, binary, flipped, run_table


def all_right() -> Outcomes:
    return Outcomes({s: {k: 1.0 for k in BASE.values[s]} for s in SEEDS}, {})


def test_a_pair_with_a_clear_difference_is_a_better() -> None:
    good, same = all_right(), Outcomes(dict(BASE.values), {})
    table = run_table(BASE, (arm("good"), good), (arm("same"), same))
    (pair,) = table.pairs
    assert (pair.a, pair.b) == ("good", "same")  # table order: the better first
    assert pair.verdict == "A better" and pair.test == "mcnemar" and pair.b_only == 0
    assert pair.a_only is not None and pair.a_only > 300
    assert pair.diff_low is not None and pair.diff_low > 0
    assert pair.p_holm == pair.p  # one pair: Holm leaves it; the two baseline rows do not count


def test_b_better_when_the_second_listed_arm_is_better() -> None:
    """Given in the other order (compare_pairs takes table order as it is), B is better."""
    good, same = all_right(), Outcomes(dict(BASE.values), {})
    (pair,) = compare_pairs([("same", same), ("good", good)], "maximize", 0.05)
    assert pair.verdict == "B better" and pair.diff is not None and pair.diff < 0
    # For a loss, lower is better: the same numbers make A the better one.
    (pair,) = compare_pairs([("same", same), ("good", good)], "minimize", 0.05)
    assert pair.verdict == "A better"


def test_identical_arms_show_no_difference_which_is_not_equivalence() -> None:
    a = Outcomes({s: binary(0.6, s + 11) for s in SEEDS}, {})
    table = run_table(BASE, (arm("a"), a), (arm("twin"), Outcomes(dict(a.values), {})))
    (pair,) = table.pairs
    assert pair.verdict == "no difference shown" and pair.p == 1.0 and pair.diff == 0.0
    assert "not below" in pair.reason
    assert "equivalent" not in json.dumps(table.to_json())  # never claimed
    assert "not evidence that the two are equivalent" in markdown(table.to_json())


def test_holm_adjusts_across_the_pairs_not_the_rows() -> None:
    good = all_right()
    small = Outcomes({s: flipped(BASE.values[s], 0.0, 12) for s in SEEDS}, {})
    table = run_table(BASE, (arm("good"), good), (arm("small"), small), (arm("base"), BASE))
    assert [(p.a, p.b) for p in table.pairs] == [
        ("good", "small"),
        ("good", "base"),
        ("small", "base"),
    ]
    raw = [p.p for p in table.pairs]
    assert all(p is not None for p in raw)
    # Holm on three p-values: the smallest is multiplied by 3.
    order = sorted(range(3), key=lambda k: raw[k])  # type: ignore[arg-type,return-value]
    smallest = table.pairs[order[0]]
    assert smallest.p_holm == pytest.approx(min(1.0, 3 * smallest.p), rel=1e-9)  # type: ignore[operator]
    assert all(p.p_holm >= p.p for p in table.pairs)  # type: ignore[operator]
    # A control is never in a pair.
    with_control = run_table(BASE, (arm("good"), good), (arm("c", "control"), small))
    assert with_control.pairs == []


def test_pairs_are_part_of_the_canonical_table_and_recompute_to_the_same_bytes() -> None:
    a = Outcomes({s: binary(0.55, s + 3) for s in SEEDS}, {})
    b = Outcomes({s: binary(0.6, s + 5) for s in SEEDS}, {})
    first = run_table(BASE, (arm("a"), a), (arm("b"), b))
    again = run_table(Outcomes(dict(BASE.values), {}), (arm("b"), b), (arm("a"), a))
    assert first.canonical() == again.canonical() and first.sha256() == again.sha256()
    assert '"pairs":[{' in first.canonical()
    # The pairs count in the hash: a table without them is another table.
    assert ConfirmationTable(**{**first.__dict__, "pairs": []}).sha256() != first.sha256()


def test_a_pair_where_one_arm_missed_a_seed_gets_no_verdict() -> None:
    seeds = (1000, 1001, 1002)
    base = Outcomes({s: binary(0.5, s) for s in seeds}, {})
    good = Outcomes({s: {k: 1.0 for k in base.values[s]} for s in seeds[:2]}, {}, frozenset({1002}))
    table = run_table(base, (arm("good"), good), (arm("same"), base))
    (pair,) = table.pairs
    assert pair.verdict == "no difference shown" and "1002" in pair.reason
    assert pair.seeds == [1000, 1001]


def test_a_table_stored_before_pairs_still_shows(capsys) -> None:
    from agent.cli.render import print_table

    table = run_table(BASE, (arm("good"), all_right()), (arm("same"), BASE)).to_json()
    old = {k: v for k, v in table.items() if k != "pairs"}
    assert display_pairs(old) == [] and "Pairs of finalists" not in markdown(old)
    console = Console(width=200, record=True)
    print_table(console, old)
    assert "pairs of finalists" not in console.export_text()
    print_table(console, table)
    shown = console.export_text()
    assert "pairs of finalists" in shown and "idea 1 vs idea 2" in shown
    assert "idea 1 better" in shown
    cells = display_pairs(table)
    assert cells[0]["pair"] == "idea 1 vs idea 2" and cells[0]["verdict"] == "idea 1 better"
    assert "| idea 1 vs idea 2 |" in markdown(table)


def test_the_null_control_band_applies_to_pairs() -> None:
    worse = Outcomes({s: flipped(BASE.values[s], 1.0, 60) for s in SEEDS}, {})
    small = Outcomes({s: flipped(BASE.values[s], 0.0, 30) for s in SEEDS}, {})
    null = Arm("null", "the unchanged baseline", "control", 0.5, null=True)
    arms = [(arm("small"), small), (arm("base"), BASE), (null, worse)]
    table = build_table("s", "accuracy", "maximize", 0.05, BASE, arms)
    (pair,) = table.pairs
    assert pair.verdict == "no difference shown" and "does not clear that" in pair.reason
    assert np.isclose(pair.diff or 0.0, 30 / 400)
