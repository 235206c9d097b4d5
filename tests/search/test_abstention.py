"""F1 bought by abstention (agent/search/abstention.py), alone and on the confirmation table."""

from __future__ import annotations

from agent.search.abstention import abstention_note, mean_metrics
from agent.search.verdicts import Outcomes
from tests.search.test_verdicts import BASE, SEEDS, arm, run_table

BASELINE = {"f1": 0.50, "precision": 0.55, "recall": 0.45, "format_rate": 0.90, "accuracy": 0.45}
ABSTAINS = {"f1": 0.58, "precision": 0.85, "recall": 0.44, "format_rate": 0.52, "accuracy": 0.44}


def test_f1_up_with_fewer_answers_and_no_more_right_is_noted() -> None:
    note = abstention_note(ABSTAINS, BASELINE)
    assert note == (
        "f1 rose by abstention: format rate 0.9 -> 0.52, accuracy 0.45 -> 0.44, recall 0.45 -> 0.44"
    )
    named = abstention_note(ABSTAINS, BASELINE, arm="'shy'")
    assert named is not None and named.startswith("f1 of 'shy' rose by abstention")


def test_no_note_when_the_rise_is_real_or_a_metric_is_missing() -> None:
    more_right = {**ABSTAINS, "accuracy": 0.5}
    assert abstention_note(more_right, BASELINE) is None  # accuracy rose: not abstention alone
    same_format = {**ABSTAINS, "format_rate": 0.95}
    assert abstention_note(same_format, BASELINE) is None  # it answered no fewer
    lower_f1 = {**ABSTAINS, "f1": 0.4}
    assert abstention_note(lower_f1, BASELINE) is None
    no_format = {k: v for k, v in ABSTAINS.items() if k != "format_rate"}
    assert abstention_note(no_format, BASELINE) is None
    only_f1 = {"f1": 0.6, "format_rate": 0.5}
    assert abstention_note(only_f1, {"f1": 0.5, "format_rate": 0.9}) is None  # no correctness
    # Any rank metric: precision rose the same way.
    assert abstention_note(ABSTAINS, BASELINE, rank_by="precision") is not None


def test_mean_metrics_skips_what_is_not_a_number() -> None:
    runs = [{"f1": 0.5, "ok": True, "name": "x"}, {"f1": 0.7, "format_rate": 1}]
    assert mean_metrics(runs) == {"f1": 0.6, "format_rate": 1.0}


def test_the_table_warns_about_a_finalist_whose_f1_rose_by_abstention() -> None:
    base = Outcomes(BASE.values, {s: BASELINE for s in SEEDS})
    shy = Outcomes(dict(BASE.values), {s: ABSTAINS for s in SEEDS})
    honest = Outcomes(dict(BASE.values), {s: {**ABSTAINS, "accuracy": 0.6} for s in SEEDS})
    table = run_table(base, (arm("shy"), shy), (arm("honest"), honest))
    found = [w for w in table.warnings if "rose by abstention" in w]
    assert found == [
        "f1 of 'text of shy' rose by abstention: format rate 0.9 -> 0.52, "
        "accuracy 0.45 -> 0.44, recall 0.45 -> 0.44"
    ]
    # Without the metrics (an evaluator that does not write them) there is nothing to say.
    assert not any("abstention" in w for w in run_table(BASE, (arm("shy"), shy)).warnings)
