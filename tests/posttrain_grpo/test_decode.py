"""The evaluator's CPU decoding loop (decode.py): the completions transformers' `generate`
gives, whatever the batch a prompt shares; samples that batching cannot change."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import torch

from tests.posttrain_grpo.conftest import ENV


@pytest.fixture(scope="module")
def decode(evaluator: ModuleType) -> ModuleType:
    module: ModuleType = evaluator._load("decode")
    return module


@pytest.fixture(scope="module")
def policy(evaluator: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """The shipped base policy and tokenizer, loaded as the evaluator loads a trained one."""
    staging = tmp_path_factory.mktemp("staged")
    loaded: tuple[Any, Any] = evaluator.load_policy(
        ENV / "base_tiny", "base_tiny", ENV, "cpu", staging
    )
    return loaded


@pytest.fixture(scope="module")
def prompts(evaluator: ModuleType, problems: ModuleType) -> list[str]:
    """Tiny problems and some of their variants: prompts of several token lengths."""
    template = (ENV / "prompts" / "tiny.txt").read_text()
    rows = problems.make_problems(6, seed=11, with_variants=True)
    texts = [r["question"] for r in rows] + [r["variants"]["words"] for r in rows[:3]]
    return [template.replace("{question}", t) for t in texts]


def _stops(evaluator: ModuleType, tok: Any) -> list[int]:
    ids: list[int] = evaluator.stop_token_ids(tok, evaluator.SCALES["tiny"])
    return ids


@pytest.mark.slow  # loads the base policy with transformers
def test_greedy_is_transformers_greedy_in_any_batch(
    evaluator: ModuleType, decode: ModuleType, policy: tuple[Any, Any], prompts: list[str]
) -> None:
    model, tok = policy
    tiny = evaluator.SCALES["tiny"]
    stops = _stops(evaluator, tok)
    lengths = {len(tok.encode(p)) for p in prompts}
    assert len(lengths) > 2, "control: prompts of several lengths, so several batches"
    batched = decode.generate(model, tok, prompts, tiny.max_new_tokens, stops, batch_size=512)
    alone = [
        decode.generate(model, tok, [p], tiny.max_new_tokens, stops, batch_size=1)[0]
        for p in prompts
    ]
    assert batched == alone
    # transformers' own greedy decoding, one prompt at a time (nothing padded)
    reference = [evaluator._generate_hf(model, tok, [p], tiny, 0.0)[0] for p in prompts]
    assert batched == reference
    ended = [c["tokens"] < tiny.max_new_tokens for c in batched]
    assert any(ended), "control: some completions stop before the limit"


@pytest.mark.slow  # loads the base policy with transformers
def test_rows_leave_the_batch_at_their_stop_token(
    evaluator: ModuleType, decode: ModuleType, policy: tuple[Any, Any], problems: ModuleType
) -> None:
    """Prompts of one length in one batch, ending at different steps: each row decodes as it
    would alone, up to and including its first stop token."""
    model, tok = policy
    stops = _stops(evaluator, tok)
    template = (ENV / "prompts" / "tiny.txt").read_text()
    by_length: dict[int, list[list[int]]] = {}
    for row in problems.make_problems(40, seed=11):
        ids = tok.encode(template.replace("{question}", row["question"]))
        by_length.setdefault(len(ids), []).append(ids)
    batch = max(by_length.values(), key=len)[:8]
    together = decode.decode(model, torch.tensor(batch), 48, stops)
    alone = [decode.decode(model, torch.tensor([ids]), 48, stops)[0] for ids in batch]
    assert together == alone
    assert len({len(r) for r in together}) > 1, "control: rows leave the batch at other steps"
    for r in together:
        assert r[-1] in stops or len(r) == 48
        assert not set(r[:-1]) & set(stops), "nothing is kept after the first stop"


@pytest.mark.slow  # loads the base policy with transformers
def test_samples_do_not_depend_on_the_batch(
    evaluator: ModuleType, decode: ModuleType, policy: tuple[Any, Any], prompts: list[str]
) -> None:
    model, tok = policy
    stops = _stops(evaluator, tok)

    few = prompts[:4]

    def sample(size: int, seed: int = 0) -> list[dict]:
        out: list[dict] = decode.generate(model, tok, few, 32, stops, size, 1.0, n=3, seed=seed)
        return out

    together = sample(512)
    assert len(together) == 3 * len(few)
    # One prompt (its 3 rows) per call, or two: the same samples, row i*3+j's own draws.
    assert sample(3) == together
    assert sample(6) == together
    assert len({c["text"] for c in together}) > len(few), "control: the samples differ"
    assert sample(512, seed=1) != together, "control: another seed, other samples"


def test_sampling_never_picks_a_token_without_probability(decode: ModuleType) -> None:
    probs = torch.tensor([[0.0, 0.5, 0.0, 0.5]] * 5)
    uniform = torch.tensor([0.0, 0.25, 0.4999, 0.5, 1.0 - 2**-53], dtype=torch.float64)
    assert decode._inverse_cdf(probs, uniform).tolist() == [1, 1, 1, 3, 3]


@pytest.mark.slow  # loads the base policy with transformers
def test_the_evaluator_decodes_with_the_loop_on_a_cpu(
    evaluator: ModuleType,
    policy: tuple[Any, Any],
    prompts: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, tok = policy
    tiny = evaluator.SCALES["tiny"]
    calls: list[str] = []
    monkeypatch.setattr(evaluator, "_generate_hf", lambda *a: calls.append("hf") or [])
    out = evaluator.generate(model, tok, prompts[:2], tiny, 0.0)
    assert len(out) == 2 and not calls
