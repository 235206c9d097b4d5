"""Reproduce the `tiny` scale's data and warmed-up base policy (about 3 minutes on 2 CPU cores).

    python make_base.py            # writes repo/data/tiny_train.jsonl and base_tiny/
                                   # (tokenizer + Llama-style policy)

1. Problems (problems.py): GRPO training problems and a supervised warm-up set, from two
   seeds. There is no held-out file: the evaluator draws its held-out problems per run
   directory from a secret seed, leaving out every text of both sets (problems.py's
   `heldout_problems` and `warmup_questions`, which regenerates the warm-up set from
   problems.py's constants, so change those rather than the flags below for a new base).
2. A byte-level BPE tokenizer trained with `tokenizers` on the warm-up text, digits split one
   per token (so arithmetic is learnable digit by digit).
3. A tiny Llama built from a config and taught the task by a short supervised warm-up: long
   enough to often get the arithmetic right, short enough to leave GRPO something to improve.
   60% of the warm-up solutions state the answer in free form ("We get 13.") rather than in
   the \\boxed{} the task asks for, as a pretrained base model often does: the base policy
   then boxes only some of its answers, and the grader counts the rest as abstentions.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from problems import (  # noqa: E402
    TRAIN_PROBLEMS,
    TRAIN_SEED,
    VARIANT_RATE,
    WARMUP_PROBLEMS,
    WARMUP_SEED,
    make_problems,
)

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
PROMPT = (HERE / "prompts" / "tiny.txt").read_text()


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(path)


def make_data(args: argparse.Namespace) -> list[dict]:
    """Write the GRPO training problems; return the warm-up problems."""
    train = make_problems(args.train_problems, seed=TRAIN_SEED, variant_rate=args.variant_rate)
    warmup = make_problems(args.warmup_problems, seed=WARMUP_SEED, variant_rate=args.variant_rate)
    write_jsonl(HERE / "repo" / "data" / "tiny_train.jsonl", train)
    return warmup


def example_text(p: dict) -> tuple[str, str]:
    return PROMPT.replace("{question}", p["question"]), " " + p["solution"]


def free_form(problems: list[dict], share: float, seed: int) -> list[dict]:
    """`share` of the problems with their answer stated in free form instead of boxed."""
    rng = random.Random(seed)
    out = []
    for p in problems:
        if rng.random() < share:
            boxed = f"The answer is \\boxed{{{p['answer']}}}."
            p = {**p, "solution": p["solution"].replace(boxed, f"We get {p['answer']}.")}
        out.append(p)
    return out


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    # Every encoded text starts with bos, as the policy saw in its warm-up.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, padding_side="left"
    )


def build_model(vocab_size: int, tok: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return LlamaForCausalLM(config)


def encode(tok: PreTrainedTokenizerFast, p: dict) -> tuple[list[int], int]:
    """Token ids of bos + prompt + completion + eos, and where the completion starts."""
    prompt, completion = example_text(p)
    ids = tok.encode(prompt)  # bos + prompt
    n_prompt = len(ids)
    ids += [*tok.encode(completion, add_special_tokens=False), tok.eos_token_id]
    return ids, n_prompt


def warm_up(model: LlamaForCausalLM, tok: PreTrainedTokenizerFast, data: list[dict], args) -> None:
    """Supervised warm-up: next-token loss on the completion tokens only."""
    encoded = [encode(tok, p) for p in data]
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1, betas=(0.9, 0.95))
    rng = random.Random(0)
    model.train()
    t0 = time.time()
    for step in range(args.steps):
        lr = (
            args.lr
            * min(1.0, (step + 1) / 20)
            * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        )
        for g in opt.param_groups:
            g["lr"] = lr
        batch = rng.sample(encoded, args.batch_size)
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), tok.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        for i, (ids, n_prompt) in enumerate(batch):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            labels[i, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
        logits = model(input_ids=input_ids).logits[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"warm-up step {step:4d}  loss {loss.item():.3f}  {time.time() - t0:.0f}s")


@torch.no_grad()
def greedy_accuracy(model, tok, problems: list[dict]) -> float:
    model.eval()
    prompts = [example_text(p)[0] for p in problems]
    enc = tok(prompts, return_tensors="pt", padding=True)
    out = model.generate(**enc, max_new_tokens=48, do_sample=False, pad_token_id=tok.pad_token_id)
    texts = tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    correct = sum(f"\\boxed{{{p['answer']}}}" in t for p, t in zip(problems, texts, strict=True))
    return correct / len(problems)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--train-problems", type=int, default=TRAIN_PROBLEMS)
    ap.add_argument("--warmup-problems", type=int, default=WARMUP_PROBLEMS)
    ap.add_argument(
        "--variant-rate",
        type=float,
        default=VARIANT_RATE,
        help="share of training questions that are perturbed",
    )
    ap.add_argument("--free-form", type=float, default=0.6, help="share of answers not boxed")
    ap.add_argument("--vocab-size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=600, help="warm-up optimizer steps")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--out", type=Path, default=HERE / "base_tiny")
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    warmup = make_data(args)
    warmup = free_form(warmup, args.free_form, seed=5)
    texts = [" ".join(example_text(p)) for p in warmup]
    tok = train_tokenizer(texts, args.vocab_size)
    model = build_model(len(tok), tok)
    print(
        f"policy: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
        f"vocab {len(tok)}"
    )
    warm_up(model, tok, warmup, args)
    dev = make_problems(256, seed=4)  # fresh problems, not trained on
    print(f"greedy accuracy on 256 fresh problems: {greedy_accuracy(model, tok, dev):.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tok.save_pretrained(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
