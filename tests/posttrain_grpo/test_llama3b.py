"""The llama3b scale without the hub: its preset, the Llama 3 chat prompt, and ending a
completion at Llama 3's end-of-turn tokens, with a Llama-3-like tokenizer built here."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.posttrain_grpo.conftest import ENV

# Llama 3's special tokens, <|eot_id|> first: id 0 is what an all-zero head picks greedily.
SPECIALS = [
    "<|eot_id|>",
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
]
EOT, BOS, END_OF_TEXT, EOM = 0, 1, 2, 5
WORDS = ["system", "user", "assistant", "Tom", "has", "3", "pens", ".", "How", "many", "?"]


def llama_like_tokenizer(folder: Path) -> Path:
    """A word-level tokenizer with Llama 3's special tokens that, like Llama 3.2's base
    tokenizer, adds <|begin_of_text|> and names <|end_of_text|> its eos; saved to `folder`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate([*SPECIALS, "[UNK]", *dict.fromkeys(WORDS)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(SPECIALS)
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", BOS)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>"
    )
    fast.save_pretrained(folder)
    return folder


@pytest.fixture
def tok_dir(tmp_path: Path) -> Path:
    """An environment-like folder holding the tokenizer as `tok`."""
    llama_like_tokenizer(tmp_path / "tok")
    return tmp_path


def test_llama3b_preset_is_the_published_setting(repo: SimpleNamespace, evaluator) -> None:
    cfg = repo.config.config_for("llama3b")
    assert (cfg.model, cfg.dataset, cfg.prompt, cfg.steps, cfg.group_size) == (
        "meta-llama/Llama-3.2-3B-Instruct",
        "gsm8k",
        "llama3_chat",
        500,
        8,
    )
    assert 8 <= cfg.lora_rank <= 64 and cfg.lora_alpha > 0 and cfg.lora_dropout == 0.0
    assert set(cfg.lora_targets.split(",")) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert 1e-5 <= cfg.lr <= 5e-5, "a LoRA learning rate"
    assert cfg.dtype == "bfloat16" and cfg.gradient_checkpointing and cfg.max_new_tokens == 512
    assert cfg.save_reserve_s >= 120, "merging and writing 3B weights takes a while"
    assert repo.config.config_for("tiny").lora_rank == 0, "full fine-tuning elsewhere"
    assert repo.config.config_for("llama3b", ["--lora_rank=4"]).lora_rank == 4
    ev = evaluator.SCALES["llama3b"]
    assert ev.problems == "gsm8k" and ev.contamination == evaluator.SCALES["gpu"].contamination
    assert "<|eot_id|>" in ev.stop_tokens and not evaluator.SCALES["gpu"].stop_tokens


def test_llama3_chat_prompt_tokenizes_as_a_chat_turn(
    repo: SimpleNamespace, evaluator, tok_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXECUTOR_ENV_DIR", str(ENV))
    template = repo.data.prompt_template("llama3_chat")
    assert template == (ENV / "prompts" / "llama3_chat.txt").read_text(), "one file, both sides"
    assert template.count("{question}") == 1 and "\\boxed{}" in template
    assert "<|begin_of_text|>" not in template, "the tokenizer adds it"
    assert template.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    tok, _ = evaluator.load_tokenizer("tok", tok_dir)
    ids = tok(repo.data.render_prompt(template, "Tom has 3 pens. How many pens?"))["input_ids"]
    assert ids[0] == BOS and ids.count(BOS) == 1, "exactly one <|begin_of_text|>"
    # The header and turn markers in the text are the special tokens, not their characters.
    assert ids.count(SPECIALS.index("<|start_header_id|>")) == 3 and ids.count(EOT) == 2
    assert tok.decode(ids, skip_special_tokens=True).count("<|") == 0


def test_stop_tokens_resolve_against_the_evaluators_tokenizer(evaluator, tok_dir: Path) -> None:
    tok, _ = evaluator.load_tokenizer("tok", tok_dir)
    assert tok.pad_token_id == END_OF_TEXT, "a tokenizer without a pad token pads with eos"
    llama = dataclasses.replace(evaluator.SCALES["llama3b"], tokenizer="tok")
    # its eos first, then the end-of-turn tokens its vocabulary has (eos not twice)
    assert evaluator.stop_token_ids(tok, llama) == [END_OF_TEXT, EOT, EOM]
    assert evaluator.decoding_config(tok, llama, 0.0).eos_token_id == [END_OF_TEXT, EOT, EOM]
    missing = dataclasses.replace(llama, stop_tokens=("<|im_end|>", "<|eot_id|>"))
    assert evaluator.stop_token_ids(tok, missing) == [END_OF_TEXT, EOT]
    assert evaluator.stop_token_ids(tok, evaluator.SCALES["tiny"]) == [END_OF_TEXT]


def _eot_policy(vocab_size: int) -> torch.nn.Module:
    """A Llama whose every greedy token is id 0, <|eot_id|> (an all-zero head ties, and
    argmax takes the first)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight.zero_()
    return model


def test_generation_stops_at_the_end_of_turn(evaluator, repo, tok_dir: Path) -> None:
    tok, _ = evaluator.load_tokenizer("tok", tok_dir)
    model = _eot_policy(len(tok))
    llama = dataclasses.replace(
        evaluator.SCALES["llama3b"], tokenizer="tok", max_new_tokens=6, batch_size=4
    )
    prompts = ["Tom has 3 pens .", "How many ?"]
    done = evaluator.generate(model, tok, prompts, llama, temperature=0.0)
    assert done == [{"text": "", "tokens": 1}] * 2, "ends at <|eot_id|>, left out of the text"
    # Control: stopping on the eos alone, the policy runs to the length cap.
    eos_only = dataclasses.replace(llama, stop_tokens=())
    assert [d["tokens"] for d in evaluator.generate(model, tok, prompts, eos_only, 0.0)] == [6, 6]
    # Training's sampler ends there too.
    assert repo.rollout.stop_token_ids(tok) == [END_OF_TEXT, EOT, EOM]
    rollout = repo.rollout.HFSampler(model, tok, max_new_tokens=6, batch_size=4).generate(
        prompts, temperature=0.0
    )
    assert rollout.completion_mask.sum(1).tolist() == [1, 1] and rollout.texts == ["", ""]


def test_vllm_stops_at_the_end_of_turn(
    evaluator, tok_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vLLM cannot run here: a stand-in records the sampling parameters it is given."""
    seen: list[dict] = []
    out = SimpleNamespace(outputs=[SimpleNamespace(text="\\boxed{42}", token_ids=[9, EOT])])

    class FakeLLM:
        def generate(self, prompts, params, use_tqdm=False):
            seen.append(params)
            return [out] * len(prompts)

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(SamplingParams=dict))
    policy = evaluator.VLLMPolicy.__new__(evaluator.VLLMPolicy)
    policy.llm = FakeLLM()
    tok, _ = evaluator.load_tokenizer("tok", tok_dir)
    llama = dataclasses.replace(evaluator.SCALES["llama3b"], tokenizer="tok")
    done = evaluator.generate(policy, tok, ["q"], llama, temperature=0.0)
    assert done == [{"text": "\\boxed{42}", "tokens": 2}]
    assert seen[0]["stop_token_ids"] == [END_OF_TEXT, EOT, EOM]
    assert seen[0]["skip_special_tokens"] is True
