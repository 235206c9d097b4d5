"""FineWeb preparation, run here on a synthetic document stream: shard format, held-out
split, and exact resume after a crash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest

EOT = 50256


def docs(n: int = 60) -> list[str]:
    rng = np.random.default_rng(0)
    return [
        " ".join(str(t) for t in rng.integers(0, 50000, int(rng.integers(5, 90)))) for _ in range(n)
    ]


def encode(text: str) -> list[int]:
    return [int(t) for t in text.split()]


def stream(items: list[str]) -> list[int]:
    out: list[int] = []
    for d in items:
        out += [EOT, *encode(d)]
    return out


def crash_after(items: list[str], n: int) -> Iterator[str]:
    for i, d in enumerate(items):
        if i == n:
            raise KeyboardInterrupt("simulated crash")
        yield d


def write(prepare: ModuleType, root: Path, items, train_tokens: int = 1500) -> object:
    w = prepare.ShardWriter(root / "data", root / "heldout", shard_tokens=400, val_tokens=300)
    w.run(items, encode, EOT, train_tokens)
    return w


def shard_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.bin"))}


def test_shards_hold_the_token_stream_in_order(
    prepare: ModuleType, repo: SimpleNamespace, evaluator: ModuleType, tmp_path: Path
) -> None:
    items = docs()
    write(prepare, tmp_path, items)
    val = sorted((tmp_path / "heldout").glob("*.bin"))
    train = sorted((tmp_path / "data").glob("fineweb_train_*.bin"))
    assert [p.name for p in val] == ["fineweb_val_000000.bin"]
    assert [len(repo.data.read_shard(p)) for p in train] == [400, 400, 400, 300]
    tokens = np.concatenate([repo.data.read_shard(p) for p in val + train])
    assert tokens.tolist() == stream(items)[:1800]
    assert np.array_equal(evaluator.read_shard(val[0]), repo.data.read_shard(val[0]))
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("crash_at", [3, 17, 31])
def test_resume_after_a_crash_writes_identical_shards(
    prepare: ModuleType, tmp_path: Path, crash_at: int
) -> None:
    items = docs()
    write(prepare, tmp_path / "whole", items)
    with pytest.raises(KeyboardInterrupt):
        write(prepare, tmp_path / "resumed", crash_after(items, crash_at))
    resumed = write(prepare, tmp_path / "resumed", items)
    assert shard_files(tmp_path / "resumed") == shard_files(tmp_path / "whole")
    assert resumed.state["tokens"] == 1800


def test_a_finished_run_does_nothing_more(prepare: ModuleType, tmp_path: Path) -> None:
    items = docs()
    write(prepare, tmp_path, items)
    before = shard_files(tmp_path)
    w = write(prepare, tmp_path, items)
    assert shard_files(tmp_path) == before and w.state["tokens"] == 1800


def test_bad_shard_is_rejected(repo: SimpleNamespace, tmp_path: Path) -> None:
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"\0" * 2048)
    with pytest.raises(ValueError, match="not a token shard"):
        repo.data.read_shard(bad)
