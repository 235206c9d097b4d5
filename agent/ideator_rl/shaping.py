"""From execution rewards to the rewards GRPO trains on: the transform, and the collapse
counter-measures (diversity penalty, novelty bonus, length bonus).

Pure functions over one batch, so each term can be tested and plotted on its own. A batch is
`groups` of sample indices (one group per prompt); GRPO compares samples inside a group only.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from agent.dedup import DuplicateIndex, Embed, jaccard, shingles


def transform(
    rewards: Sequence[float], groups: Sequence[Sequence[int]], mode: str, baseline: float | None
) -> list[float]:
    """raw: as is; baseline-relative: reward / baseline - 1; rank: 0..1 inside the group."""
    if mode == "raw":
        return list(rewards)
    if mode == "baseline-relative":
        if not baseline:
            raise ValueError("--reward baseline-relative needs a measured, non-zero baseline")
        return [r / baseline - 1 for r in rewards]
    if mode != "rank":
        raise ValueError(f"unknown reward mode {mode!r}")
    out = [0.0] * len(rewards)
    for group in groups:
        if len(group) == 1:
            out[group[0]] = 0.5
            continue
        ordered = sorted(group, key=lambda i: rewards[i])
        for i in group:  # ties share their mean rank
            below = sum(rewards[j] < rewards[i] for j in ordered)
            equal = sum(rewards[j] == rewards[i] for j in ordered)
            out[i] = (below + (equal - 1) / 2) / (len(group) - 1)
    return out


def repeat_shares(
    ideas: Sequence[str],
    groups: Sequence[Sequence[int]],
    history: Sequence[str] = (),
    embed: Embed | None = None,
) -> tuple[list[float], list[float]]:
    """For each idea: the share of the others in its group it near-duplicates, and the share of
    `history` (earlier steps' ideas) it near-duplicates. Empty ideas repeat nothing.

    Near-duplicate means what the search's dedup means: same words, n-gram overlap, or (with an
    embedder) embedding similarity, and the same numbers (lr 0.03 is not lr 0.003)."""
    past = DuplicateIndex(embed=embed)
    for n, h in enumerate(h for h in history if h):
        past.add(str(n), h)
    in_group = [0.0] * len(ideas)
    in_history = [0.0] * len(ideas)
    for group in groups:
        members = DuplicateIndex(embed=embed)
        for i in group:
            if ideas[i]:
                members.add(str(i), ideas[i])
        for i in group:
            if ideas[i] and len(group) > 1:
                in_group[i] = len(members.matches(ideas[i]) - {str(i)}) / (len(group) - 1)
    for i, idea in enumerate(ideas):
        if idea and len(past):
            in_history[i] = len(past.matches(idea)) / len(past)
    return in_group, in_history


def novel(ideas: Sequence[str], archive: Sequence[str], embed: Embed | None = None) -> list[bool]:
    """Whether each idea repeats nothing in the archive (ideas already in the store)."""
    index = DuplicateIndex(embed=embed)
    for n, text in enumerate(archive):
        index.add(str(n), text)
    return [bool(i) and index.check(i) is None for i in ideas]


def length_bonuses(tokens: Sequence[int], bonus: float, cap: int) -> list[float]:
    return [bonus * min(t, cap) / cap for t in tokens]


@dataclass(frozen=True)
class Shaped:
    reward: float  # what GRPO trains on
    transformed: float
    diversity_penalty: float
    novelty_bonus: float
    length_bonus: float


def shape(
    execution: Sequence[float],
    groups: Sequence[Sequence[int]],
    *,
    mode: str,
    baseline: float | None,
    succeeded: Sequence[bool] = (),
    diversity_weight: float = 0.0,
    in_group: Sequence[float] = (),
    in_history: Sequence[float] = (),
    novelty_weight: float = 0.0,
    is_novel: Sequence[bool] = (),
    length: Sequence[float] = (),
) -> list[Shaped]:
    """The transformed execution reward, then the counter-measure terms — for ideas that ran.

    A failed idea keeps exactly its (transformed) failure reward. Were the terms applied to
    failures, repeated garbage would score below varied garbage, and GRPO (which scales
    advantages inside a group) would push a policy whose ideas all fail towards ever more
    varied nonsense; we saw exactly that before gating the terms."""
    base = transform(execution, groups, mode, baseline)
    out = []
    for i, t in enumerate(base):
        if succeeded and not succeeded[i]:
            out.append(Shaped(t, t, 0.0, 0.0, 0.0))
            continue
        penalty = diversity_weight * max(
            in_group[i] if in_group else 0.0, in_history[i] if in_history else 0.0
        )
        bonus = novelty_weight if is_novel and is_novel[i] else 0.0
        lb = length[i] if length else 0.0
        out.append(Shaped(t - penalty + bonus + lb, t, penalty, bonus, lb))
    return out


# -- collapse instruments -------------------------------------------------------------------


def clusters(ideas: Sequence[str], embed: Embed | None = None) -> list[list[int]]:
    """Greedy near-duplicate clusters, largest first; all empty ideas form one cluster."""
    index = DuplicateIndex(embed=embed)
    members: dict[str, list[int]] = {}
    empty = [i for i, t in enumerate(ideas) if not t]
    for i, text in enumerate(ideas):
        if not text:
            continue
        dup = index.check(text)
        if dup is None:
            index.add(str(i), text)
            members[str(i)] = [i]
        else:
            members[dup.of].append(i)
    out = list(members.values()) + ([empty] if empty else [])
    return sorted(out, key=len, reverse=True)


def top_cluster_share(ideas: Sequence[str], k: int = 2, embed: Embed | None = None) -> float:
    """Share of the ideas in the k largest clusters: 1.0 when the policy writes k ideas only."""
    if not ideas:
        return 0.0
    return sum(len(c) for c in clusters(ideas, embed)[:k]) / len(ideas)


def mean_pairwise_similarity(ideas: Sequence[str]) -> float:
    """Mean n-gram Jaccard similarity over all pairs of non-empty ideas (0 distinct, 1 same)."""
    grams = [shingles(t) for t in ideas if t]
    pairs = list(itertools.combinations(grams, 2))
    return statistics.fmean(jaccard(a, b) for a, b in pairs) if pairs else 0.0
