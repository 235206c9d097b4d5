"""Protected evaluator of `posttrain_grpo`: held-out accuracy of the trained policy.

    python evaluate.py            # the harness's evaluate step: writes $EXECUTOR_RESULT_PATH
    python evaluate.py --check    # smoke: the policy loads and answers a few problems

It reads only config.json and the safetensors weights of $EXECUTOR_OUTPUT_DIR/policy: they are
linked into a private folder that the loaders (transformers, vLLM) read, so no custom code,
pickle, tokenizer or generation_config.json shipped beside them is ever seen. The tokenizer,
prompt, decoding settings, problems and grader are its own, so nothing training writes
(metrics, a tokenizer, an accuracy) reaches the score.

Held-out problems depend on EXECUTOR_EVAL_SECRET, which the harness gives the evaluate step
alone (random, fixed per run directory): the tiny scale's 500 problems are generated from it,
and the GSM8K variants are perturbed with seeds derived from it, so training cannot know them.
--check cannot see the secret and uses public problems instead.

Splits: EXECUTOR_EVAL_SPLIT (screen, the default, or confirm) picks one of two disjoint
held-out sets, fixed per run directory: tiny draws 500 problems for each from its own seed,
confirm's leaving out every text of screen's; GSM8K and MATH-500 rows fall in one half or
the other by a hash of the secret and the row. --check ignores the split. Beside
result.json the step writes items.jsonl, one row per graded completion: "p0007:original"
with value 1/0 (correct or not; accuracy is their mean), its variants ("p0007:rename") and
twin ("p0007:twin") with value null; each with answered, correct and the extracted answer.

Metrics, all on held-out problems training never reads:
- accuracy (the reward): greedy decoding, graded by grader.py;
- precision / recall / f1: a completion with no parseable answer abstains;
  precision = correct / answered, recall = correct / all;
- format_rate: share of completions with a parseable answer;
- pass_at_k: share of problems with a correct answer among k samples at a fixed temperature;
- robustness: accuracy on perturbed variants of each problem (renamed entities, reordered
  sentences, numbers as words, an irrelevant sentence, other notation), per kind and overall,
  and consistency: the share of problems answered correctly in every variant;
- perturbation_gap: accuracy on the problems minus accuracy on their meaning-keeping variants,
  item by item. A policy that learned the skill answers both alike; one that memorised the
  fixed items does not, and a gap well beyond an honest policy's flags the run;
- twin_accuracy, twin_gap (tiny): accuracy on a twin of each problem with other numbers
  (another answer), drawn from a seed that also depends on the policy's weights, so not even
  a leaked secret lets training know them; the gap to the originals flags memorised items.

Reported by training; feedback only (never the reward, and never trusted for anything else):
- train_zero_adv_share: the mean of `zero_adv_frac` (the share of a step's completions whose
  group scored them all alike, so without advantage) over the rows of
  $EXECUTOR_OUTPUT_DIR/metrics.jsonl; rows without a finite number are skipped, values are
  clamped to [0, 1], and the metric is left out when no row has one.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import json
import math
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
# model_type -> the one architecture it may name (vLLM picks its model class by `architectures`,
# transformers by `model_type`: both must agree on a plain causal LM).
ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "mistral": "MistralForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "phi3": "Phi3ForCausalLM",
}
ALLOWED_MODEL_TYPES = set(ARCHITECTURES)
# Config keys that make a loader fetch or run code, or swap the weight loader.
REFUSED_CONFIG_KEYS = ("auto_map", "quantization_config", "trust_remote_code", "custom_pipelines")
MATH500 = "HuggingFaceH4/MATH-500"
SECRET_VAR = "EXECUTOR_EVAL_SECRET"
# --check (smoke) cannot see the secret: its few problems come from this public string.
PUBLIC_SECRET = "posttrain_grpo: public smoke-check problems, not held out"
SPLIT_VAR = "EXECUTOR_EVAL_SPLIT"
SPLITS = ("screen", "confirm")  # the two disjoint held-out sets of a run directory
MAX_EXTRACTED = 200  # characters of an extracted answer an items.jsonl row keeps
# Training writes metrics.jsonl: read no more of it than an honest run could write.
MAX_METRICS_ROWS, MAX_METRICS_LINE = 100_000, 100_000


@functools.cache  # once per process: problems.py's Spec must be one class across calls
def _load(name: str) -> ModuleType:
    """A module beside this file, protected like it (the candidate's repo is not on the path)."""
    spec = importlib.util.spec_from_file_location(f"grpo_eval_{name}", HERE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


grader = _load("grader")


@dataclass(frozen=True)
class Contamination:
    """When the gap between the held-out items and their meaning-keeping variants flags a run."""

    kinds: tuple[str, ...]  # variants compared with the originals, item by item
    max_gap: float  # an honest policy's gap stays below this (see task.md for the figures)
    # tiny: renumbered twins (problems.py `twins`), whose honest gap is 0 by construction
    twin_max_gap: float | None = None
    min_items: int = 100  # fewer items (a --check or limited run) say too little to flag


@dataclass(frozen=True)
class Settings:
    problems: str  # tiny | gsm8k | math500
    tokenizer: str  # an environment folder or a hub id: the base policy's tokenizer
    prompt: str  # prompts/<name>.txt
    max_new_tokens: int
    k: int  # samples per problem for pass@k
    temperature: float  # of those samples
    batch_size: int
    contamination: Contamination | None = None
    size: int = 500  # generated held-out problems (tiny); the fixed sets have their own size
    limit: int | None = None  # evaluate only the first `limit` problems (None: all)
    # Tokens that end a completion besides the tokenizer's eos (those in its vocabulary): an
    # instruct policy ends its turn with one of several
    stop_tokens: tuple[str, ...] = ()


# tiny: measured (task.md); gsm8k: a reasoned guess until Qwen runs measure it (task.md).
TINY_CONTAMINATION = Contamination(("rename", "reorder", "notation"), 0.20, twin_max_gap=0.03)
GSM8K_CONTAMINATION = Contamination(("rename", "reorder"), max_gap=0.10)
# Llama 3 instruct models end a turn with <|eot_id|>, a tool call with <|eom_id|>, a document
# with <|end_of_text|>; the tokenizer's eos names only the first.
LLAMA3_STOPS = ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>")
SCALES = {
    "tiny": Settings("tiny", "base_tiny", "tiny", 48, 4, 1.0, 512, TINY_CONTAMINATION),
    "gpu": Settings(
        "gsm8k", "Qwen/Qwen2.5-Math-1.5B", "math", 1024, 4, 1.0, 256, GSM8K_CONTAMINATION
    ),
    "paper": Settings("math500", "Qwen/Qwen2.5-Math-1.5B", "math", 1024, 4, 1.0, 256),
    "llama3b": Settings(
        problems="gsm8k",
        tokenizer="meta-llama/Llama-3.2-3B-Instruct",
        prompt="llama3_chat",
        max_new_tokens=1024,
        k=4,
        temperature=1.0,
        batch_size=256,
        contamination=GSM8K_CONTAMINATION,
        stop_tokens=LLAMA3_STOPS,
    ),
}


# --- problems ------------------------------------------------------------------------


def eval_secret(value: str | None) -> str:
    """The harness's secret, checked: without it the held-out problems would be guessable."""
    if not value:
        raise SystemExit(
            f"{SECRET_VAR} is not set: the harness sets it for the evaluate step (to evaluate "
            "by hand, export 64 hex characters, e.g. from `openssl rand -hex 32`)"
        )
    if not re.fullmatch(r"[0-9a-fA-F]{32,}", value):
        raise SystemExit(f"{SECRET_VAR} must be at least 32 hex characters (the harness sets 64)")
    return value


def eval_split(value: str | None) -> str:
    """The held-out split to score: the harness's EXECUTOR_EVAL_SPLIT, screen when unset."""
    if value is None:
        return "screen"
    if value not in SPLITS:
        raise SystemExit(f"{SPLIT_VAR} must be screen or confirm, not {value!r}")
    return value


def derive_seed(secret: str, domain: str) -> int:
    """A 64-bit seed for one use (`domain`) of the secret; no use's seed reveals another's."""
    digest = hashlib.sha256(f"posttrain_grpo\x00{domain}\x00{secret}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def in_split(secret: str, row: int, split: str) -> bool:
    """Whether row `row` of a fixed held-out set belongs to `split`: a hash of the secret
    and the row, so the halves are fixed per run directory and unknown to training."""
    return derive_seed(secret, f"split\x00{row}") % 2 == SPLITS.index(split)


@functools.cache  # the held-out problems and their twins both exclude them: built once
def training_texts(env_dir: Path) -> frozenset[str]:
    """Every question the tiny scale trains on: the bundled GRPO problems (the pristine copy
    in the environment folder, not the candidate's) and the base policy's warm-up set."""
    problems = _load("problems")
    path = env_dir / "repo" / "data" / "tiny_train.jsonl"
    with path.open() as f:
        bundled = {json.loads(x)["question"] for x in f if x.strip()}
    return frozenset(bundled | problems.warmup_questions())


def problem_texts(problems: list[dict]) -> set[str]:
    """Every question of `problems`, variants included."""
    return {t for p in problems for t in (p["question"], *p["variants"].values())}


def tiny_problems(n: int, size: int, key: str, split: str, exclude: frozenset[str]) -> list[dict]:
    """The first `n` of `split`'s `size` generated problems, each from the split's own seed;
    confirm's leave out every text of screen's, so no question is in both."""
    problems_mod = _load("problems")

    def draw(name: str, count: int) -> list[dict]:
        seed = derive_seed(key, f"tiny held-out problems {name}")
        rows: list[dict] = problems_mod.heldout_problems(count, seed, exclude)
        return rows

    first = 0
    if split == "confirm":
        exclude = exclude | problem_texts(draw("screen", size))
        first = size  # ids follow screen's, so the two splits never share one
    rows = draw(split, n)
    keep = ("question", "answer", "variants", "spec")
    return [{"id": f"p{first + i:04d}", **{k: r[k] for k in keep}} for i, r in enumerate(rows)]


def load_problems(
    s: Settings, env_dir: Path, secret: str | None, split: str = "screen"
) -> list[dict]:
    """[{id, question, answer, variants: {kind: question}}] of `split`'s held-out problems;
    `secret` None means the public problems of --check (for GSM8K, from the train split),
    which ignore the split and, held out from nothing, need not avoid training's questions."""
    key = secret if secret is not None else PUBLIC_SECRET
    split = eval_split(split)
    if s.problems == "tiny":
        n = min(s.size, s.limit or s.size)
        seen = training_texts(env_dir) if secret is not None else frozenset()
        return tiny_problems(n, s.size, key, split, seen)
    if s.problems == "gsm8k":
        perturb = _load("perturb_gsm8k")
        # --check cannot see heldout/ (the harness hides it from the smoke step).
        name = "heldout/gsm8k_test.jsonl" if secret is not None else "data/gsm8k_train.jsonl"
        with (env_dir / name).open() as f:
            rows = [json.loads(x) for x in f if x.strip()]
        # Fresh per run directory: a candidate cannot precompute (and train on) the variants.
        seed = derive_seed(key, "gsm8k variants")
        problems = [
            {
                "id": f"p{i:04d}",
                "question": r["question"],
                "answer": perturb.gold_answer(r["answer"]),
                "variants": perturb.variants(r["question"], seed=seed),
            }
            for i, r in _split_rows(rows, secret, split, s.limit)
        ]
    elif s.problems == "math500":
        from datasets import load_dataset

        rows = list(load_dataset(MATH500, split="test"))
        problems = [
            {"id": f"p{i:04d}", "question": r["problem"], "answer": r["answer"], "variants": {}}
            for i, r in _split_rows(rows, secret, split, s.limit)
        ]
    else:
        raise SystemExit(f"unknown held-out set {s.problems!r}")
    return problems


def _split_rows(
    rows: list[dict], secret: str | None, split: str, limit: int | None
) -> list[tuple[int, dict]]:
    """(row index, row) of `split`'s half of a fixed set (every row for --check), the first
    `limit` of them; perturbing only those keeps the work to the rows scored."""
    kept = [(i, r) for i, r in enumerate(rows) if secret is None or in_split(secret, i, split)]
    return kept[:limit] if limit else kept


# --- the policy ----------------------------------------------------------------------


def _keys(obj: Any) -> set[str]:
    """Every key of a JSON value, nested ones included (a sub-config may ask for code too)."""
    if isinstance(obj, dict):
        return set(obj).union(*(_keys(v) for v in obj.values()))
    if isinstance(obj, list):
        return set().union(*(_keys(v) for v in obj))
    return set()


def check_checkpoint(policy_dir: Path) -> dict:
    """The policy's config, once it is known to be a plain causal LM with safetensors weights;
    a checkpoint that would run code or load otherwise is refused with a one-line reason."""
    config_path = policy_dir / "config.json"
    if not config_path.is_file():
        raise SystemExit(f"no trained policy at {policy_dir}: training must save_pretrained there")
    try:
        config = json.loads(config_path.read_text())
    except ValueError as e:
        raise SystemExit(f"the policy's config.json is not JSON ({e})") from None
    if not isinstance(config, dict):
        raise SystemExit("the policy's config.json is not a JSON object")
    keys = _keys(config)
    asked = sorted(k for k in keys if k in REFUSED_CONFIG_KEYS or "kernel" in k.lower())
    if asked:
        raise SystemExit(
            f"the policy's config asks for custom code or a custom loader ({', '.join(asked)}); "
            "not loaded"
        )
    model_type = config.get("model_type")
    if model_type not in ALLOWED_MODEL_TYPES:
        raise SystemExit(
            f"policy model_type {model_type!r} is not one of "
            f"{', '.join(sorted(ALLOWED_MODEL_TYPES))}"
        )
    archs = config.get("architectures") or [ARCHITECTURES[model_type]]
    if archs != [ARCHITECTURES[model_type]]:
        raise SystemExit(
            f"policy architectures {archs!r} do not match model_type {model_type!r} "
            f"(expected [{ARCHITECTURES[model_type]!r}])"
        )
    if not weight_files(policy_dir):
        raise SystemExit(f"no .safetensors weights in {policy_dir} (pickled weights are refused)")
    return config


def weight_files(policy_dir: Path) -> list[Path]:
    """The checkpoint's safetensors weights and, when sharded, their index: regular files only
    (a fifo or a folder named like weights is ignored, not opened)."""
    files = [p for p in sorted(policy_dir.glob("*.safetensors")) if p.is_file()]
    index = policy_dir / "model.safetensors.index.json"
    if files and index.is_file():
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SystemExit("the policy's model.safetensors.index.json is unreadable") from None
        if not shards <= {p.name for p in files}:
            raise SystemExit("the policy's weight index names files that are not its shards")
        files.append(index)
    return files


def stage_checkpoint(policy_dir: Path, config: dict, into: Path) -> Path:
    """A folder holding only the checked config and links to the safetensors weights: what
    the loaders read, so no tokenizer, generation_config.json, pickle or code shipped in the
    policy folder can reach them."""
    into.mkdir(parents=True, exist_ok=True)
    (into / "config.json").write_text(json.dumps(config))
    for f in weight_files(policy_dir):
        (into / f.name).symlink_to(f.resolve())
    return into


def stop_token_ids(tok: Any, s: Settings) -> list[int]:
    """The ids a completion ends at: the evaluator's tokenizer's eos, then those of the
    scale's `stop_tokens` that its vocabulary has (a missing one is not an error: one list
    serves a model family whose tokenizers differ)."""
    vocab = tok.get_vocab()
    ids = [tok.eos_token_id, *(vocab[t] for t in s.stop_tokens if t in vocab)]
    return list(dict.fromkeys(i for i in ids if i is not None))


def decoding_config(tok: Any, s: Settings, temperature: float) -> Any:
    """The evaluator's decoding settings, every one set here: greedy (or plain sampling at
    `temperature`), no penalties, no forced or suppressed tokens, whatever the checkpoint says."""
    from transformers import GenerationConfig

    sample = temperature > 0
    return GenerationConfig(
        do_sample=sample,
        # sampling knobs only when sampling (greedy ignores them, and transformers warns)
        temperature=temperature if sample else None,
        top_k=0 if sample else None,
        top_p=1.0 if sample else None,
        min_p=None,
        typical_p=1.0 if sample else None,
        num_beams=1,
        num_beam_groups=1,
        repetition_penalty=1.0,
        length_penalty=1.0,
        no_repeat_ngram_size=0,
        max_new_tokens=s.max_new_tokens,
        min_new_tokens=0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=stop_token_ids(tok, s),
        bos_token_id=tok.bos_token_id,
    )


def load_tokenizer(tokenizer: str, env_dir: Path) -> tuple[Any, str]:
    """(tokenizer, its source): always the environment's own (the base policy's)."""
    from transformers import AutoTokenizer

    local = env_dir / tokenizer
    source = str(local) if local.exists() else tokenizer
    tok = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok, source


def load_policy(
    policy_dir: Path, tokenizer: str, env_dir: Path, device: str, staging: Path
) -> tuple[Any, Any]:
    """(policy, tokenizer): the policy in vLLM on a GPU that has it, else in transformers,
    loaded from a staged copy (`staging`) of its config and weights alone; the tokenizer
    always the environment's own (the base policy's), never the checkpoint's."""
    from transformers import AutoModelForCausalLM

    config = check_checkpoint(policy_dir)
    tok, source = load_tokenizer(tokenizer, env_dir)
    if config.get("vocab_size", len(tok)) < len(tok):
        raise SystemExit("the policy's vocabulary is smaller than the base tokenizer's")
    staged = stage_checkpoint(policy_dir, config, staging)
    if use_vllm(device):
        return VLLMPolicy(staged, source), tok
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(
        staged,
        dtype=dtype,
        trust_remote_code=False,
        use_safetensors=True,
        # explicit, so the config cannot pick an attention kernel (a hub kernel runs code)
        attn_implementation="eager" if config["model_type"] == "gemma2" else "sdpa",
    )
    return model.to(device).eval(), tok


def generate(
    policy: Any, tok: Any, prompts: list[str], s: Settings, temperature: float, n: int = 1
) -> list[dict]:
    """[{text, tokens}] for each prompt, `n` samples per prompt in a row (greedy when
    temperature is 0): with vLLM when the policy was loaded into it, on a CPU with decode.py's
    loop, else (a GPU without vLLM) with transformers' `generate`."""
    if isinstance(policy, VLLMPolicy):
        return policy.generate(prompts, s, temperature, n, stop_token_ids(tok, s))
    if policy.device.type == "cpu":
        # Unpadded batches of one prompt length: on a GPU, the GSM8K prompts' hundreds of
        # lengths would make as many small batches, so there `generate` pads instead.
        stops = stop_token_ids(tok, s)
        return _load("decode").generate(
            policy, tok, prompts, s.max_new_tokens, stops, s.batch_size, temperature, n
        )
    return _generate_hf(policy, tok, [p for p in prompts for _ in range(n)], s, temperature)


@torch.no_grad()
def _generate_hf(
    model: Any, tok: Any, prompts: list[str], s: Settings, temperature: float
) -> list[dict]:
    # Batched by prompt length, so little compute goes to padding.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[dict] = [{}] * len(prompts)
    config = decoding_config(tok, s, temperature)
    stops = set(stop_token_ids(tok, s))
    # generate() fills every unset field from model.generation_config: make that ours too.
    model.generation_config = config
    for start in range(0, len(order), s.batch_size):
        idx = order[start : start + s.batch_size]
        enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True).to(model.device)
        ids = model.generate(**enc, generation_config=config)[:, enc["input_ids"].shape[1] :].cpu()
        for row, i in zip(ids.tolist(), idx, strict=True):
            # up to and including the first stop token (the rest is padding)
            n = next((j + 1 for j, t in enumerate(row) if t in stops), len(row))
            out[i] = {"text": tok.decode(row[:n], skip_special_tokens=True), "tokens": n}
    return out


class VLLMPolicy:
    """The policy loaded into vLLM, for the GPU scales' thousands of long completions."""

    def __init__(self, policy_dir: Path, tokenizer: str, seed: int = 0):
        from vllm import LLM

        # generation_config="vllm": vLLM's defaults, not a generation_config.json of the model.
        self.llm = LLM(
            model=str(policy_dir),
            tokenizer=tokenizer,
            dtype="bfloat16",
            seed=seed,
            trust_remote_code=False,
            load_format="safetensors",
            generation_config="vllm",
        )

    def generate(
        self, prompts: list[str], s: Settings, temperature: float, n: int, stop_ids: list[int]
    ) -> list[dict]:
        from vllm import SamplingParams

        params = SamplingParams(
            n=n,
            temperature=temperature,
            top_p=1.0,
            top_k=-1,
            min_p=0.0,
            seed=0,
            max_tokens=s.max_new_tokens,
            repetition_penalty=1.0,
            presence_penalty=0.0,
            frequency_penalty=0.0,
            # besides the tokenizer's eos; kept in token_ids, left out of the text
            stop_token_ids=stop_ids,
            skip_special_tokens=True,
        )
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        return [{"text": c.text, "tokens": len(c.token_ids)} for o in outs for c in o.outputs]


def use_vllm(device: str) -> bool:
    if device != "cuda":
        return False
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


# --- metrics -------------------------------------------------------------------------


def score(
    problems: list[dict],
    greedy: list[dict],
    variants: dict,
    samples: list[list[dict]],
    k: int,
    gap_kinds: tuple[str, ...] = (),
) -> dict:
    """All metrics from the completions; pure, so tests can feed it completions directly.
    `variants` maps kind -> (problem indices, completions); `gap_kinds` are the variants
    `perturbation_gap` compares with the originals."""
    n = len(problems)
    grades = [grader.grade(g["text"], p["answer"]) for p, g in zip(problems, greedy, strict=True)]
    correct = sum(g.correct for g in grades)
    answered = sum(g.answered for g in grades)
    precision = correct / answered if answered else 0.0
    recall = correct / n
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    metrics: dict[str, float] = {
        "accuracy": recall,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "format_rate": answered / n,
        "mean_completion_tokens": sum(g["tokens"] for g in greedy) / n,
    }
    if samples:
        hits = [
            any(grader.grade(c["text"], p["answer"]).correct for c in cs)
            for p, cs in zip(problems, samples, strict=True)
        ]
        metrics[f"pass_at_{k}"] = sum(hits) / n
    if variants:
        ok_by_kind = variant_correctness(problems, variants)
        all_right = [g.correct for g in grades]
        total = right = 0
        for kind, ok in sorted(ok_by_kind.items()):
            metrics[f"accuracy_{kind}"] = sum(ok.values()) / len(ok)
            total, right = total + len(ok), right + sum(ok.values())
            for i, good in ok.items():
                all_right[i] = all_right[i] and good
        metrics["variant_accuracy"] = right / total
        metrics["consistency"] = sum(all_right) / n
        gap = perturbation_gap([g.correct for g in grades], ok_by_kind, gap_kinds)
        if gap is not None:
            metrics["perturbation_gap"] = gap.gap
    return metrics


def variant_correctness(problems: list[dict], variants: dict) -> dict[str, dict[int, bool]]:
    """kind -> {problem index: whether that problem's variant was answered correctly}."""
    return {
        kind: {
            i: grader.grade(c["text"], problems[i]["answer"]).correct
            for i, c in zip(idx, completions, strict=True)
        }
        for kind, (idx, completions) in variants.items()
    }


@dataclass(frozen=True)
class Gap:
    """Accuracy on the originals minus accuracy on their variants, over the same items."""

    items: int  # problems with at least one of the compared variants
    original: float  # accuracy on those problems
    perturbed: float  # mean accuracy on their variants
    gap: float  # original - perturbed
    se: float  # standard error of the gap over items (an item's variants are not independent)

    @property
    def lower(self) -> float:
        """One-sided 99% lower bound of the gap."""
        return self.gap - 2.326 * self.se


def perturbation_gap(
    original: list[bool], ok_by_kind: dict[str, dict[int, bool]], kinds: tuple[str, ...]
) -> Gap | None:
    """The item-by-item gap between the originals and their `kinds` variants (None without
    any such variant): each item's difference is its original's grade minus the mean grade
    of its variants, so an item counts once however many variants it has."""
    diffs, origs, perts = [], [], []
    for i, right in enumerate(original):
        seen = [ok_by_kind[k][i] for k in kinds if i in ok_by_kind.get(k, {})]
        if not seen:
            continue
        pert = sum(seen) / len(seen)
        origs.append(float(right))
        perts.append(pert)
        diffs.append(float(right) - pert)
    n = len(diffs)
    if not n:
        return None
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    return Gap(n, sum(origs) / n, sum(perts) / n, mean, math.sqrt(var / n))


def contamination_flag(
    gap: Gap | None, rule: Contamination | None, twins: bool = False
) -> str | None:
    """One line when the gap says the policy memorised the held-out items, else None: flagged
    when even the gap's 99% lower bound exceeds what an honest policy shows. `twins`: the
    gap is to the renumbered twins (rule.twin_max_gap), not to the variants (rule.max_gap)."""
    if gap is None or rule is None or gap.items < rule.min_items:
        return None
    limit = rule.twin_max_gap if twins else rule.max_gap
    if limit is None or gap.lower <= limit:
        return None
    what = "twins with other numbers" if twins else f"{'/'.join(rule.kinds)} variants"
    return (
        f"held-out items look memorised: accuracy {gap.original:.3f} on them but "
        f"{gap.perturbed:.3f} on their {what}, a gap of {gap.gap:.3f} "
        f"(99% lower bound {gap.lower:.3f}) over {gap.items} items, where an honest policy "
        f"stays under {limit:.2f}"
    )


def weights_digest(policy_dir: Path) -> str:
    """sha256 of the policy's weight files: known only once training has ended."""
    h = hashlib.sha256()
    for f in weight_files(policy_dir):
        h.update(f.name.encode() + b"\x00")
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def _item(pid: str, variant: str, completion: dict, answer: str, scored: bool) -> dict:
    g = grader.grade(completion["text"], answer)
    return {
        "id": f"{pid}:{variant}",
        "value": int(g.correct) if scored else None,
        "variant": variant,
        "answered": g.answered,
        "correct": g.correct,
        # the completion's own text, so cut to what an item may carry
        "extracted": None if g.extracted is None else g.extracted[:MAX_EXTRACTED],
    }


def item_rows(
    problems: list[dict],
    greedy: list[dict],
    variants: dict,
    twins: list[dict],
    twin_done: list[dict],
) -> list[dict]:
    """One row per graded greedy completion, problem by problem: the original (value 1 or 0,
    so `accuracy` is the mean of the values), then its variants and twin (value None)."""
    by_problem: dict[int, list[tuple[str, dict]]] = {}
    for kind, (idx, completions) in sorted(variants.items()):
        for i, c in zip(idx, completions, strict=True):
            by_problem.setdefault(i, []).append((kind, c))
    rows = []
    for i, (p, g) in enumerate(zip(problems, greedy, strict=True)):
        rows.append(_item(p["id"], "original", g, p["answer"], scored=True))
        rows += [_item(p["id"], k, c, p["answer"], scored=False) for k, c in by_problem.get(i, [])]
        if twins:
            rows.append(_item(p["id"], "twin", twin_done[i], twins[i]["answer"], scored=False))
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """`rows` as JSON lines at `path`, whole or not at all (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    os.replace(tmp, path)


def make_twins(problems: list[dict], env_dir: Path, secret: str, digest: str) -> list[dict]:
    """A renumbered twin of each tiny problem, unseen in training and in the held-out set.
    Seeded by the secret and the weights: training, which ends before the weights are
    fixed, cannot know the twins even with the secret."""
    problems_mod = _load("problems")
    exclude = training_texts(env_dir) | problem_texts(problems)
    seed = derive_seed(secret, f"tiny twins\x00{digest}")
    return problems_mod.twins([p["spec"] for p in problems], seed, exclude)


def evaluate(
    out_dir: Path,
    env_dir: Path,
    scale: str,
    device: str,
    check: bool = False,
    secret: str | None = None,
    split: str = "screen",
) -> dict:
    """{metrics, flags, completions, items} of the policy in `out_dir` on `split`'s held-out
    problems. They come from `secret` (required unless `check`, which uses public problems
    and ignores the split)."""
    s = SCALES[scale]
    if check:
        s = replace(s, limit=8, k=0, max_new_tokens=min(s.max_new_tokens, 64))
        secret, split = None, "screen"
    else:
        secret, split = eval_secret(secret), eval_split(split)
    staging = Path(tempfile.mkdtemp(prefix="grpo_eval_policy_"))
    try:
        result = _evaluate(out_dir, env_dir, s, device, secret, split, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    share = train_zero_adv_share(out_dir / "metrics.jsonl")
    if share is not None:
        result["metrics"]["train_zero_adv_share"] = share
    return result


def train_zero_adv_share(path: Path) -> float | None:
    """Mean `zero_adv_frac` over the rows of training's metrics.jsonl at `path`, each clamped
    to [0, 1]; None without a file or a row with a finite number. Training wrote the file:
    lines that are not JSON objects, or values that are not finite numbers, are skipped."""
    values = []
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            for i, line in enumerate(f):
                if i >= MAX_METRICS_ROWS:
                    break
                if len(line) > MAX_METRICS_LINE:
                    continue
                try:
                    row = json.loads(line)
                except ValueError:  # also a number too long to parse
                    continue
                v = row.get("zero_adv_frac") if isinstance(row, dict) else None
                if isinstance(v, bool) or not isinstance(v, int | float):
                    continue
                # abs() first: float() of a huge int raises
                if abs(v) < 1e300 and math.isfinite(v):
                    values.append(min(1.0, max(0.0, float(v))))
    except OSError:
        return None
    return sum(values) / len(values) if values else None


def _evaluate(
    out_dir: Path,
    env_dir: Path,
    s: Settings,
    device: str,
    secret: str | None,
    split: str,
    staging: Path,
) -> dict:
    policy, tok = load_policy(out_dir / "policy", s.tokenizer, env_dir, device, staging)
    # str.replace, not str.format: the templates contain LaTeX braces such as \\boxed{}
    template = (env_dir / "prompts" / f"{s.prompt}.txt").read_text()
    problems = load_problems(s, env_dir, secret, split)
    if secret is None:
        # --check: the policy answers a few problems, not their variants too (on a CPU each
        # prompt length decodes as a batch of its own: five variants cost three times more)
        problems = [{**p, "variants": {}} for p in problems]
    rule = s.contamination
    twins: list[dict] = []
    if rule and rule.twin_max_gap is not None and secret is not None:
        twins = make_twins(problems, env_dir, secret, weights_digest(out_dir / "policy"))
    prompts = [template.replace("{question}", p["question"]) for p in problems]
    # One batched pass over the originals, every variant and the twins.
    kinds: dict[str, list[int]] = {}  # kind -> the problems that have that variant
    for i, p in enumerate(problems):
        for kind in p["variants"]:
            kinds.setdefault(kind, []).append(i)
    for kind, idx in kinds.items():  # kind by kind, the order the results are read back in
        prompts += [template.replace("{question}", problems[i]["variants"][kind]) for i in idx]
    prompts += [template.replace("{question}", t["question"]) for t in twins]
    torch.manual_seed(0)
    greedy = generate(policy, tok, prompts, s, temperature=0.0)
    variants, at = {}, len(problems)
    for kind, idx in kinds.items():
        variants[kind] = (idx, greedy[at : at + len(idx)])
        at += len(idx)
    twin_done = greedy[at:]
    samples: list[list[dict]] = []
    if s.k:
        sampled = generate(policy, tok, prompts[: len(problems)], s, s.temperature, n=s.k)
        samples = [sampled[i * s.k : (i + 1) * s.k] for i in range(len(problems))]
    gap_kinds = rule.kinds if rule else ()
    metrics = score(problems, greedy[: len(problems)], variants, samples, s.k, gap_kinds)
    flags: list[str] = []
    original = [
        grader.grade(g["text"], p["answer"]).correct for p, g in zip(problems, greedy, strict=False)
    ]
    if variants and secret is not None:
        gap = perturbation_gap(original, variant_correctness(problems, variants), gap_kinds)
        if flag := contamination_flag(gap, rule):
            flags.append(flag)
    if twins:
        ok = {
            "twin": {
                i: grader.grade(c["text"], t["answer"]).correct
                for i, (t, c) in enumerate(zip(twins, twin_done, strict=True))
            }
        }
        twin_gap = perturbation_gap(original, ok, ("twin",))
        assert twin_gap is not None
        metrics["twin_accuracy"], metrics["twin_gap"] = twin_gap.perturbed, twin_gap.gap
        if flag := contamination_flag(twin_gap, rule, twins=True):
            flags.append(flag)
    completions = [
        {"question": p["question"], "answer": p["answer"], "completion": g["text"]}
        for p, g in zip(problems, greedy, strict=False)
    ]
    items = item_rows(problems, greedy[: len(problems)], variants, twins, twin_done)
    return {"metrics": metrics, "flags": flags, "completions": completions, "items": items}


def main() -> None:
    p = argparse.ArgumentParser(description="Evaluate a posttrain_grpo policy.")
    p.add_argument("--check", action="store_true", help="load the policy and answer 8 problems")
    p.add_argument("--scale", default=os.environ.get("EXECUTOR_SCALE", "tiny"))
    args = p.parse_args()
    if args.scale not in SCALES:
        raise SystemExit(f"unknown scale {args.scale!r}; choose one of: {', '.join(SCALES)}")
    secret = None if args.check else eval_secret(os.environ.get(SECRET_VAR))
    split = "screen" if args.check else eval_split(os.environ.get(SPLIT_VAR))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out_dir = Path(os.environ.get("EXECUTOR_OUTPUT_DIR", "out"))
    env_dir = Path(os.environ.get("EXECUTOR_ENV_DIR", HERE))
    result = evaluate(out_dir, env_dir, args.scale, device, args.check, secret, split)
    print(json.dumps(result["metrics"]))
    for flag in result["flags"]:
        print(f"flag: {flag}", file=sys.stderr)
    if args.check:
        return
    path = Path(os.environ["EXECUTOR_RESULT_PATH"])
    # The greedy completions, for people reading the run (not part of the score).
    with (path.parent / "completions.jsonl").open("w") as f:
        f.writelines(json.dumps(c) + "\n" for c in result["completions"])
    # Per-item outcomes, for paired comparisons between arms; before result.json, which the
    # harness takes as the sign that the step is done.
    write_jsonl(path.parent / "items.jsonl", result["items"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"metrics": result["metrics"], "flags": result["flags"]}))
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
