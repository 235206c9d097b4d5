"""Rollouts: masks and padding, sampling with transformers, and the vLLM glue that can be
checked without vLLM (parameter mapping, weight names, finding the engine's model)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch


def test_completion_mask_ends_at_the_first_eos(repo: SimpleNamespace) -> None:
    eos = 2
    ids = torch.tensor([[5, 6, 2, 0, 2], [5, 5, 5, 5, 5], [2, 7, 7, 7, 7]])
    mask = repo.rollout.completion_mask(ids, eos)
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    # several stop tokens (an instruct policy's end of turn): the first of any
    stops = repo.rollout.completion_mask(torch.tensor([[5, 9, 2, 0], [5, 5, 5, 9]]), [2, 9])
    assert stops.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]


def test_padding_helpers(repo: SimpleNamespace) -> None:
    ids, mask = repo.rollout.left_pad([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert repo.rollout.right_pad([[1], [2, 3]], pad_id=9).tolist() == [[1, 9], [2, 3]]


@pytest.mark.slow
def test_hf_sampler_rolls_out_groups(repo: SimpleNamespace, base: tuple) -> None:
    model, tok = base
    sampler = repo.rollout.HFSampler(model, tok, max_new_tokens=40, batch_size=5)
    prompt = (
        "Question: Tom has 12 pens. Tom buys 7 more pens. How many pens does Tom have now?\nAnswer:"
    )
    model.train()
    torch.manual_seed(0)
    r = sampler.generate([prompt] * 8, temperature=1.0)
    assert model.training, "sampling puts the model back in training mode"
    assert r.prompt_ids.shape[0] == r.completion_ids.shape[0] == len(r.texts) == 8
    assert (r.prompt_ids[:, 0] == tok.bos_token_id).all() and r.prompt_mask.all()
    for row, m in zip(r.completion_ids, r.completion_mask, strict=True):
        n = int(m.sum())
        assert (row[n:] == tok.pad_token_id).all(), "padding after the eos"
        if n < row.shape[0] or row[-1] == tok.eos_token_id:
            assert row[n - 1] == tok.eos_token_id
    assert "\\boxed{" in " ".join(r.texts), "the warmed-up base answers in the format"
    assert len(set(r.texts)) > 1, "sampling at temperature 1 gives a varied group"
    greedy = sampler.generate([prompt] * 2, temperature=0.0)
    assert greedy.texts[0] == greedy.texts[1]


def test_vllm_sampling_params_match_hf_decoding(repo: SimpleNamespace) -> None:
    params = repo.rollout.sampling_params(dict, temperature=0.9, top_p=0.95, max_tokens=64)
    assert params == {
        "temperature": 0.9,
        "top_p": 0.95,
        "top_k": -1,
        "max_tokens": 64,
        "skip_special_tokens": True,
        "stop_token_ids": [],
    }
    assert repo.rollout.sampling_params(dict, 0.0, 1.0, 8)["top_k"] == 1
    assert repo.rollout.sampling_params(dict, 0.0, 1.0, 8, [7, 3])["stop_token_ids"] == [7, 3]


def test_weights_for_vllm_use_plain_checkpoint_names(repo: SimpleNamespace, base: tuple) -> None:
    model, _ = base
    compiled_like = torch.nn.Module()
    compiled_like._orig_mod = model  # what torch.compile's wrapper holds
    names = dict(repo.rollout.named_weights(compiled_like))
    assert set(names) == set(model.state_dict())
    assert all(not t.requires_grad for t in names.values())


class _FakeEngineModel:
    def __init__(self) -> None:
        self.loaded: list[str] = []

    def load_weights(self, weights) -> None:
        self.loaded = [name for name, _ in weights]


@pytest.mark.parametrize(
    "path",
    [
        "llm_engine.model_executor.driver_worker.model_runner.model",
        "llm_engine.model_executor.driver_worker.worker.model_runner.model",
    ],
)
def test_weight_sync_finds_the_engine_model(repo: SimpleNamespace, path: str) -> None:
    inner = _FakeEngineModel()
    obj: object = inner
    for attr in reversed(path.split(".")):
        obj = SimpleNamespace(**{attr: obj})
    resets = []
    obj.reset_prefix_cache = lambda: resets.append(1)  # type: ignore[attr-defined]
    repo.rollout.load_weights(obj, [("a.weight", torch.zeros(1)), ("b.weight", torch.ones(1))])
    assert inner.loaded == ["a.weight", "b.weight"] and resets == [1]


def test_weight_sync_says_what_to_do_when_the_engine_is_out_of_reach(repo: SimpleNamespace) -> None:
    with pytest.raises(RuntimeError, match="VLLM_ENABLE_V1_MULTIPROCESSING=0"):
        repo.rollout.load_weights(SimpleNamespace(llm_engine=None), [])


def _q(question: str) -> str:
    return f"Question: {question}\nAnswer:"


@pytest.mark.slow
def test_greedy_decoding_matches_transformers_generate(repo: SimpleNamespace, base: tuple) -> None:
    model, tok = base
    prompts = [
        _q("Tom has 12 pens. Tom buys 7 more pens. How many pens does Tom have now?"),
        _q("Ann buys 3 boxes. Each of them holds 4 cards. How many cards does Ann get?"),
        _q("Sam has 40 rocks. Sam gives 13 rocks to Mia. How many rocks does Sam have left?"),
    ]
    ours = repo.rollout.HFSampler(model, tok, max_new_tokens=30, batch_size=2).generate(
        prompts, 0.0
    )
    enc = tok(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        ref = model.generate(
            **enc, do_sample=False, max_new_tokens=30, pad_token_id=tok.pad_token_id
        )
    expected = tok.batch_decode(ref[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert ours.texts == expected


@pytest.mark.slow
def test_shared_prefill_samples_each_group_member_independently(
    repo: SimpleNamespace, base: tuple
) -> None:
    model, tok = base
    prompts = [_q("Leo has 17 shells. Leo buys 26 more shells. How many shells does Leo have?")] * 6
    prompts += [
        "Question: Ivy buys 8 packs. Each costs $7. How many dollars does Ivy spend?\nAnswer:"
    ] * 6
    sampler = repo.rollout.HFSampler(model, tok, max_new_tokens=30, batch_size=12)
    torch.manual_seed(0)
    r = sampler.generate(prompts, temperature=1.5)
    assert len(set(r.texts[:6])) > 1 and len(set(r.texts[6:])) > 1
    assert all("shells" not in t for t in r.texts[6:]), "rows keep their own prompt's cache"
    assert repo.rollout._group_size(prompts) == 6 and repo.rollout._group_size(prompts[:7]) == 1


def test_nucleus_sampling_keeps_only_the_top_mass(repo: SimpleNamespace) -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).expand(2000, 4)
    torch.manual_seed(0)
    picks = repo.rollout.next_token(logits, temperature=1.0, top_p=0.75)
    assert set(picks.tolist()) == {0, 1}
    assert repo.rollout.next_token(logits[:1], temperature=0.0).item() == 0
