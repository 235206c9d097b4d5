"""The GRPO objective: group-relative advantages and the clipped policy-gradient loss.

Each function is one research decision, kept small so an idea can replace it:
- `group_advantages`: how a completion's reward becomes its advantage;
- `token_logprobs`: the policy's log-probabilities of the sampled tokens;
- `policy_loss`: ratio clipping, the KL penalty and how token losses are aggregated.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def group_advantages(
    rewards: Tensor, group_size: int, normalize_std: bool = True, eps: float = 1e-4
) -> Tensor:
    """(r - mean of its group) / (std of its group), for rewards laid out group by group.

    A group whose completions all score the same gets zero advantage: it carries no signal
    about which completion is better."""
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    r = rewards.view(-1, group_size)
    adv = r - r.mean(dim=1, keepdim=True)
    if normalize_std:
        adv = adv / (r.std(dim=1, keepdim=True) + eps)
    # Exactly zero for a tied group: float rounding in the mean would leave ~1e-8 residues,
    # which the std division blows up into spurious signal.
    tied = (r.max(dim=1).values == r.min(dim=1).values).unsqueeze(1)
    return adv.masked_fill(tied, 0.0).reshape(-1)


def token_logprobs(
    model: Any, prompt_ids: Tensor, prompt_mask: Tensor, completion_ids: Tensor,
    completion_mask: Tensor, temperature: float = 1.0,
) -> Tensor:  # fmt: skip
    """log pi(token) of every completion token, (B, C), under the sampling temperature.

    Positions count real tokens only, so a left-padded prompt sees the same positions as
    in generation."""
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
    position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
    # The logits at position t predict token t+1: only the last C+1 positions are needed,
    # and computing only those saves a (B, P, vocab) tensor.
    n = completion_ids.shape[1]
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        logits_to_keep=n + 1,
    ).logits
    logits = logits[:, :-1].float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    picked = logits.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    # logsumexp per row instead of a full log_softmax: a 150k vocabulary does not fit twice.
    return picked - torch.logsumexp(logits, dim=-1)


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_range: float,
    aggregation: str,
    n_sequences: int,
    n_tokens: int,
    ref_logp: Tensor | None = None,
    kl_coef: float = 0.0,
) -> tuple[Tensor, dict[str, float]]:
    """Clipped surrogate loss of one micro-batch, scaled so micro-batch losses sum to the
    loss of the whole rollout batch (`n_sequences` completions, `n_tokens` tokens).

    aggregation "sequence": mean over each completion's tokens, then over completions
    (the original GRPO); "token": mean over all tokens of the batch, so long completions
    weigh more (DAPO)."""
    mask = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp)
    adv = advantages.unsqueeze(1)
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - clip_range, 1 + clip_range) * adv)
    per_token = -surrogate
    kl = torch.zeros_like(logp)
    if ref_logp is not None and kl_coef > 0:
        # k3 estimator of KL(pi || ref): unbiased, and never negative.
        delta = ref_logp - logp
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + kl_coef * kl
    if aggregation == "sequence":
        per_seq = (per_token * mask).sum(1) / mask.sum(1).clamp(min=1)
        loss = per_seq.sum() / n_sequences
    elif aggregation == "token":
        loss = (per_token * mask).sum() / n_tokens
    else:
        raise ValueError(f"unknown loss aggregation {aggregation!r}: use sequence or token")
    with torch.no_grad():
        n = mask.sum().clamp(min=1)
        clipped = ((ratio - 1).abs() > clip_range).to(mask.dtype)
        stats = {
            "clip_frac": float((clipped * mask).sum() / n),
            "kl": float((kl * mask).sum() / n),
            "ratio": float((ratio * mask).sum() / n),
        }
    return loss, stats
