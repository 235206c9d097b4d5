"""What the ideator is told about earlier rounds: ranked by the rank metric, with the focus's
feedback metrics, and a warning where F1 rose by abstaining."""

from __future__ import annotations

from pathlib import Path

from agent.search.abstention import abstention_note
from agent.search.archive import ArchivedIdea
from agent.search.feedback import ranked_summary
from agent.search.ideators import IdeationContext
from agent.search.ranking import rank_value, ranked
from environments import load_environment
from tests.search.focus_toy import add_focus

BASE = {"f1": 0.50, "precision": 0.50, "accuracy": 0.50, "format_rate": 1.0}


def idea(n: int, epoch: int, reward: float | None, status: str = "succeeded", **m: float):
    return ArchivedIdea(f"i{n}", f"idea {n}", epoch, "fresh", status, None, reward, {}, m)


def test_f1_that_rose_by_abstaining_is_named_and_an_honest_rise_is_not() -> None:
    abstains = {"f1": 0.6, "precision": 0.9, "accuracy": 0.45, "format_rate": 0.5}
    note = abstention_note(abstains, BASE)
    assert note is not None and note.startswith("f1 rose by abstention")
    assert "format rate 1 -> 0.5" in note and "accuracy 0.5 -> 0.45" in note
    assert abstention_note(abstains, BASE, "precision") is not None
    assert abstention_note({**abstains, "accuracy": 0.55}, BASE) is None  # really better
    assert abstention_note({**abstains, "format_rate": 1.0}, BASE) is None  # answers all
    assert abstention_note({"f1": 0.9}, BASE) is None  # metrics missing: nothing to say


def test_rounds_are_ranked_by_the_rank_metric_with_the_feedback_metrics(toy_env: Path) -> None:
    env = load_environment(add_focus(toy_env)).focused("schedule")
    history = [
        idea(1, 0, 0.9, val_mse=0.4),
        idea(2, 0, 0.5, val_mse=0.1),  # lower val_mse ranks first: the manifest minimizes it
        idea(3, 0, None, status="failed"),
        idea(4, 1, 0.7, val_mse=0.2),
    ]
    ctx = IdeationContext(env, "tiny", 2, history, 0.6, 0, "val_mse", ["val_mse"], {})
    text = ranked_summary(ctx)
    round1 = text[text.index("## Round 1") : text.index("## Round 2")]
    assert round1.index("idea 2") < round1.index("idea 1")
    assert "1. reward 0.5, val_mse 0.1: idea 2" in round1
    assert "- failed (failed): idea 3" in round1
    assert "ranked by val_mse" in text
    assert [i.idea_id for i in ranked(history, "val_mse", env)] == ["i2", "i4", "i1"]
    assert rank_value(history[0], None, env) == 0.9  # no rank metric: the reward
    # Before any result there is nothing to rank.
    empty = IdeationContext(env, "tiny", 0, [], None, 0, "val_mse", [], {})
    assert ranked_summary(empty) == ""


def test_the_summary_warns_on_abstention(toy_env: Path) -> None:
    env = load_environment(add_focus(toy_env))
    abstains = idea(1, 0, 0.45, f1=0.6, precision=0.9, accuracy=0.45, format_rate=0.5)
    ctx = IdeationContext(env, "tiny", 1, [abstains], 0.5, 0, "f1", ["f1"], BASE)
    assert "(WARNING: f1 rose by abstention" in ranked_summary(ctx)
