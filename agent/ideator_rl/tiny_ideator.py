"""`--model tiny`: a small ideator built on this machine for an environment's knobs.

The offline path of ideator RL: no hub, no GPU. The model is a tiny Llama with its own BPE
tokenizer (digits one per token), taught by a short supervised warm-up to write ideas as the
`hparam` implementer reads them — a brief thinking trace, then assignments:

    <think>raise lr above 0.01</think> lr=0.03 steps=200

Its warm-up samples values uniformly from a grid over each knob's range, so the untrained
policy spreads over the grid and GRPO has something to sharpen. The prompt it was trained on
is saved beside it (`ideator_prompt.txt`) and is the prompt the trainer then uses.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

from agent.knobs import knobs_for, literal
from agent.templating import Prompts
from environments import Environment
from environments.manifest import Knob

PROMPT_FILE = "ideator_prompt.txt"
BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
# The model's size: it learns the examples' format in seconds on a CPU.
ARCHITECTURE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 192,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 256,
    "tie_word_embeddings": True,
}
# The ideator-RL prompts (jinja2 markdown), the tiny one and the full one, in prompts/.
PROMPTS = Prompts(Path(__file__).with_name("prompts"))


def grid(knob: Knob) -> list[Any]:
    """A handful of round values across the knob's range (1-3 or 1-2-5 per decade)."""
    if knob.type == "bool":
        return [False, True]
    if knob.type == "choice":
        assert knob.choices is not None
        return list(knob.choices)
    assert knob.range is not None
    lo, hi = knob.range
    if knob.type == "float" and not knob.log:
        return sorted({float(literal(knob, lo + (hi - lo) * i / 4)) for i in range(5)})
    mantissas = (1, 3) if knob.type == "float" else (1, 2, 5)
    if lo <= 0:  # a log grid needs a positive start
        lo = 1 if knob.type == "int" else hi / 1000
    out: set[Any] = set()
    for decade in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in mantissas:
            v = m * 10.0**decade
            if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9):
                out.add(round(v) if knob.type == "int" else float(literal(knob, v)))
    return sorted(out)


def example(knobs: list[Knob], rng: random.Random, max_knobs: int = 2) -> str:
    """One warm-up completion: a thinking line and 1..max_knobs assignments."""
    chosen = rng.sample(knobs, rng.randint(1, min(max_knobs, len(knobs))))
    chosen.sort(key=knobs.index)
    thoughts, assigns = [], []
    for k in chosen:
        value = rng.choice(grid(k))
        if k.type in ("float", "int"):
            word = "raise" if value > k.default else "lower" if value < k.default else "keep"
            thoughts.append(f"{word} {k.name} from {literal(k, k.default)}")
        else:
            thoughts.append(f"try {k.name} {literal(k, value)}")
        assigns.append(f"{k.name}={literal(k, value)}")
    return f"<think>{'; '.join(thoughts)}</think> {' '.join(assigns)}"


def ideator_knobs(env: Environment, scale: str, names: list[str] | None = None) -> list[Knob]:
    """The knobs the tiny ideator writes: the scale's, or those of them `names` picks (--knobs);
    a ValueError names an unknown one and lists the choices."""
    knobs = knobs_for(env, scale)
    if names is None:
        return knobs
    known = {k.name for k in knobs}
    unknown = [n for n in names if n not in known]
    choices = ", ".join(sorted(known))
    if unknown:
        raise ValueError(
            f"--knobs: {env.name} has no knob {', '.join(unknown)} at scale {scale}; "
            f"choose from {choices}"
        )
    if not names:
        raise ValueError(f"--knobs names no knob; choose from {choices}")
    return [k for k in knobs if k.name in names]  # the manifest's order


def tiny_prompt(env: Environment, scale: str, knobs: list[Knob] | None = None) -> str:
    knobs = knobs if knobs is not None else knobs_for(env, scale)
    metric = f"{env.manifest.metric.direction} {env.manifest.metric.name}"
    return PROMPTS.render(
        "ideator_rl_tiny", env=env.name, metric=metric, knobs=", ".join(k.name for k in knobs)
    )


def build_tiny_ideator(
    env: Environment,
    scale: str,
    out: Path,
    *,
    examples: int = 3000,
    steps: int = 300,
    seed: int = 0,
    knobs: list[str] | None = None,
    progress: Any = lambda _msg: None,
) -> Path:
    """Build, warm up and save the tiny ideator in `out` (kept if already there); `knobs`:
    only these of the scale's knobs (its prompt, tokenizer and warm-up examples)."""
    if (out / "config.json").is_file() and (out / PROMPT_FILE).is_file():
        return out
    import torch
    import torch.nn.functional as F
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chosen = ideator_knobs(env, scale, knobs)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    prompt = tiny_prompt(env, scale, chosen)
    completions = [example(chosen, rng) for _ in range(examples)]

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(False)]
    )
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        [prompt, *completions],
        trainers.BpeTrainer(
            vocab_size=512,
            special_tokens=[PAD, BOS, EOS],
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, padding_side="left"
    )
    model = LlamaForCausalLM(
        LlamaConfig(
            **ARCHITECTURE,
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    prompt_ids = tokenizer.encode(prompt)
    encoded = [
        prompt_ids + tokenizer.encode(c, add_special_tokens=False) + [tokenizer.eos_token_id]
        for c in completions
    ]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for step in range(steps):
        for g in opt.param_groups:  # cosine decay: a calm end, so sampling stays well-formed
            g["lr"] = 3e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        batch = rng.sample(encoded, 32)
        width = max(map(len, batch))
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        for i, row in enumerate(batch):
            ids[i, : len(row)] = torch.tensor(row)
            labels[i, len(prompt_ids) : len(row)] = torch.tensor(row[len(prompt_ids) :])
        logits = model(input_ids=ids).logits[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            progress(f"building the tiny ideator: warm-up step {step + 1}/{steps}, loss {loss:.3f}")
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / PROMPT_FILE).write_text(prompt)
    card = {
        "env": env.name,
        "scale": scale,
        "grid": {k.name: grid(k) for k in chosen},
        "examples": examples,
        "steps": steps,
        "final_loss": loss.item(),
    }
    (tmp / "ideator_card.json").write_text(json.dumps(card, indent=2))
    tmp.replace(out)  # whole or absent: a killed build leaves only the .tmp folder
    return out
