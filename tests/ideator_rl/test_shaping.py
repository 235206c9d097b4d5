"""The reward transform and the collapse counter-measures, one batch at a time."""

from __future__ import annotations

import pytest

from agent.ideator_rl import shaping

GROUP = [[0, 1, 2, 3]]


def ranking(rewards: list[float]) -> list[int]:
    return sorted(range(len(rewards)), key=lambda i: -rewards[i])


def test_diversity_term_penalizes_identical_ideas_and_reorders_the_group() -> None:
    ideas = ["lr=0.1 steps=500", "lr=0.1 steps=500", "lr=0.1 steps=500", "lr=0.03 steps=200"]
    execution = [0.95, 0.95, 0.95, 0.90]  # the distinct idea is slightly worse
    in_group, in_history = shaping.repeat_shares(ideas, GROUP)
    assert in_group == [2 / 3, 2 / 3, 2 / 3, 0.0]  # each copy repeats 2 of its 3 neighbours
    assert in_history == [0.0] * 4
    plain = shaping.shape(execution, GROUP, mode="raw", baseline=None)
    shaped = shaping.shape(
        execution,
        GROUP,
        mode="raw",
        baseline=None,
        diversity_weight=0.3,
        in_group=in_group,
        in_history=in_history,
    )
    assert ranking([s.reward for s in plain])[0] == 0  # without the term a copy ranks first
    assert ranking([s.reward for s in shaped])[0] == 3  # with it the distinct idea does
    assert shaped[3].diversity_penalty == 0.0  # the distinct idea is not penalized at all
    assert shaped[0].diversity_penalty == pytest.approx(0.2)
    assert shaped[0].reward == pytest.approx(0.75)


def test_rewordings_count_as_repeats_but_other_values_do_not() -> None:
    ideas = ["lr=0.1 steps=500", "steps=500 lr=0.1", "lr=0.01 steps=500", ""]
    in_group, _ = shaping.repeat_shares(ideas, GROUP)
    assert in_group[0] == in_group[1] == pytest.approx(1 / 3)  # reordered: the same idea
    assert in_group[2] == 0.0  # lr 0.01 is another experiment than lr 0.1
    assert in_group[3] == 0.0  # no idea repeats nothing


def test_history_term_penalizes_what_the_last_steps_wrote() -> None:
    ideas = ["use a cosine schedule", "add dropout to the attention layers"]
    _, in_history = shaping.repeat_shares(
        ideas, [[0, 1]], history=["Use a cosine schedule.", "label smoothing", "", "x=1"]
    )
    assert in_history == [pytest.approx(1 / 3), 0.0]
    shaped = shaping.shape(
        [1.0, 1.0], [[0, 1]], mode="raw", baseline=None, diversity_weight=0.6, in_history=in_history
    )
    assert shaped[0].reward == pytest.approx(0.8) and shaped[1].reward == 1.0


def test_transform_modes() -> None:
    groups = [[0, 1, 2], [3, 4]]
    rewards = [0.2, 0.5, 0.5, 0.0, 0.7]
    assert shaping.transform(rewards, groups, "raw", None) == rewards
    rel = shaping.transform(rewards, groups, "baseline-relative", 0.5)
    assert rel == pytest.approx([-0.6, 0.0, 0.0, -1.0, 0.4])
    # Ranks inside each group, ties sharing the mean: 0 worst, 1 best.
    assert shaping.transform(rewards, groups, "rank", None) == [0.0, 0.75, 0.75, 0.0, 1.0]
    with pytest.raises(ValueError, match="baseline"):
        shaping.transform(rewards, groups, "baseline-relative", None)


def test_length_bonus_is_capped_and_novelty_is_against_the_archive() -> None:
    assert shaping.length_bonuses([0, 50, 100, 400], 0.2, 100) == [0.0, 0.1, 0.2, 0.2]
    archive = ["lr=0.1 steps=500", "Use a cosine learning rate schedule"]
    assert shaping.novel(
        ["steps=500 lr=0.1", "lr=0.3", "", "cosine schedule for the LR"], archive
    ) == [False, True, False, False]
    shaped = shaping.shape(
        [0.5, 0.5],
        [[0, 1]],
        mode="raw",
        baseline=None,
        novelty_weight=0.1,
        is_novel=[True, False],
        length=[0.05, 0.0],
    )
    assert [s.reward for s in shaped] == pytest.approx([0.65, 0.5])


def test_collapse_instruments() -> None:
    collapsed = ["lr=0.1"] * 6 + ["lr=0.3", "steps=50"]
    assert shaping.top_cluster_share(collapsed) == pytest.approx(7 / 8)
    spread = [f"lr={v}" for v in (0.1, 0.2, 0.3, 0.4)]
    assert shaping.top_cluster_share(spread) == 0.5
    assert shaping.mean_pairwise_similarity(["a b c", "a b c"]) == 1.0
    assert shaping.mean_pairwise_similarity(["dropout", "cosine"]) < 0.2
    assert shaping.clusters(["x=1", "", "x=1", ""]) in ([[0, 2], [1, 3]], [[1, 3], [0, 2]])


def test_failed_ideas_keep_exactly_the_failure_reward() -> None:
    # Four failures, two of them the same idea: penalizing the copies would make the varied
    # failures look better, and GRPO would then teach the policy varied nonsense.
    ideas = ["lr=9", "lr=9", "momentum=0.9", "warp=1"]
    in_group, _ = shaping.repeat_shares(ideas, GROUP)
    shaped = shaping.shape(
        [0.0] * 4,
        GROUP,
        mode="raw",
        baseline=None,
        succeeded=[False] * 4,
        diversity_weight=0.5,
        in_group=in_group,
        novelty_weight=0.2,
        is_novel=[True] * 4,
        length=[0.1] * 4,
    )
    assert [s.reward for s in shaped] == [0.0] * 4
    mixed = shaping.shape(
        [0.9, 0.0],
        [[0, 1]],
        mode="raw",
        baseline=None,
        succeeded=[True, False],
        novelty_weight=0.2,
        is_novel=[True, True],
    )
    assert [s.reward for s in mixed] == pytest.approx([1.1, 0.0])
