"""The GRPO objective: advantages, log-probabilities under padding, the clipped loss."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch


def test_advantages_are_normalized_within_each_group(repo: SimpleNamespace) -> None:
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.2, 0.2, 0.2, 1.2])
    adv = repo.grpo.group_advantages(rewards, group_size=4)
    g1, g2 = adv[:4], adv[4:]
    assert torch.allclose(g1, torch.tensor([1.0, -1.0, -1.0, 1.0]) * 0.5 / 0.57735, atol=1e-3)
    assert g1.sum().abs() < 1e-6 and g2.sum().abs() < 1e-6
    assert g2[3] > 0 > g2[0] and torch.allclose(g2[:3], g2[0].expand(3))


def test_tied_group_gets_exactly_zero_advantage(repo: SimpleNamespace) -> None:
    # 0.2 summed eight times is not 1.6 in floating point: the residue must not survive.
    rewards = torch.tensor([0.2] * 8 + [1.2] * 8, dtype=torch.float32)
    adv = repo.grpo.group_advantages(rewards, group_size=8)
    assert (adv == 0).all()


def test_advantages_without_std_normalization(repo: SimpleNamespace) -> None:
    rewards = torch.tensor([3.0, 1.0, 0.0, 0.0])
    adv = repo.grpo.group_advantages(rewards, group_size=2, normalize_std=False)
    assert adv.tolist() == [1.0, -1.0, 0.0, 0.0]


def test_advantages_need_whole_groups(repo: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="groups of 4"):
        repo.grpo.group_advantages(torch.zeros(6), group_size=4)


def _loss(repo: SimpleNamespace, logp, old, adv, mask, agg: str, n_seq=None, n_tok=None):
    return repo.grpo.policy_loss(
        logp, old, adv, mask, 0.2, agg, n_seq or logp.shape[0], n_tok or int(mask.sum())
    )


def test_on_policy_loss_is_minus_mean_advantage(repo: SimpleNamespace) -> None:
    logp = torch.randn(3, 5)
    mask = torch.ones(3, 5)
    adv = torch.tensor([1.0, -2.0, 0.5])
    loss, stats = _loss(repo, logp, logp.detach(), adv, mask, "sequence")
    assert loss.item() == pytest.approx(-adv.mean().item(), abs=1e-6)
    assert stats["clip_frac"] == 0 and stats["ratio"] == pytest.approx(1.0)


def test_sequence_and_token_aggregation_weigh_lengths_differently(repo: SimpleNamespace) -> None:
    logp = torch.zeros(2, 4, requires_grad=True)
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]])
    adv = torch.tensor([1.0, 1.0])
    seq, _ = _loss(repo, logp, logp.detach(), adv, mask, "sequence")
    (g_seq,) = torch.autograd.grad(seq, logp)
    tok, _ = _loss(repo, logp, logp.detach(), adv, mask, "token")
    (g_tok,) = torch.autograd.grad(tok, logp)
    # sequence: each completion counts 1/2, spread over its tokens; token: each token 1/5.
    assert g_seq[0, 0].item() == pytest.approx(-0.5) and g_seq[1, 0].item() == pytest.approx(-1 / 8)
    assert g_tok[0, 0].item() == pytest.approx(-0.2) and g_tok[1, 0].item() == pytest.approx(-0.2)
    assert (g_seq[0, 1:] == 0).all() and (g_tok[0, 1:] == 0).all(), "padding gets no gradient"
    with pytest.raises(ValueError, match="aggregation"):
        _loss(repo, logp, logp.detach(), adv, mask, "batch")


def test_micro_batch_losses_sum_to_the_full_batch_loss(repo: SimpleNamespace) -> None:
    torch.manual_seed(0)
    logp, old = torch.randn(6, 7), torch.randn(6, 7)
    mask = (torch.rand(6, 7) > 0.3).long()
    mask[:, 0] = 1
    adv = torch.randn(6)
    for agg in ("sequence", "token"):
        full, _ = _loss(repo, logp, old, adv, mask, agg)
        parts = sum(
            _loss(
                repo,
                logp[i : i + 2],
                old[i : i + 2],
                adv[i : i + 2],
                mask[i : i + 2],
                agg,
                n_seq=6,
                n_tok=int(mask.sum()),
            )[0]
            for i in (0, 2, 4)
        )
        assert parts.item() == pytest.approx(full.item(), rel=1e-5)


def test_clipping_stops_the_gradient_past_the_trust_region(repo: SimpleNamespace) -> None:
    old = torch.zeros(2, 1)
    logp = torch.tensor([[0.5], [0.05]], requires_grad=True)  # ratios 1.65 (clipped) and 1.05
    loss, stats = _loss(repo, logp, old, torch.tensor([1.0, 1.0]), torch.ones(2, 1), "token")
    (grad,) = torch.autograd.grad(loss, logp)
    assert grad[0, 0] == 0 and grad[1, 0] < 0
    assert stats["clip_frac"] == pytest.approx(0.5)
    # A negative advantage is not clipped on the side that makes the loss worse.
    loss, _ = _loss(repo, logp, old, torch.tensor([-1.0, -1.0]), torch.ones(2, 1), "token")
    (grad,) = torch.autograd.grad(loss, logp)
    assert grad[0, 0] > 0


def test_kl_penalty_is_zero_at_the_reference_and_positive_elsewhere(repo: SimpleNamespace) -> None:
    logp = torch.tensor([[-1.0, -2.0]])
    mask, adv = torch.ones(1, 2), torch.zeros(1)
    args = (logp, logp, adv, mask, 0.2, "token", 1, 2)
    same, s_same = repo.grpo.policy_loss(*args, ref_logp=logp.clone(), kl_coef=0.1)
    moved, s_moved = repo.grpo.policy_loss(*args, ref_logp=logp - 0.5, kl_coef=0.1)
    assert same.item() == pytest.approx(0.0) and s_same["kl"] == pytest.approx(0.0)
    assert moved.item() > 0 and s_moved["kl"] > 0


@pytest.mark.slow
def test_token_logprobs_do_not_depend_on_padding(repo: SimpleNamespace, base: tuple) -> None:
    model, tok = base
    model.eval()
    rollout = repo.rollout
    short = tok.encode("Question: Tom has 3 pens.\nAnswer:")
    long = tok.encode("Question: Ann has 12 cards. Ann buys 5 more cards.\nAnswer:")
    completions = [
        tok.encode(" 3 pens.", add_special_tokens=False),
        tok.encode(" 12 + 5 = 17.", add_special_tokens=False),
    ]
    p_ids, p_mask = rollout.left_pad([short, long], tok.pad_token_id)
    c_ids = rollout.right_pad(completions, tok.pad_token_id)
    c_mask = (
        torch.arange(c_ids.shape[1])[None] < torch.tensor([len(c) for c in completions])[:, None]
    ).long()
    with torch.no_grad():
        batched = repo.grpo.token_logprobs(model, p_ids, p_mask, c_ids, c_mask, temperature=0.7)
        for i, (p, c) in enumerate(zip([short, long], completions, strict=True)):
            alone = repo.grpo.token_logprobs(
                model,
                torch.tensor([p]),
                torch.ones(1, len(p), dtype=torch.long),
                torch.tensor([c]),
                torch.ones(1, len(c), dtype=torch.long),
                temperature=0.7,
            )
            assert torch.allclose(batched[i, : len(c)], alone[0], atol=1e-4)
            # and the same numbers as a plain softmax over the full logits
            ids = torch.tensor([p + c])
            logits = model(input_ids=ids).logits[0, len(p) - 1 : -1] / 0.7
            manual = logits.log_softmax(-1).gather(-1, torch.tensor(c)[:, None]).squeeze(-1)
            assert torch.allclose(alone[0], manual, atol=1e-4)
