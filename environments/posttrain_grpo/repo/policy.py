"""Load the base policy and save the trained one.

`model` in the config is a folder of the environment (the tiny scale's `base_tiny`), a local
path, or a Hugging Face hub id (downloaded once into the hub cache). The evaluator reads the
saved folder with transformers alone, so it must stay a plain `save_pretrained` checkpoint.

With `lora_rank` > 0 the base weights are frozen and peft's LoRA adapters are trained
instead; the vLLM engine and the saved policy get the adapters merged into the base weights
(`plain_weights`), so both see an ordinary model of the base's architecture.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from data import env_dir
from torch import Tensor

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Prefixes that wrappers put before a model's own parameter names: torch.compile, DDP, peft.
WRAPPER_PREFIXES = ("_orig_mod.", "module.", "base_model.model.")


def resolve(model: str) -> str:
    """A local folder (environment-relative first) or, failing that, the hub id as given."""
    for candidate in (env_dir() / model, Path(model)):
        if (candidate / "config.json").exists():
            return str(candidate)
    return model


def load_policy(
    name: str, dtype: str, device: torch.device, gradient_checkpointing: bool = False,
    lora_rank: int = 0, lora_alpha: float = 32.0, lora_dropout: float = 0.0,
    lora_targets: str = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
):  # fmt: skip
    """(model, tokenizer) ready for training on `device`; with `lora_rank` > 0 the model is
    a peft model whose only trainable parameters are the adapters."""
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
        # Non-reentrant with LoRA: the reentrant kind drops the gradients of every layer
        # whose inputs need none, and with frozen embeddings that is every adapter.
        kwargs = {"use_reentrant": False} if lora_rank > 0 else None
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        model.config.use_cache = False  # generation re-enables it per call
    if lora_rank > 0:
        model = add_lora(model, lora_rank, lora_alpha, lora_dropout, lora_targets)
    model.train()
    return model, tok


def add_lora(model: Any, rank: int, alpha: float, dropout: float, targets: str) -> Any:
    """`model` wrapped by peft with LoRA adapters on the `targets` modules (comma-separated
    names); the base weights are frozen."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise SystemExit("lora_rank > 0 needs peft: pip install peft") from None
    wanted = [t.strip() for t in targets.split(",") if t.strip()]
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in wanted if t not in present]
    if not wanted or missing:
        linear = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if _is_linear(m)}
        raise SystemExit(
            f"lora_targets {targets!r}: {', '.join(missing) or 'no names'} not in the model; "
            f"name some of its linear layers: {','.join(sorted(linear))}"
        )
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,  # type: ignore[arg-type]  # annotated int; peft only divides it by r
        lora_dropout=dropout,
        target_modules=wanted,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _is_linear(module: Any) -> bool:
    return isinstance(module, torch.nn.Linear)


def lora_layers(model: Any) -> Iterator[tuple[str, Any]]:
    """(module name, module) of every peft LoRA layer in `model` (none without peft)."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            yield name, module


def has_lora(model: Any) -> bool:
    return next(lora_layers(model), None) is not None


def plain_name(name: str) -> str:
    """A parameter's name in the plain model's checkpoint: wrapper prefixes stripped, and a
    LoRA layer's `base_layer` folded into the layer it wraps."""
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name, stripped = name.removeprefix(prefix), True
    return name.replace(".base_layer.", ".")


def lora_deltas(model: Any) -> dict[str, Tensor]:
    """Plain weight name -> the delta its active, unmerged adapters add (B A * alpha / r)."""
    deltas: dict[str, Tensor] = {}
    for name, layer in lora_layers(model):
        if layer.merged or layer.disable_adapters:
            continue  # already in the base weight, or switched off
        own = {*layer.lora_A, *getattr(layer, "lora_embedding_A", {})}
        for adapter in layer.active_adapters:
            if adapter not in own:
                continue  # an adapter of another layer
            if adapter in getattr(layer, "lora_variant", {}):
                raise SystemExit("only plain LoRA adapters can be merged (not DoRA or variants)")
            delta = layer.get_delta_weight(adapter).detach()
            key = plain_name(f"{name}.base_layer.weight")
            deltas[key] = deltas[key] + delta if key in deltas else delta
    return deltas


def plain_weights(model: Any) -> Iterator[tuple[str, Tensor]]:
    """(name, tensor) of every weight of `model` under the plain model's checkpoint names,
    as vLLM's `load_weights` and `save_pretrained` want them: with LoRA, each adapted weight
    is base + delta (a new tensor, in the base's dtype) and the adapters are left out;
    every other tensor is the model's own, detached (tied weights stay one tensor)."""
    deltas = lora_deltas(model)
    for name, tensor in model.state_dict().items():
        if any(part.startswith("lora_") for part in name.split(".")):
            continue  # adapter weights: merged into their base weight below
        plain = plain_name(name)
        weight = tensor.detach()
        if plain in deltas:
            weight = torch.add(weight, deltas[plain].to(weight.device)).to(weight.dtype)
        yield plain, weight


class AdaptersOff:
    """The base policy of a LoRA model: the model called with its adapters switched off."""

    def __init__(self, model: Any):
        self.model = model

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.model.disable_adapter():
            return self.model(*args, **kwargs)


def reference_policy(model: Any) -> Any:
    """The frozen base policy the KL penalty is measured against: a copy of the weights for
    full fine-tuning; with LoRA the model itself with its adapters off (no second copy)."""
    if has_lora(model):
        return AdaptersOff(model)
    return copy.deepcopy(model).eval().requires_grad_(False)


def save_policy(model: Any, tokenizer: Any, out_dir: Path, info: dict[str, Any]) -> Path:
    """Write the policy to out_dir/policy atomically: a crash leaves the old one or none.
    A LoRA policy is saved merged, as a plain checkpoint of its base architecture."""
    final = out_dir / "policy"
    tmp = out_dir / "policy.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if has_lora(model):
        base = model.get_base_model()  # its config is the base's, untouched by peft
        base.save_pretrained(tmp, state_dict=dict(plain_weights(model)), safe_serialization=True)
    else:
        model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "training.json").write_text(json.dumps(info, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final
