"""Load the base policy and save the trained one.

`model` in the config is a folder of the environment (the tiny scale's `base_tiny`), a local
path, or a Hugging Face hub id (downloaded once into the hub cache). The evaluator reads the
saved folder with transformers alone, so it must stay a plain `save_pretrained` checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from data import env_dir

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve(model: str) -> str:
    """A local folder (environment-relative first) or, failing that, the hub id as given."""
    for candidate in (env_dir() / model, Path(model)):
        if (candidate / "config.json").exists():
            return str(candidate)
    return model


def load_policy(name: str, dtype: str, device: torch.device, gradient_checkpointing: bool = False):
    """(model, tokenizer) ready for training on `device`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise SystemExit(f"unknown dtype {dtype!r}: use {', '.join(DTYPES)}")
    path = resolve(name)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:  # sampling pads prompts in a batch
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    model: Any = AutoModelForCausalLM.from_pretrained(
        path, dtype=DTYPES[dtype], attn_implementation="sdpa"
    )
    model = model.to(device)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False  # generation re-enables it per call
    model.train()
    return model, tok


def save_policy(model: Any, tokenizer: Any, out_dir: Path, info: dict[str, Any]) -> Path:
    """Write the policy to out_dir/policy atomically: a crash leaves the old one or none."""
    final = out_dir / "policy"
    tmp = out_dir / "policy.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "training.json").write_text(json.dumps(info, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final
