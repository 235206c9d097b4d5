"""Rollouts: sample completions for a batch of prompts.

Two samplers with one interface, `generate(prompts, temperature, top_p) -> Rollout`:
- `HFSampler`: transformers' `generate` on the training model itself (CPU, or GPU without vLLM);
- `VLLMSampler`: a vLLM engine colocated on the training GPU; `sync_weights` copies the
  policy's weights into it after every optimizer step, so rollouts are always on-policy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from policy import plain_weights
from torch import Tensor

# End-of-turn tokens of Llama 3 instruct models: a chat policy ends its answer with any of
# them, and its tokenizer's eos names only one. Tokenizers without them stop on eos alone.
END_OF_TURN = ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>")


@dataclass
class Rollout:
    """Token ids of a batch of prompts and their sampled completions.

    prompt_ids are left-padded and completion_ids right-padded, so `cat` puts every
    completion right after its prompt; masks are 1 on real tokens (the eos included)."""

    prompt_ids: Tensor  # (B, P)
    prompt_mask: Tensor  # (B, P)
    completion_ids: Tensor  # (B, C)
    completion_mask: Tensor  # (B, C)
    texts: list[str]  # decoded completions, special tokens removed

    @property
    def completion_lengths(self) -> Tensor:
        return self.completion_mask.sum(1)


def stop_token_ids(tok: Any) -> list[int]:
    """The ids a completion ends at: the tokenizer's eos, then END_OF_TURN's in its vocab."""
    vocab = tok.get_vocab()
    ids = [tok.eos_token_id, *(vocab[t] for t in END_OF_TURN if t in vocab)]
    return list(dict.fromkeys(ids))


def completion_mask(completion_ids: Tensor, eos_id: int | list[int]) -> Tensor:
    """1 up to and including the first eos (any of `eos_id`, when a list) of each row; all
    ones when a row never ends."""
    stops = torch.tensor(eos_id if isinstance(eos_id, list) else [eos_id])
    is_eos = torch.isin(completion_ids, stops)
    after_eos = (is_eos.cumsum(1) - is_eos.long()) > 0  # strictly after the first eos
    return (~after_eos).long()


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(r)
            mask[i, width - len(r) :] = 1
    return ids, mask


def right_pad(rows: list[list[int]], pad_id: int) -> Tensor:
    width = max(1, max(len(r) for r in rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return ids


class HFSampler:
    """Sampling on the policy being trained, with a decoding loop of our own.

    The G completions of a problem share its prompt, so the prompt is run through the model
    once and its key/value cache copied G times; then one token per step for every row,
    until all rows have emitted eos or `max_new_tokens`."""

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int, batch_size: int):
        self.model, self.tok = model, tokenizer
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.stop_ids = stop_token_ids(tokenizer)

    def sync_weights(self, model: Any) -> None:
        """Nothing to copy: generation runs on the training model itself."""

    @torch.inference_mode()
    def generate(self, prompts: list[str], temperature: float, top_p: float = 1.0) -> Rollout:
        group = _group_size(prompts)
        unique = prompts[::group]
        rows = [self.tok.encode(p, add_special_tokens=True) for p in unique]
        was_training = self.model.training
        self.model.eval()
        per_call = max(1, self.batch_size // group)  # prompts per call: batch_size rows
        outs = [
            self._sample(rows[i : i + per_call], group, temperature, top_p)
            for i in range(0, len(rows), per_call)
        ]
        self.model.train(was_training)
        prompt_ids, prompt_mask = left_pad(
            [r for r in rows for _ in range(group)], self.tok.pad_token_id
        )
        width = max(o.shape[1] for o in outs)
        completion_ids = torch.cat(
            [
                torch.nn.functional.pad(o, (0, width - o.shape[1]), value=self.tok.pad_token_id)
                for o in outs
            ]
        )
        mask = completion_mask(completion_ids, self.stop_ids)
        completion_ids = completion_ids.masked_fill(mask == 0, self.tok.pad_token_id)
        texts = self.tok.batch_decode(completion_ids, skip_special_tokens=True)
        return Rollout(prompt_ids, prompt_mask, completion_ids, mask, texts)

    def _sample(
        self, rows: list[list[int]], group: int, temperature: float, top_p: float
    ) -> Tensor:
        """(len(rows) * group, <= max_new_tokens) sampled ids, `group` rows per prompt."""
        device = next(self.model.parameters()).device
        ids, mask = left_pad(rows, self.tok.pad_token_id)
        ids, mask = ids.to(device), mask.to(device)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(1) - 1).clamp(min=0),
            use_cache=True,
            logits_to_keep=1,
        )
        cache = out.past_key_values
        if group > 1:
            cache.batch_repeat_interleave(group)
        logits = out.logits[:, -1].repeat_interleave(group, 0)
        mask = mask.repeat_interleave(group, 0)
        position = mask.sum(1, keepdim=True)
        done = torch.zeros(mask.shape[0], dtype=torch.bool, device=device)
        stops = torch.tensor(self.stop_ids, device=device)
        tokens = []
        for _ in range(self.max_new_tokens):
            nxt = next_token(logits.float(), temperature, top_p)
            nxt = nxt.masked_fill(done, self.tok.pad_token_id)
            tokens.append(nxt)
            done |= torch.isin(nxt, stops)
            if done.all():
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            out = self.model(
                input_ids=nxt[:, None],
                attention_mask=mask,
                position_ids=position,
                past_key_values=cache,
                use_cache=True,
            )
            position = position + 1
            logits = out.logits[:, -1]
        return torch.stack(tokens, dim=1).cpu()


def _group_size(prompts: list[str]) -> int:
    """G when the prompts come as groups of G identical ones in a row, else 1."""
    g = 1
    while g < len(prompts) and prompts[g] == prompts[0]:
        g += 1
    ok = len(prompts) % g == 0 and all(
        prompts[i] == prompts[i - i % g] for i in range(len(prompts))
    )
    return g if ok else 1


def next_token(logits: Tensor, temperature: float, top_p: float = 1.0) -> Tensor:
    """Greedy at temperature 0; else a sample from softmax(logits / T), nucleus-filtered."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (always the top token)
        drop = sorted_p.cumsum(-1) - sorted_p >= top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return torch.multinomial(probs, 1).squeeze(1)


