"""Protected evaluator of `posttrain_grpo`: held-out accuracy of the trained policy.

    python evaluate.py            # the harness's evaluate step: writes $EXECUTOR_RESULT_PATH
    python evaluate.py --check    # smoke: the policy loads and answers a few problems

It reads only $EXECUTOR_OUTPUT_DIR/policy (weights and config, loaded by transformers with no
custom code and no pickles). The tokenizer, prompt, decoding settings, problems and grader
are its own, so nothing training writes (metrics, a tokenizer, an accuracy) reaches the score.

Metrics, all on held-out problems training never reads:
- accuracy (the reward): greedy decoding, graded by grader.py;
- precision / recall / f1: a completion with no parseable answer abstains;
  precision = correct / answered, recall = correct / all;
- format_rate: share of completions with a parseable answer;
- pass_at_k: share of problems with a correct answer among k samples at a fixed temperature;
- robustness: accuracy on perturbed variants of each problem (renamed entities, reordered
  sentences, numbers as words, an irrelevant sentence, other notation), per kind and overall,
  and consistency: the share of problems answered correctly in every variant.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
ALLOWED_MODEL_TYPES = {"llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "phi3"}
MATH500 = "HuggingFaceH4/MATH-500"


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
class Settings:
    problems: str  # tiny | gsm8k | math500
    tokenizer: str  # an environment folder or a hub id: the base policy's tokenizer
    prompt: str  # prompts/<name>.txt
    max_new_tokens: int
    k: int  # samples per problem for pass@k
    temperature: float  # of those samples
    batch_size: int
    limit: int | None = None  # evaluate only the first `limit` problems (None: all)


SCALES = {
    "tiny": Settings("tiny", "base_tiny", "tiny", 48, 4, 1.0, 512),
    "gpu": Settings("gsm8k", "Qwen/Qwen2.5-Math-1.5B", "math", 1024, 4, 1.0, 256),
    "paper": Settings("math500", "Qwen/Qwen2.5-Math-1.5B", "math", 1024, 4, 1.0, 256),
}


# --- problems ------------------------------------------------------------------------


def load_problems(s: Settings, env_dir: Path) -> list[dict]:
    """[{question, answer, variants: {kind: question}}] of the held-out set."""
    if s.problems == "tiny":
        rows = [json.loads(x) for x in (env_dir / "heldout" / "tiny_test.jsonl").open()]
        problems = [{k: r[k] for k in ("question", "answer", "variants")} for r in rows]
    elif s.problems == "gsm8k":
        perturb = _load("perturb_gsm8k")
        rows = [json.loads(x) for x in (env_dir / "heldout" / "gsm8k_test.jsonl").open()]
        problems = [
            {
                "question": r["question"],
                "answer": perturb.gold_answer(r["answer"]),
                "variants": perturb.variants(r["question"], seed=i),
            }
            for i, r in enumerate(rows)
        ]
    elif s.problems == "math500":
        from datasets import load_dataset

        rows = load_dataset(MATH500, split="test")
        problems = [{"question": r["problem"], "answer": r["answer"], "variants": {}} for r in rows]
    else:
        raise SystemExit(f"unknown held-out set {s.problems!r}")
    return problems[: s.limit] if s.limit else problems


# --- the policy ----------------------------------------------------------------------


def check_checkpoint(policy_dir: Path) -> None:
    """Refuse a checkpoint that would run code or is not a plain causal LM."""
    config_path = policy_dir / "config.json"
    if not config_path.exists():
        raise SystemExit(f"no trained policy at {policy_dir}: training must save_pretrained there")
    config = json.loads(config_path.read_text())
    if config.get("auto_map"):
        raise SystemExit("the policy's config asks for custom code (auto_map); not loaded")
    if config.get("model_type") not in ALLOWED_MODEL_TYPES:
        raise SystemExit(
            f"policy model_type {config.get('model_type')!r} is not one of "
            f"{', '.join(sorted(ALLOWED_MODEL_TYPES))}"
        )
    if not list(policy_dir.glob("*.safetensors")):
        raise SystemExit(f"no .safetensors weights in {policy_dir} (pickled weights are refused)")


def load_policy(policy_dir: Path, tokenizer: str, env_dir: Path, device: str) -> tuple[Any, Any]:
    """(policy, tokenizer): the policy in vLLM on a GPU that has it, else in transformers;
    the tokenizer always the environment's own (the base policy's), never the checkpoint's."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_checkpoint(policy_dir)
    local = env_dir / tokenizer
    source = str(local) if local.exists() else tokenizer
    tok = AutoTokenizer.from_pretrained(source)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    config = json.loads((policy_dir / "config.json").read_text())
    if config.get("vocab_size", len(tok)) < len(tok):
        raise SystemExit("the policy's vocabulary is smaller than the base tokenizer's")
    if use_vllm(device):
        return VLLMPolicy(policy_dir, source), tok
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(
        policy_dir, dtype=dtype, trust_remote_code=False, use_safetensors=True
    )
    return model.to(device).eval(), tok


def generate(policy: Any, tok: Any, prompts: list[str], s: Settings, temperature: float,
             n: int = 1) -> list[dict]:  # fmt: skip
    """[{text, tokens}] for each prompt, `n` samples per prompt in a row (greedy when
    temperature is 0): with vLLM when the policy was loaded into it, else with transformers."""
    if isinstance(policy, VLLMPolicy):
        return policy.generate(prompts, s, temperature, n)
    return _generate_hf(policy, tok, [p for p in prompts for _ in range(n)], s, temperature)


