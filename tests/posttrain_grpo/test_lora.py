"""LoRA training (the llama3b scale's), on the tiny base policy: adapters are the only trained
weights, the saved policy is a plain checkpoint with them merged in, the KL reference is the
base, and the weights synced into vLLM carry the plain model's names."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from tests.env_modules import trained
from tests.posttrain_grpo.conftest import ENV

CPU = torch.device("cpu")
PROMPT = "Question: Tom has 12 pens. Tom buys 7 more. How many pens does Tom have now?\nAnswer:"


@pytest.fixture(autouse=True)
def _env_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXECUTOR_ENV_DIR", str(ENV))


def _lora_policy(repo: SimpleNamespace, checkpointing: bool = False) -> tuple:
    return repo.policy.load_policy(
        "base_tiny", "float32", CPU, checkpointing, lora_rank=4, lora_alpha=8.0
    )


def _base_weights() -> dict[str, torch.Tensor]:
    return load_file(ENV / "base_tiny" / "model.safetensors")


def _lora_step(repo: SimpleNamespace, model, tok, lr: float = 0.05) -> dict[str, float]:
    """One GRPO update of `model` on a sampled group, with made-up advantages."""
    cfg = repo.config.config_for("tiny", ["--lora_rank=4", "--micro_batch_size=4"])
    sampler = repo.train.make_sampler(cfg, model, tok, seed=0)
    assert isinstance(sampler, repo.rollout.HFSampler)
    torch.manual_seed(0)
    rollout = sampler.generate([PROMPT] * 4, temperature=1.0)  # sampling on the peft model
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5])
    stats: dict[str, float] = repo.train.update(model, None, opt, cfg, rollout, adv, CPU)
    return stats


@pytest.mark.training
def test_a_lora_step_saves_a_merged_plain_checkpoint(
    repo: SimpleNamespace, evaluator, tmp_path: Path
) -> None:
    model, tok = _lora_policy(repo, checkpointing=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert len(trainable) == 2 * 7 * 4, "A and B on the 7 projections of 4 layers"
    stats = _lora_step(repo, model, tok)
    assert stats["grad_norm"] > 0, "gradients reach the adapters through checkpointed layers"

    expected = copy.deepcopy(model).merge_and_unload().state_dict()  # peft's own merge
    path = repo.policy.save_policy(model, tok, tmp_path, {"steps_done": 1})
    assert repo.policy.has_lora(model), "saving merges a copy, not the model being trained"
    saved = load_file(path / "model.safetensors")
    base = _base_weights()
    assert set(saved) == set(base), "the base's names: no adapter, no peft prefix"
    config = evaluator.check_checkpoint(path)
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    loaded, _ = evaluator.load_policy(path, "base_tiny", ENV, "cpu", tmp_path / "staged")
    for name, weight in loaded.state_dict().items():
        torch.testing.assert_close(weight, expected[name], rtol=0, atol=1e-6)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert (saved[q] - base[q]).abs().max() > 1e-3, "the adapters' update is in the weights"
    for untouched in ("model.embed_tokens.weight", "model.norm.weight"):
        assert torch.equal(saved[untouched], base[untouched])


@pytest.mark.training
def test_the_kl_reference_of_a_lora_policy_is_its_base(repo: SimpleNamespace) -> None:
    model, tok = _lora_policy(repo)
    ref = repo.policy.reference_policy(model)
    _lora_step(repo, model, tok)
    base, _ = repo.policy.load_policy("base_tiny", "float32", CPU)
    ids = torch.tensor([tok.encode(PROMPT)])
    with torch.no_grad():
        want, trained_logits = base(input_ids=ids).logits, model(input_ids=ids).logits
        got = ref(input_ids=ids).logits
    torch.testing.assert_close(got, want)
    assert not torch.allclose(trained_logits, want), "control: the adapters changed the policy"
    with torch.no_grad():  # the adapters are back on after the reference's call
        torch.testing.assert_close(model(input_ids=ids).logits, trained_logits)
    full = repo.policy.reference_policy(base)
    assert full is not base and not any(p.requires_grad for p in full.parameters())


def test_adapter_and_wrapper_names_map_to_the_plain_model(repo: SimpleNamespace) -> None:
    plain = repo.policy.plain_name
    lora_q = "base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"
    assert plain(lora_q) == "model.layers.0.self_attn.q_proj.weight"
    assert plain("_orig_mod.base_model.model.lm_head.weight") == "lm_head.weight"
    assert plain("module.model.norm.weight") == "model.norm.weight"
    assert plain("model.layers.1.mlp.down_proj.weight") == "model.layers.1.mlp.down_proj.weight"


def test_weights_synced_to_vllm_are_merged_under_plain_names(repo: SimpleNamespace) -> None:
    model, _ = _lora_policy(repo)
    torch.manual_seed(0)
    with torch.no_grad():  # an adapter update, as training would make
        for name, p in model.named_parameters():
            if ".lora_B." in name:
                p.normal_(std=0.1)
    expected = copy.deepcopy(model).merge_and_unload().state_dict()
    compiled_like = torch.nn.Module()
    compiled_like._orig_mod = model  # what torch.compile's wrapper holds
    for wrapped in (model, compiled_like):
        pairs = list(repo.rollout.named_weights(wrapped))
        names = [n for n, _ in pairs]
        assert len(names) == len(set(names)) and set(names) == set(expected)
        for name, tensor in pairs:
            assert not tensor.requires_grad
            torch.testing.assert_close(tensor, expected[name], rtol=0, atol=1e-6)
    base = _base_weights()
    synced = dict(repo.rollout.named_weights(model))
    v = "model.layers.2.self_attn.v_proj.weight"
    assert not torch.allclose(synced[v], base[v]), "control: the merge is not a no-op"
    assert synced["model.embed_tokens.weight"] is not None
    assert synced["lm_head.weight"].data_ptr() == synced["model.embed_tokens.weight"].data_ptr()


def test_lora_targets_must_name_modules_of_the_model(repo: SimpleNamespace, base: tuple) -> None:
    model = copy.deepcopy(base[0])
    with pytest.raises(SystemExit, match=r"qkv not in the model; name some of its linear layers"):
        repo.policy.add_lora(model, 4, 8.0, 0.0, "q_proj,qkv")
    with pytest.raises(SystemExit, match="no names"):
        repo.policy.add_lora(model, 4, 8.0, 0.0, " , ")


@pytest.mark.training
def test_lora_rank_override_trains_and_saves_a_plain_policy(evaluator, tmp_path: Path) -> None:
    """`--lora_rank=4` from the command line, with a KL penalty to the base: a real smoke run
    whose saved policy the evaluator accepts and whose adapted weights alone moved."""
    out = trained(
        ENV, tmp_path / "out", "--scale", "tiny", "--smoke", "--lora_rank=4", "--lr=0.05",
        "--kl_coef=0.05",
    )  # fmt: skip
    policy = out / "policy"
    info = json.loads((policy / "training.json").read_text())
    assert info["config"]["lora_rank"] == 4 and info["steps_done"] == 2
    assert evaluator.check_checkpoint(policy)["model_type"] == "llama"
    saved, base = load_file(policy / "model.safetensors"), _base_weights()
    assert set(saved) == set(base)
    moved = [n for n in base if not torch.equal(saved[n], base[n])]
    assert moved and all(n.endswith("_proj.weight") for n in moved), "only adapted layers move"
