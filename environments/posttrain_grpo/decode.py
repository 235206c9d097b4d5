"""The evaluator's decoding loop on CPU: greedy or sampled completions with a key/value cache.

Three savings over transformers' `generate` on the tiny scale's thousands of short prompts:
- prompts are batched by exact token length, so no row is padded: a completion does not
  depend on which other prompts share its batch (nor on padding's rounding);
- a row leaves the batch when it emits a stop token, instead of decoding padding until the
  batch's longest completion ends (the tiny completions end at 20-36 of 48 tokens);
- the `n` samples of a prompt share one prompt pass, its cache copied `n` times.

Sampling draws every row's uniform numbers up front from `seed` (row i * n + j is sample j of
prompt i) and picks each token by inverting the softmax's cumulative distribution: the same
distribution as multinomial sampling, and the same samples however the rows are batched.

The loop reads nothing from the checkpoint but its forward pass: no generation config.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch


def generate(
    model: Any,
    tok: Any,
    prompts: list[str],
    max_new_tokens: int,
    stop_ids: list[int],
    batch_size: int,
    temperature: float = 0.0,
    n: int = 1,
    seed: int = 0,
) -> list[dict]:
    """[{text, tokens}] for each prompt, `n` samples per prompt in a row (greedy when
    `temperature` is 0): each completion up to and including its first stop token."""
    encoded = [tok.encode(p, add_special_tokens=True) for p in prompts]
    noise = None
    if temperature > 0:
        gen = torch.Generator().manual_seed(seed)
        noise = torch.rand(len(prompts) * n, max_new_tokens, generator=gen, dtype=torch.float64)
    by_length: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(i)
    per_call = max(1, batch_size // n)  # prompts per call: batch_size rows
    out: list[dict] = [{}] * (len(prompts) * n)
    for group in by_length.values():
        for start in range(0, len(group), per_call):
            idx = group[start : start + per_call]
            rows = [i * n + j for i in idx for j in range(n)]
            ids = torch.tensor([encoded[i] for i in idx])
            draws = None if noise is None else noise[rows]
            done = decode(model, ids, max_new_tokens, stop_ids, temperature, n, draws)
            for r, completion in zip(rows, done, strict=True):
                text = tok.decode(completion, skip_special_tokens=True)
                out[r] = {"text": text, "tokens": len(completion)}
    return out


@torch.inference_mode()
def decode(
    model: Any,
    ids: torch.Tensor,
    max_new_tokens: int,
    stop_ids: list[int],
    temperature: float = 0.0,
    n: int = 1,
    noise: torch.Tensor | None = None,
) -> list[list[int]]:
    """The completion ids of `n` rows per prompt of `ids` (prompts of one length, unpadded),
    row by row; `noise` holds each row's uniform numbers, one per step (sampling only)."""
    device = model.device
    cache_kw, keep_kw = _argument_names(model)
    length = ids.shape[1]
    keep = {keep_kw: 1} if keep_kw else {}
    out = model(input_ids=ids.to(device), use_cache=True, return_dict=True, **keep)
    cache = _cache_of(out)
    logits = out.logits[:, -1].float()
    if n > 1:
        cache.batch_repeat_interleave(n)
        logits = logits.repeat_interleave(n, 0)
    total = logits.shape[0]
    stops = torch.tensor(stop_ids, device=device)
    tokens = torch.zeros(total, max_new_tokens, dtype=torch.long)
    lengths = [max_new_tokens] * total
    alive = torch.arange(total)  # the rows still decoding, in batch order
    for step in range(max_new_tokens):
        if noise is None:
            nxt = logits.argmax(-1)
        else:
            nxt = _inverse_cdf(torch.softmax(logits / temperature, -1), noise[alive, step])
        tokens[alive, step] = nxt.cpu()
        ended = torch.isin(nxt, stops).cpu()
        for r in alive[ended].tolist():
            lengths[r] = step + 1
        if step == max_new_tokens - 1 or bool(ended.all()):
            break
        if ended.any():
            left = (~ended).nonzero().squeeze(1)
            cache.batch_select_indices(left.to(device))
            alive, nxt = alive[left], nxt[left.to(device)]
        position = torch.full((len(alive), 1), length + step, device=device)
        out = model(
            input_ids=nxt[:, None],
            position_ids=position,
            use_cache=True,
            return_dict=True,
            **{cache_kw: cache},
        )
        cache = _cache_of(out)
        logits = out.logits[:, -1].float()
    return [row[:k] for row, k in zip(tokens.tolist(), lengths, strict=True)]


def _inverse_cdf(probs: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """One token per row: the first whose cumulative probability exceeds the row's uniform
    number (scaled to the row's total, so rounding cannot step past the last token)."""
    cdf = probs.double().cumsum(-1)
    target = uniform.to(cdf.device)[:, None] * cdf[:, -1:]
    return torch.searchsorted(cdf, target, right=True).squeeze(1).clamp_max(cdf.shape[1] - 1)


def _argument_names(model: Any) -> tuple[str, str | None]:
    """(the forward argument that takes the cache, the one that keeps only the last logits):
    transformers renamed both across the versions this environment supports."""
    params = inspect.signature(model.forward).parameters
    cache = "cache" if "cache" in params else "past_key_values"
    keep = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
    return cache, keep


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values