@torch.no_grad()
def _generate_hf(
    model: Any, tok: Any, prompts: list[str], s: Settings, temperature: float
) -> list[dict]:
    # Batched by prompt length, so little compute goes to padding.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[dict] = [{}] * len(prompts)
    for start in range(0, len(order), s.batch_size):
        idx = order[start : start + s.batch_size]
        enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True).to(model.device)
        ids = model.generate(
            **enc,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_p=None,
            top_k=0 if temperature > 0 else None,
            max_new_tokens=s.max_new_tokens,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )[:, enc["input_ids"].shape[1] :].cpu()
        for row, i in zip(ids.tolist(), idx, strict=True):
            n = row.index(tok.eos_token_id) + 1 if tok.eos_token_id in row else len(row)
            out[i] = {"text": tok.decode(row[:n], skip_special_tokens=True), "tokens": n}
    return out


class VLLMPolicy:
    """The policy loaded into vLLM, for the GPU scales' thousands of long completions."""

    def __init__(self, policy_dir: Path, tokenizer: str, seed: int = 0):
        from vllm import LLM

        self.llm = LLM(model=str(policy_dir), tokenizer=tokenizer, dtype="bfloat16", seed=seed)

    def generate(self, prompts: list[str], s: Settings, temperature: float, n: int) -> list[dict]:
        from vllm import SamplingParams

        params = SamplingParams(
            n=n, temperature=temperature, top_p=1.0, max_tokens=s.max_new_tokens, seed=0
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
    problems: list[dict], greedy: list[dict], variants: dict, samples: list[list[dict]], k: int
) -> dict:
    """All metrics from the completions; pure, so tests can feed it completions directly."""
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
        all_right = [g.correct for g in grades]
        total = right = 0
        for kind, (idx, completions) in sorted(variants.items()):
            ok = [
                grader.grade(c["text"], problems[i]["answer"]).correct
                for i, c in zip(idx, completions, strict=True)
            ]
            metrics[f"accuracy_{kind}"] = sum(ok) / len(ok)
            total, right = total + len(ok), right + sum(ok)
            for i, good in zip(idx, ok, strict=True):
                all_right[i] = all_right[i] and good
        metrics["variant_accuracy"] = right / total
        metrics["consistency"] = sum(all_right) / n
    return metrics


def evaluate(out_dir: Path, env_dir: Path, scale: str, device: str, check: bool = False) -> dict:
    s = SCALES[scale]
    if check:
        s = replace(s, limit=8, k=0, max_new_tokens=min(s.max_new_tokens, 64))
    policy, tok = load_policy(out_dir / "policy", s.tokenizer, env_dir, device)
    # str.replace, not str.format: the templates contain LaTeX braces such as \\boxed{}
    template = (env_dir / "prompts" / f"{s.prompt}.txt").read_text()
    problems = load_problems(s, env_dir)
    prompts = [template.replace("{question}", p["question"]) for p in problems]
    # One batched pass over the originals and every variant.
    kinds: dict[str, list[int]] = {}  # kind -> the problems that have that variant
    for i, p in enumerate(problems):
        for kind in p["variants"]:
            kinds.setdefault(kind, []).append(i)
    for kind, idx in kinds.items():  # kind by kind, the order the results are read back in
        prompts += [template.replace("{question}", problems[i]["variants"][kind]) for i in idx]
    torch.manual_seed(0)
    greedy = generate(policy, tok, prompts, s, temperature=0.0)
    variants, at = {}, len(problems)
    for kind, idx in kinds.items():
        variants[kind] = (idx, greedy[at : at + len(idx)])
        at += len(idx)
    samples: list[list[dict]] = []
    if s.k:
        sampled = generate(policy, tok, prompts[: len(problems)], s, s.temperature, n=s.k)
        samples = [sampled[i * s.k : (i + 1) * s.k] for i in range(len(problems))]
    metrics = score(problems, greedy[: len(problems)], variants, samples, s.k)
    completions = [
        {"question": p["question"], "answer": p["answer"], "completion": g["text"]}
        for p, g in zip(problems, greedy, strict=False)
    ]
    return {"metrics": metrics, "flags": [], "completions": completions}


def main() -> None:
    p = argparse.ArgumentParser(description="Evaluate a posttrain_grpo policy.")
    p.add_argument("--check", action="store_true", help="load the policy and answer 8 problems")
    p.add_argument("--scale", default=os.environ.get("EXECUTOR_SCALE", "tiny"))
    args = p.parse_args()
    if args.scale not in SCALES:
        raise SystemExit(f"unknown scale {args.scale!r}; choose one of: {', '.join(SCALES)}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out_dir = Path(os.environ.get("EXECUTOR_OUTPUT_DIR", "out"))
    env_dir = Path(os.environ.get("EXECUTOR_ENV_DIR", HERE))
    result = evaluate(out_dir, env_dir, args.scale, device, args.check)
    print(json.dumps(result["metrics"]))
    if args.check:
        return
    path = Path(os.environ["EXECUTOR_RESULT_PATH"])
    # The greedy completions, for people reading the run (not part of the score).
    with (path.parent / "completions.jsonl").open("w") as f:
        f.writelines(json.dumps(c) + "\n" for c in result["completions"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"metrics": result["metrics"], "flags": result["flags"]}))
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
