"""Prepare FineWeb as GPT-2 token shards for the `gpu` and `speedrun` scales (run once).

    python prepare_fineweb.py                        # sample-10BT, 1B training tokens
    python prepare_fineweb.py --train-tokens 3e9     # more
    python prepare_fineweb.py --synthetic            # random tokens, no download: for
                                                     # throughput checks on a new machine

Documents are tokenized in order, each preceded by <|endoftext|>; the first
`--val-tokens` tokens become the held-out shard (written under `heldout/`, which training
never reads), the rest fill training shards under `data/`. The download is cached by the
Hugging Face hub, and shard writing resumes where it stopped: after each shard the script
records how far into the document stream it got (`progress.json`), and a rerun skips that far.
Every shard is written to a temporary name and renamed, so no half-written shard is ever read.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARD_MAGIC, SHARD_VERSION, SHARD_HEADER_INTS = 20240520, 1, 256
GPT2_EOT = 50256


def write_shard(path: Path, tokens: np.ndarray) -> None:
    """Header (magic, version, count) then uint16 tokens; atomic."""
    if tokens.size and int(tokens.max()) >= 2**16:
        raise ValueError("token ids must fit in uint16")
    header = np.zeros(SHARD_HEADER_INTS, dtype=np.int32)
    header[:3] = (SHARD_MAGIC, SHARD_VERSION, len(tokens))
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype(np.uint16).tobytes())
    os.replace(tmp, path)


def read_shard(path: Path) -> np.ndarray:
    """The uint16 tokens of a shard written by `write_shard`, memory-mapped."""
    header = np.fromfile(path, dtype=np.int32, count=SHARD_HEADER_INTS)
    if len(header) < 3 or header[0] != SHARD_MAGIC:
        raise ValueError(f"{path} is not a token shard (bad magic number)")
    return np.memmap(path, np.uint16, "r", offset=SHARD_HEADER_INTS * 4, shape=(int(header[2]),))


class ShardWriter:
    """Fills shards from a document stream; `progress.json` makes a rerun resume exactly."""

    def __init__(self, train_dir: Path, val_dir: Path, shard_tokens: int, val_tokens: int) -> None:
        self.train_dir, self.val_dir = train_dir, val_dir
        self.shard_tokens, self.val_tokens = shard_tokens, val_tokens
        self.state_path = train_dir / "progress.json"
        # docs: documents fully written; offset: tokens of the next document already written.
        self.state = {"docs": 0, "offset": 0, "shards": 0, "tokens": 0}
        if self.state_path.is_file():
            self.state = json.loads(self.state_path.read_text())

    def _next_path(self) -> Path:
        n = self.state["shards"]
        if n == 0:
            return self.val_dir / "fineweb_val_000000.bin"
        return self.train_dir / f"fineweb_train_{n:06d}.bin"

    def _capacity(self) -> int:
        return self.val_tokens if self.state["shards"] == 0 else self.shard_tokens

    def run(
        self,
        docs: Iterable[str],
        encode: Callable[[str], list[int]],
        eot: int,
        max_train_tokens: int,
        on_shard: Callable[[Path], None] = lambda _: None,
    ) -> None:
        self.train_dir.mkdir(parents=True, exist_ok=True)
        self.val_dir.mkdir(parents=True, exist_ok=True)
        goal = self.val_tokens + max_train_tokens
        buf = np.empty(self._capacity(), dtype=np.uint16)
        fill = 0
        doc_index, first = self.state["docs"], True
        for doc in _skip(docs, self.state["docs"]):
            if self.state["tokens"] >= goal:
                break
            toks = np.asarray([eot, *encode(doc)], dtype=np.uint16)
            pos = self.state["offset"] if first else 0
            first = False
            while pos < len(toks) and self.state["tokens"] + fill < goal:
                left = goal - self.state["tokens"] - fill
                take = min(len(toks) - pos, len(buf) - fill, left)
                buf[fill : fill + take] = toks[pos : pos + take]
                fill, pos = fill + take, pos + take
                if fill == len(buf):
                    path = self._next_path()
                    write_shard(path, buf[:fill])
                    done_doc = pos == len(toks)
                    self._save(doc_index + done_doc, 0 if done_doc else pos, fill)
                    on_shard(path)
                    buf, fill = np.empty(self._capacity(), dtype=np.uint16), 0
            doc_index += 1
        if fill:  # the stream or the goal ended inside a shard
            path = self._next_path()
            write_shard(path, buf[:fill])
            self._save(doc_index, 0, fill)
            on_shard(path)

    def _save(self, docs: int, offset: int, written: int) -> None:
        self.state = {
            "docs": docs,
            "offset": offset,
            "shards": self.state["shards"] + 1,
            "tokens": self.state["tokens"] + written,
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.state_path)


def _skip(docs: Iterable[str], n: int) -> Iterator[str]:
    it = iter(docs)
    for _ in range(n):
        next(it, None)
    return it


def gpt2_encoder() -> Callable[[str], list[int]]:
    try:
        import tiktoken

        enc = tiktoken.get_encoding("gpt2")
        return enc.encode_ordinary
    except ImportError:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained("gpt2")
        return lambda text: tok(text, add_special_tokens=False)["input_ids"]


def fineweb_docs(name: str, config: str, streaming: bool) -> Iterator[str]:
    from datasets import load_dataset

    ds = load_dataset(name, name=config, split="train", streaming=streaming)
    for row in ds:
        yield row["text"]


def synthetic_docs(seed: int = 0) -> Iterator[str]:
    """Endless random 'documents' of GPT-2-range token ids written as text (see encode)."""
    rng = np.random.default_rng(seed)
    while True:
        yield " ".join(map(str, rng.integers(0, GPT2_EOT, size=int(rng.integers(200, 2000)))))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="HuggingFaceFW/fineweb")
    p.add_argument("--config", default="sample-10BT")
    p.add_argument("--train-tokens", type=float, default=1e9)
    # The evaluator's two splits take alternate windows of 2 x 10,485,760 tokens (eval_settings.py).
    p.add_argument("--val-tokens", type=float, default=2 * 10_485_760 + 1)
    p.add_argument("--shard-tokens", type=float, default=1e8)
    p.add_argument("--streaming", action="store_true", help="stream instead of caching files")
    p.add_argument("--synthetic", action="store_true", help="random tokens; no download")
    p.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("NANOGPT_DATA_DIR") or HERE / "data")
    )
    p.add_argument(
        "--heldout-dir",
        type=Path,
        default=Path(os.environ.get("NANOGPT_HELDOUT_DIR") or HERE / "heldout"),
    )
    args = p.parse_args()
    sub = "fineweb10B"
    writer = ShardWriter(
        args.data_dir / sub, args.heldout_dir / sub, int(args.shard_tokens), int(args.val_tokens)
    )
    if args.synthetic:
        docs, encode = synthetic_docs(), lambda text: [int(t) for t in text.split()]
    else:
        docs, encode = fineweb_docs(args.dataset, args.config, args.streaming), gpt2_encoder()
    from rich.progress import Progress

    total = int(args.val_tokens + args.train_tokens)
    with Progress() as bar:
        task = bar.add_task("writing shards", total=total, completed=writer.state["tokens"])
        writer.run(
            docs,
            encode,
            GPT2_EOT,
            int(args.train_tokens),
            on_shard=lambda _: bar.update(task, completed=writer.state["tokens"]),
        )
    print(f"done: {writer.state['shards']} shards, {writer.state['tokens']:,} tokens")


if __name__ == "__main__":
    main()
