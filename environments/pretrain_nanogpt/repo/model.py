"""A GPT language model: pre-norm transformer blocks, rotary positions, tied embeddings.

The evaluator's contract with this file: `GPT(GPTConfig(**ckpt["config"]))` rebuilds the
model, and `model(idx)` maps token ids (B, T) to next-token logits (B, T, vocab_size) for
any T up to `seq_len`. The forward pass must be exportable with `torch.export` (no Python
branching on tensor values) and causal: the logits at position t may depend only on
tokens 0..t, and never on other rows of the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GPTConfig:
    vocab_size: int = 256
    seq_len: int = 256  # the longest sequence the model is built for
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    rope_base: float = 10000.0


class LayerNorm(nn.Module):
    """LayerNorm with a gain and no bias (PyTorch's fused kernel: fast on CPU too)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (x.size(-1),), self.weight, None, self.eps)


def rotary_tables(seq_len: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)  # (T, hd/2)
    return angles.cos(), angles.sin()


def apply_rotary(qk: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x1, x2) = (x[i], x[i + hd/2]) of each head by position-dependent angles:
    (x1 cos - x2 sin, x2 cos + x1 sin). qk is (B, T, ..., 2, hd/2), the halves of each head on
    the second-last axis; cos is (T, ..., 1, hd/2) and sin (T, ..., 2, hd/2) holds (-sin, sin),
    so the rotation is x * cos + swap(x) * sin: four large operators for q and k together
    instead of seven for each, and the same sums and products, rounded alike."""
    cos, sin = cos.to(qk.dtype), sin.to(qk.dtype)  # bfloat16 activations stay bfloat16
    return qk * cos + qk.roll(1, -2) * sin  # the swap: roll on the 2-long axis, faster than flip


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        H, hd = self.n_head, C // self.n_head
        qk, v = self.qkv(x).split((2 * C, C), dim=2)
        # q and k rotated in one pass, in the (B, T, H, hd) layout: every operator on these
        # tensors is a parallel region whose threads meet at a barrier, so fewer is faster,
        # most of all when another process holds a core.
        qk = apply_rotary(qk.view(B, T, 2, H, 2, hd // 2), cos, sin).flatten(-2)
        q, k = qk.unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v.view(B, T, H, hd)))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=False)
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.norm1 = LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.norm2 = LayerNorm(cfg.n_embd)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    rope_cos: torch.Tensor
    rope_sin: torch.Tensor

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = LayerNorm(cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: fewer parameters, better at small scale
        cos, sin = rotary_tables(cfg.seq_len, cfg.n_embd // cfg.n_head, cfg.rope_base)
        # Not saved in checkpoints: rebuilt from the config.
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # residual branches: GPT-2's depth scaling
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.size(1)
        # Broadcast against (B, T, q/k, H, half, hd/2); sin signed per half (see apply_rotary).
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        cos, sin = cos[:, None, None, None], torch.stack((-sin, sin), dim=1)[:, None, None]
        x = self.wte(idx)
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.lm_head(self.norm(x))
