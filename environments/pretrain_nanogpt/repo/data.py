"""Training data: token arrays on disk, and a seeded sampler of (input, target) batches.

`shakespeare` is Tiny Shakespeare as bytes (bundled, the first 90% of the text; the rest is
held out by the evaluator). `fineweb` is GPT-2 tokens in shards written by the environment's
`prepare_fineweb.py`; training reads only the `train` shards.

Batches are windows at random offsets drawn from one generator seeded by the run's seed:
every rank draws the same global batch and takes its own slice, so the data a run sees
depends on the seed alone, not on the number of GPUs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

SHARD_MAGIC = 20240520  # header[0] of a token shard
SHARD_HEADER_INTS = 256  # int32 header: magic, version, token count, then zeros


def data_dir() -> Path:
    """$NANOGPT_DATA_DIR, else the environment's data folder."""
    if os.environ.get("NANOGPT_DATA_DIR"):
        return Path(os.environ["NANOGPT_DATA_DIR"])
    env_dir = os.environ.get("EXECUTOR_ENV_DIR")
    return Path(env_dir) / "data" if env_dir else Path(__file__).resolve().parent.parent / "data"


def read_shard(path: Path) -> np.ndarray:
    """The uint16 tokens of one shard, memory-mapped."""
    header = np.fromfile(path, dtype=np.int32, count=SHARD_HEADER_INTS)
    if len(header) < 3 or header[0] != SHARD_MAGIC:
        raise ValueError(f"{path} is not a token shard (bad magic number)")
    n = int(header[2])
    tokens = np.memmap(path, dtype=np.uint16, mode="r", offset=SHARD_HEADER_INTS * 4, shape=(n,))
    return tokens


def load_train_tokens(dataset: str, root: Path | None = None) -> list[np.ndarray]:
    """The training token arrays of `dataset` (one per shard)."""
    root = root or data_dir()
    if dataset == "shakespeare":
        text = (root / "shakespeare" / "train.txt").read_bytes()
        return [np.frombuffer(text, dtype=np.uint8)]
    if dataset == "fineweb":
        shards = sorted((root / "fineweb10B").glob("fineweb_train_*.bin"))
        if not shards:
            raise SystemExit(
                f"no FineWeb shards in {root / 'fineweb10B'}: run "
                "`python prepare_fineweb.py` in the environment folder first"
            )
        return [read_shard(p) for p in shards]
    raise SystemExit(f"unknown dataset {dataset!r}: use shakespeare or fineweb")


class Batches:
    """Seeded random windows over token arrays; rank `rank` of `world_size` gets its slice."""

    def __init__(
        self,
        arrays: list[np.ndarray],
        batch_size: int,
        seq_len: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.arrays = arrays
        self.batch_size, self.seq_len = batch_size, seq_len
        self.rank, self.world_size = rank, world_size
        # Number of window starts in each array; windows never cross a shard boundary.
        starts = np.array([len(a) - seq_len - 1 for a in arrays])
        if (starts <= 0).any():
            raise ValueError(f"a token array is shorter than seq_len + 1 = {seq_len + 1}")
        self.cum_starts = np.cumsum(starts)
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), each (batch_size, seq_len) int64; targets are inputs shifted by 1."""
        total = self.batch_size * self.world_size
        picks = self.rng.integers(0, self.cum_starts[-1], size=total)
        mine = picks[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        shard = np.searchsorted(self.cum_starts, mine, side="right")
        offset = mine - np.concatenate(([0], self.cum_starts))[shard]
        rows = [
            np.asarray(self.arrays[s][o : o + self.seq_len + 1], dtype=np.int64)
            for s, o in zip(shard, offset, strict=True)
        ]
        buf = torch.from_numpy(np.stack(rows))
        return buf[:, :-1].contiguous(), buf[:, 1:].contiguous()