# --- vLLM ------------------------------------------------------------------------------


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def _engine_model(llm: Any) -> Any:
    """The torch module inside a vLLM engine running in this process.

    vLLM has moved it between releases; these are the places it has lived."""
    paths = (
        "llm_engine.model_executor.driver_worker.model_runner.model",  # V0 engine
        "llm_engine.model_executor.driver_worker.worker.model_runner.model",  # V1, in-process
    )
    for path in paths:
        obj = llm
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if obj is not None:
            return obj
    raise RuntimeError(
        "cannot reach the model inside this vLLM engine to sync weights; run with "
        "VLLM_ENABLE_V1_MULTIPROCESSING=0, or use --rollout_backend=hf"
    )


def named_weights(model: Any) -> Iterator[tuple[str, Tensor]]:
    """(name, tensor) pairs in the checkpoint naming vLLM's `load_weights` expects: a
    compiled or peft-wrapped model's prefixes stripped, LoRA adapters merged into the base
    weights (vLLM's engine holds the plain base architecture)."""
    return plain_weights(model)


class VLLMSampler:
    """Sampling with a vLLM engine colocated on the training GPU."""

    def __init__(self, model_name: str, tokenizer: Any, max_new_tokens: int, dtype: str,
                 gpu_memory: float, seed: int, max_model_len: int):  # fmt: skip
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine in this process
        from vllm import LLM

        self.tok, self.max_new_tokens = tokenizer, max_new_tokens
        self.stop_ids = stop_token_ids(tokenizer)
        self.llm = LLM(
            model=model_name,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory,
            max_model_len=max_model_len,
            seed=seed,
            enable_prefix_caching=True,  # the G samples of a prompt share its prefix
        )

    def sync_weights(self, model: Any) -> None:
        load_weights(self.llm, named_weights(model))

    def generate(self, prompts: list[str], temperature: float, top_p: float = 1.0) -> Rollout:
        from vllm import SamplingParams

        params = sampling_params(
            SamplingParams, temperature, top_p, self.max_new_tokens, self.stop_ids
        )
        rows = [self.tok.encode(p, add_special_tokens=True) for p in prompts]
        outs = self.llm.generate([{"prompt_token_ids": r} for r in rows], params, use_tqdm=False)
        completions = [list(o.outputs[0].token_ids) for o in outs]
        prompt_ids, prompt_mask = left_pad(rows, self.tok.pad_token_id)
        completion_ids = right_pad(completions, self.tok.pad_token_id)
        mask = torch.zeros_like(completion_ids)
        for i, c in enumerate(completions):
            mask[i, : len(c)] = 1  # vLLM stops at (and keeps) the eos or stop token
        texts = self.tok.batch_decode(completion_ids, skip_special_tokens=True)
        return Rollout(prompt_ids, prompt_mask, completion_ids, mask, texts)


def load_weights(llm: Any, weights: Iterable[tuple[str, Tensor]]) -> None:
    _engine_model(llm).load_weights(weights)
    if hasattr(llm, "reset_prefix_cache"):
        llm.reset_prefix_cache()  # cached prefixes hold the old weights' keys and values


def sampling_params(
    cls: Any, temperature: float, top_p: float, max_tokens: int, stop_ids: list[int] | None = None
) -> Any:
    """vLLM SamplingParams matching HFSampler's decoding (no top-k, ends at any of the
    `stop_ids`, which it keeps)."""
    return cls(
        temperature=temperature,
        top_p=top_p,
        top_k=-1 if temperature > 0 else 1,
        max_tokens=max_tokens,
        skip_special_tokens=True,
        stop_token_ids=list(stop_ids or []),
    )
