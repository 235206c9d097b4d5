"""The protected evaluator: metrics from completions, held-out problems drawn from the
harness's secret, the contamination flag, what it refuses to load, and that nothing training
writes (weights aside) changes its result."""

from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.env_modules import run_script
from tests.posttrain_grpo.conftest import ENV

VARIANT_KINDS = ("rename", "reorder", "words", "distractor", "notation")
SECRET = "5e" * 32  # what the harness passes as EXECUTOR_EVAL_SECRET: 64 hex characters
OTHER_SECRET = "a7" * 32


def _c(text: str) -> dict:
    return {"text": text, "tokens": len(text.split())}


def test_precision_recall_f1_and_format_rate(evaluator) -> None:
    problems = [{"answer": a, "question": "q", "variants": {}} for a in ("4", "10", "7", "1/2")]
    greedy = [_c("2+2=4. \\boxed{4}"), _c("\\boxed{11}"), _c("I do not know"), _c("\\boxed{0.5}")]
    m = evaluator.score(problems, greedy, {}, [], k=0)
    assert m["accuracy"] == m["recall"] == 0.5
    assert m["precision"] == pytest.approx(2 / 3) and m["format_rate"] == 0.75
    assert m["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert "pass_at_4" not in m and "consistency" not in m


def test_abstaining_everywhere_scores_zero_without_dividing_by_zero(evaluator) -> None:
    problems = [{"answer": "1", "question": "q", "variants": {}}] * 3
    m = evaluator.score(problems, [_c("no idea")] * 3, {}, [], k=0)
    assert m["accuracy"] == m["precision"] == m["f1"] == m["format_rate"] == 0.0


def test_pass_at_k_and_robustness(evaluator) -> None:
    problems = [{"answer": str(a), "question": "q", "variants": {}} for a in (1, 2, 3)]
    greedy = [_c("\\boxed{1}"), _c("\\boxed{2}"), _c("\\boxed{0}")]
    samples = [[_c("\\boxed{9}"), _c("\\boxed{1}")], [_c("\\boxed{9}")] * 2, [_c("\\boxed{3}")] * 2]
    variants = {
        "words": ([0, 1, 2], [_c("\\boxed{1}"), _c("\\boxed{5}"), _c("\\boxed{3}")]),
        "rename": ([0, 2], [_c("\\boxed{1}"), _c("\\boxed{3}")]),
    }
    m = evaluator.score(problems, greedy, variants, samples, k=2)
    assert m["pass_at_2"] == pytest.approx(2 / 3)
    assert m["accuracy_words"] == pytest.approx(2 / 3) and m["accuracy_rename"] == 1.0
    assert m["variant_accuracy"] == pytest.approx(4 / 5)
    # problem 0: right everywhere; 1: wrong on words; 2: wrong on the original
    assert m["consistency"] == pytest.approx(1 / 3)
    assert "perturbation_gap" not in m, "only when asked which kinds to compare"
    m = evaluator.score(problems, greedy, variants, samples, k=2, gap_kinds=("words", "rename"))
    # item by item: 0: 1 - 1; 1: 1 - 0 (words only); 2: 0 - 1 (both right)
    assert m["perturbation_gap"] == pytest.approx(0.0)
    m = evaluator.score(problems, greedy, variants, samples, k=2, gap_kinds=("words",))
    assert m["perturbation_gap"] == pytest.approx((0 + 1 - 1) / 3)


def _gap(evaluator, original: list[bool], variant: list[bool]):
    ok = {"rename": dict(enumerate(variant))}
    return evaluator.perturbation_gap(original, ok, ("rename",))


def test_memorised_items_are_flagged_and_honest_gaps_are_not(evaluator) -> None:
    rule = evaluator.Contamination(("rename",), max_gap=0.15, min_items=100)
    # Honest: the variants as often right as the originals (other items, same rate).
    honest = _gap(evaluator, [i % 2 == 0 for i in range(500)], [i % 2 == 1 for i in range(500)])
    assert honest.gap == 0.0 and evaluator.contamination_flag(honest, rule) is None
    # A policy that knows 70% of the items but solves 30% of the problems.
    memorised = _gap(evaluator, [i % 10 < 7 for i in range(500)], [i % 10 < 3 for i in range(500)])
    assert memorised.gap == pytest.approx(0.4) and memorised.lower > 0.3
    flag = evaluator.contamination_flag(memorised, rule)
    assert flag and "memorised" in flag and "0.700" in flag and "0.300" in flag and "0.15" in flag
    # A gap just over the threshold, but not beyond its noise, is not flagged ...
    borderline = _gap(evaluator, [i % 5 == 0 for i in range(500)], [False] * 500)
    assert borderline.gap == pytest.approx(0.2) and borderline.lower < 0.2
    lenient = evaluator.Contamination(("rename",), max_gap=0.18, min_items=100)
    assert evaluator.contamination_flag(borderline, lenient) is None
    # ... and a few items (a --check run) never are.
    few = _gap(evaluator, [True] * 20, [False] * 20)
    assert few.gap == 1.0 and evaluator.contamination_flag(few, rule) is None
    assert evaluator.contamination_flag(None, rule) is None


def test_each_scale_with_variants_checks_for_contamination(evaluator) -> None:
    tiny, gpu = evaluator.SCALES["tiny"].contamination, evaluator.SCALES["gpu"].contamination
    assert tiny and gpu and "rename" in tiny.kinds and "rename" in gpu.kinds
    # words and notation are the same for every seed at GSM8K: a candidate could train on them
    assert set(gpu.kinds) <= {"rename", "reorder", "distractor"}
    assert all(0 < r.max_gap < 0.5 for r in (tiny, gpu))


@pytest.fixture
def small_tiny_scale(evaluator, monkeypatch: pytest.MonkeyPatch) -> None:
    small = dataclasses.replace(evaluator.SCALES["tiny"], limit=24, k=2)
    monkeypatch.setitem(evaluator.SCALES, "tiny", small)


def _texts(problems: list[dict]) -> set[str]:
    return {t for p in problems for t in (p["question"], *p["variants"].values())}


@pytest.mark.slow
def test_tiny_held_out_problems_are_drawn_from_the_secret(evaluator, problems) -> None:
    tiny = evaluator.SCALES["tiny"]
    mine = evaluator.load_problems(tiny, ENV, SECRET)
    assert len(mine) == 500 and all(set(p["variants"]) == set(problems.KINDS) for p in mine)
    assert evaluator.load_problems(tiny, ENV, SECRET) == mine, "every arm of a run dir alike"
    other = evaluator.load_problems(tiny, ENV, OTHER_SECRET)
    assert len({p["question"] for p in mine} & {p["question"] for p in other}) < 10
    public = evaluator.load_problems(dataclasses.replace(tiny, limit=8), ENV, None)
    assert len(public) == 8 and not {p["question"] for p in public} & {p["question"] for p in mine}
    # None of them, nor any of their variants, occurs in training or in the base's warm-up.
    seen = evaluator.training_texts(ENV)
    assert len(seen) > 20000 and not _texts(mine) & seen
    assert {json.loads(x)["question"] for x in (ENV / "repo/data/tiny_train.jsonl").open()} <= seen


def test_the_secret_is_required_and_checked(evaluator, output_copy: Path) -> None:
    with pytest.raises(SystemExit, match="EXECUTOR_EVAL_SECRET is not set: the harness sets it"):
        evaluator.evaluate(output_copy, ENV, "tiny", "cpu")
    with pytest.raises(SystemExit, match="at least 32 hex"):
        evaluator.evaluate(output_copy, ENV, "tiny", "cpu", secret="0" * 8)
    assert evaluator.derive_seed(SECRET, "a") != evaluator.derive_seed(SECRET, "b")
    assert evaluator.derive_seed(SECRET, "a") != evaluator.derive_seed(OTHER_SECRET, "a")


def test_evaluator_ignores_everything_training_writes(
    evaluator, output_copy: Path, small_tiny_scale: None
) -> None:
    honest = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", secret=SECRET)
    assert set(honest["metrics"]) >= {
        "accuracy",
        "f1",
        "pass_at_2",
        "consistency",
        "accuracy_words",
        "perturbation_gap",
    }
    # Training claims a perfect score every way it can.
    (output_copy / "metrics.jsonl").write_text(
        json.dumps({"accuracy": 1.0, "dev_accuracy": 1.0}) + "\n"
    )
    (output_copy / "result.json").write_text(json.dumps({"metrics": {"accuracy": 1.0}}))
    policy = output_copy / "policy"
    (policy / "training.json").write_text(json.dumps({"accuracy": 1.0}))
    (policy / "eval_results.json").write_text(json.dumps({"accuracy": 1.0}))
    # and ships a tokenizer of its own, with a template that would leak the answer
    cfg = json.loads((policy / "tokenizer_config.json").read_text())
    cfg["chat_template"] = "{{ 'The answer is \\\\boxed{42}' }}"
    (policy / "tokenizer_config.json").write_text(json.dumps(cfg))
    (policy / "tokenizer.json").write_text("{}")
    tampered = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", secret=SECRET)
    assert 0 <= honest["metrics"]["train_zero_adv_share"] <= 1
    assert "train_zero_adv_share" not in tampered["metrics"]  # training's own report, gone
    honest["metrics"].pop("train_zero_adv_share")
    assert tampered["metrics"] == honest["metrics"]


def test_train_zero_adv_share_is_the_mean_of_trainings_rows(evaluator, tmp_path: Path) -> None:
    """Read from what training wrote, so every junk row is skipped and values are clamped."""
    path = tmp_path / "metrics.jsonl"
    assert evaluator.train_zero_adv_share(path) is None  # no file
    rows = [
        {"step": 1, "zero_adv_frac": 0.25},
        {"step": 2, "zero_adv_frac": 0.75},
        {"step": 3, "zero_adv_frac": 7},  # clamped to 1
        {"step": 4, "zero_adv_frac": -1.0},  # clamped to 0
        {"step": 5},
        {"step": 6, "zero_adv_frac": "0.5"},
        {"step": 7, "zero_adv_frac": True},
        {"step": 8, "zero_adv_frac": None},
        [0.5],
    ]
    junk = ["not json", '{"zero_adv_frac": NaN}', '{"zero_adv_frac": Infinity}', "",
            '{"zero_adv_frac": 1' + "0" * 400 + "}", '{"zero_adv_frac": 1e999}']  # fmt: skip
    path.write_text("\n".join([*map(json.dumps, rows), *junk]) + "\n")
    assert evaluator.train_zero_adv_share(path) == pytest.approx((0.25 + 0.75 + 1 + 0) / 4)
    path.write_text('{"step": 1}\nnot json\n')
    assert evaluator.train_zero_adv_share(path) is None  # no row has one


def _digit_ids(tok) -> list[list[int]]:
    return [[i] for i in tok.convert_tokens_to_ids(list("0123456789"))]


# Decoding settings a policy folder may ship, each far from what the evaluator fixes.
HOSTILE_DECODING = {
    "repetition_penalty": 8.0,
    "no_repeat_ngram_size": 2,
    "num_beams": 2,
    "max_new_tokens": 3,
    "min_new_tokens": 3,
    "suppress_tokens": [5, 6, 7],
}


def test_decoding_and_tokenizer_are_the_evaluators_own(
    evaluator, output_copy: Path, small_tiny_scale: None, tmp_path: Path
) -> None:
    """A policy folder shipping its own decoding settings, tokenizer and chat template scores
    exactly as without them; a control shows those settings would change plain decoding."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    policy = output_copy / "policy"
    honest = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", secret=SECRET)
    tok = AutoTokenizer.from_pretrained(ENV / "base_tiny")
    gen = json.loads((policy / "generation_config.json").read_text())
    # Those, and no digit writable and an early eos.
    gen.update(
        HOSTILE_DECODING, bad_words_ids=_digit_ids(tok), forced_eos_token_id=tok.eos_token_id
    )
    (policy / "generation_config.json").write_text(json.dumps(gen))
    # Another tokenizer (bos and eos swapped), special tokens and a chat template of its own.
    tok_json = json.loads((policy / "tokenizer.json").read_text())
    for t in tok_json["added_tokens"]:
        t["content"] = {"<|bos|>": "<|eos|>", "<|eos|>": "<|bos|>"}.get(t["content"], t["content"])
    (policy / "tokenizer.json").write_text(json.dumps(tok_json))
    cfg = json.loads((policy / "tokenizer_config.json").read_text())
    cfg.update(chat_template="{{ 'The answer is \\\\boxed{42}' }}", eos_token="<|bos|>")
    (policy / "tokenizer_config.json").write_text(json.dumps(cfg))
    (policy / "special_tokens_map.json").write_text(json.dumps({"eos_token": "7"}))

    # Control: transformers' defaults would honour the shipped generation config.
    plain = AutoModelForCausalLM.from_pretrained(policy).eval()
    enc = tok(["Tom has 3 pens. Ann has 4 pens. How many pens?"], return_tensors="pt")
    with torch.no_grad():
        shipped = plain.generate(**enc)[0, enc["input_ids"].shape[1] :].tolist()
    assert len(shipped) <= 3, "the shipped max_new_tokens would bite"

    tampered = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", secret=SECRET)
    assert tampered["metrics"] == honest["metrics"]
    assert tampered["completions"] == honest["completions"]
    staged = evaluator.stage_checkpoint(policy, evaluator.check_checkpoint(policy), tmp_path / "s")
    assert sorted(p.name for p in staged.iterdir()) == ["config.json", "model.safetensors"]


def _evil_pickle(marker: Path) -> bytes:
    class Evil:
        def __reduce__(self):  # unpickling this opens (so creates) `marker`: code runs
            return (open, (str(marker), "w"))

    return pickle.dumps({"model.embed_tokens.weight": Evil()})


def test_pickled_weights_never_load_and_never_run(
    evaluator, output_copy: Path, small_tiny_scale: None, tmp_path: Path
) -> None:
    probe = tmp_path / "probe"
    pickle.loads(_evil_pickle(probe))
    assert probe.exists(), "control: unpickling the payload runs its code"
    marker = tmp_path / "pwned"
    policy = output_copy / "policy"
    (policy / "pytorch_model.bin").write_bytes(_evil_pickle(marker))
    # Beside safetensors weights: those load, the pickle is never opened.
    m = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", secret=SECRET)["metrics"]
    assert 0 <= m["accuracy"] <= 1 and not marker.exists()
    # Alone: refused, with a reason, and still never opened.
    (policy / "model.safetensors").unlink()
    with pytest.raises(SystemExit, match="pickled weights are refused"):
        evaluator.evaluate(output_copy, ENV, "tiny", "cpu", secret=SECRET)
    assert not marker.exists()


def test_evaluator_refuses_checkpoints_that_run_code(evaluator, output_copy: Path) -> None:
    policy = output_copy / "policy"
    config = json.loads((policy / "config.json").read_text())
    assert evaluator.check_checkpoint(policy) == config
    for extra, match in [
        ({"auto_map": {"AutoModel": "x.Y"}}, "custom code"),
        ({"quantization_config": {"quant_method": "bitsandbytes"}}, "quantization_config"),
        ({"trust_remote_code": True}, "trust_remote_code"),
        ({"text_config": {"auto_map": {"AutoModel": "x.Y"}}}, "auto_map"),  # nested
        ({"kernel_config": {"x": "kernels-community/y"}}, "kernel_config"),
        ({"model_type": "my_model"}, "model_type"),
        ({"architectures": ["MyModelForCausalLM"]}, "architectures"),
    ]:
        (policy / "config.json").write_text(json.dumps({**config, **extra}))
        with pytest.raises(SystemExit, match=match):
            evaluator.check_checkpoint(policy)
    (policy / "config.json").write_text(json.dumps(config))
    (policy / "model.safetensors").rename(policy / "pytorch_model.bin")
    with pytest.raises(SystemExit, match="pickled weights are refused"):
        evaluator.check_checkpoint(policy)
    (policy / "model.safetensors").mkdir()  # a folder named like weights is not weights
    with pytest.raises(SystemExit, match="pickled weights are refused"):
        evaluator.check_checkpoint(policy)


def test_vllm_reads_only_the_staged_checkpoint_and_its_own_defaults(
    evaluator, output_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vLLM cannot run here: a stand-in records what the evaluator asks of it."""
    seen: dict = {}

    class FakeLLM:
        def __init__(self, **kwargs) -> None:
            seen.update(kwargs, files=sorted(p.name for p in Path(kwargs["model"]).iterdir()))

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(LLM=FakeLLM))
    monkeypatch.setattr(evaluator, "use_vllm", lambda device: True)
    (output_copy / "policy" / "modeling_evil.py").write_text("raise SystemExit('ran')\n")
    policy, _ = evaluator.load_policy(
        output_copy / "policy", "base_tiny", ENV, "cuda", tmp_path / "staged"
    )
    assert isinstance(policy, evaluator.VLLMPolicy)
    assert seen["generation_config"] == "vllm" and seen["trust_remote_code"] is False
    assert seen["load_format"] == "safetensors" and seen["tokenizer"] == str(ENV / "base_tiny")
    assert seen["files"] == ["config.json", "model.safetensors"]


@pytest.mark.slow
def test_no_policy_means_no_score(evaluator, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no trained policy"):
        evaluator.evaluate(tmp_path, ENV, "tiny", "cpu", secret=SECRET)


def test_evaluate_step_writes_result_and_completions(output_copy: Path, tmp_path: Path) -> None:
    result = tmp_path / "eval" / "result.json"
    result.parent.mkdir()

    def evaluate_step(*args: str, **variables: str | None) -> subprocess.CompletedProcess[str]:
        return run_script(
            [ENV / "evaluate.py", *args],
            EXECUTOR_OUTPUT_DIR=str(output_copy),
            EXECUTOR_ENV_DIR=str(ENV),
            EXECUTOR_RESULT_PATH=str(result),
            **{"EXECUTOR_EVAL_SECRET": None, **variables},  # the smoke step never sees it
        )

    check = evaluate_step("--check", EXECUTOR_EVAL_SPLIT="final")  # --check ignores splits
    assert check.returncode == 0, check.stderr[-2000:]
    assert not result.exists(), "--check scores nothing"
    assert json.loads(check.stdout.strip().splitlines()[-1])["accuracy"] >= 0
    unkeyed = evaluate_step()
    assert unkeyed.returncode != 0 and not result.exists()
    assert (
        unkeyed.stderr.strip()
        .splitlines()[-1]
        .startswith("EXECUTOR_EVAL_SECRET is not set: the harness sets it")
    )
    bad = evaluate_step("--scale", "huge")
    assert bad.returncode != 0 and "unknown scale 'huge'" in bad.stderr
    split = evaluate_step(EXECUTOR_EVAL_SECRET=SECRET, EXECUTOR_EVAL_SPLIT="final")
    assert split.returncode != 0 and not result.exists() and "Traceback" not in split.stderr
    last = split.stderr.strip().splitlines()[-1]
    assert last == "EXECUTOR_EVAL_SPLIT must be screen or confirm, not 'final'"


def test_evaluate_step_writes_items_before_the_result(
    evaluator,
    output_copy: Path,
    small_tiny_scale: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    result = tmp_path / "eval" / "result.json"
    result.parent.mkdir()
    for name, value in {
        "EXECUTOR_OUTPUT_DIR": str(output_copy),
        "EXECUTOR_ENV_DIR": str(ENV),
        "EXECUTOR_RESULT_PATH": str(result),
        "EXECUTOR_EVAL_SECRET": SECRET,
        "EXECUTOR_EVAL_SPLIT": "confirm",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["evaluate.py", "--scale", "tiny"])
    monkeypatch.setattr(evaluator, "generate", _answering({}))  # a wrong answer everywhere
    replaced: list[str] = []
    real_replace = evaluator.os.replace

    def recording_replace(src, dst) -> None:
        replaced.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(evaluator.os, "replace", recording_replace)
    evaluator.main()
    assert replaced == ["items.jsonl", "result.json"], "written whole, items first"
    items = [json.loads(x) for x in (result.parent / "items.jsonl").read_text().splitlines()]
    metrics = json.loads(result.read_text())["metrics"]
    assert len(items) == 24 * 7 and items[0]["id"] == "p0500:original", "confirm's problems"
    assert metrics["accuracy"] == sum(_values(items)) / 24 == 0.0
    assert sorted(p.name for p in result.parent.iterdir()) == [
        "completions.jsonl",
        "items.jsonl",
        "result.json",
    ]


def _answers(
    problems: list[dict], twins: list[dict], solve: list[bool], memorised: bool = True
) -> dict[str, str]:
    """prompt -> answer: each problem's question (`memorised`, else only where `solve`), and
    its variants and twin where `solve`."""
    template = (ENV / "prompts" / "tiny.txt").read_text()
    out = {}
    for p, t, ok in zip(problems, twins, solve, strict=True):
        if memorised or ok:
            out[template.replace("{question}", p["question"])] = p["answer"]
        if ok:
            out |= {template.replace("{question}", q): p["answer"] for q in p["variants"].values()}
            out[template.replace("{question}", t["question"])] = t["answer"]
    return out


def _answering(answer_of: dict[str, str]):
    """A stand-in for generate(): the answers it knows, boxed, and a wrong one otherwise."""

    def generate(policy, tok, prompts, s, temperature, n=1):
        return [
            {"text": f"\\boxed{{{answer_of.get(q, 'x')}}}", "tokens": 3}
            for q in prompts
            for _ in range(n)
        ]

    return generate


def test_each_variant_is_graded_against_its_own_problem(
    evaluator, output_copy: Path, small_tiny_scale: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy that answers every question right, whatever its wording or numbers, must
    score 1 on every variant and twin: the completions are read back in the order sent."""
    problems = evaluator.load_problems(evaluator.SCALES["tiny"], ENV, SECRET)
    digest = evaluator.weights_digest(output_copy / "policy")
    twins = evaluator.make_twins(problems, ENV, SECRET, digest)
    answer_of = _answers(problems, twins, [True] * len(problems))
    assert len(answer_of) == 7 * 24, "24 problems, 5 variants and a twin each, all distinct"
    monkeypatch.setattr(evaluator, "generate", _answering(answer_of))
    result = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", secret=SECRET)
    m = result["metrics"]
    assert m["accuracy"] == m["variant_accuracy"] == m["consistency"] == m["pass_at_2"] == 1.0
    assert all(
        m[f"accuracy_{k}"] == 1.0 for k in ("rename", "reorder", "words", "distractor", "notation")
    )
    assert m["twin_accuracy"] == 1.0 and m["twin_gap"] == m["perturbation_gap"] == 0.0
    assert result["flags"] == []


def test_twins_have_other_numbers_and_depend_on_the_weights(evaluator, output_copy: Path) -> None:
    tiny = dataclasses.replace(evaluator.SCALES["tiny"], limit=50)
    problems = evaluator.load_problems(tiny, ENV, SECRET)
    policy = output_copy / "policy"
    twins = evaluator.make_twins(problems, ENV, SECRET, evaluator.weights_digest(policy))
    assert twins == evaluator.make_twins(problems, ENV, SECRET, evaluator.weights_digest(policy))
    for p, t in zip(problems, twins, strict=True):
        spec = p["spec"]
        assert spec.a in t["question"] and spec.item in t["question"]
        assert t["question"] != p["question"] and t["question"] not in p["variants"].values()
    assert sum(p["answer"] != t["answer"] for p, t in zip(problems, twins, strict=True)) > 40
    # Other weights (or another secret), other twins: training cannot know them in advance.
    weights = policy / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b" ")
    again = evaluator.make_twins(problems, ENV, SECRET, evaluator.weights_digest(policy))
    assert sum(a != b for a, b in zip(twins, again, strict=True)) > 40


@pytest.fixture
def memorised_tiny(evaluator, monkeypatch: pytest.MonkeyPatch, output_copy: Path):
    """200 held-out problems and their twins, for policies that know some of them."""
    tiny = dataclasses.replace(evaluator.SCALES["tiny"], limit=200, k=0)
    monkeypatch.setitem(evaluator.SCALES, "tiny", tiny)
    problems = evaluator.load_problems(tiny, ENV, SECRET)
    digest = evaluator.weights_digest(output_copy / "policy")
    return problems, evaluator.make_twins(problems, ENV, SECRET, digest)


def test_a_policy_that_knows_the_items_but_not_the_skill_is_flagged(
    evaluator, output_copy: Path, monkeypatch: pytest.MonkeyPatch, memorised_tiny
) -> None:
    """The held-out questions answered from memory, their variants and twins only as well as
    a weak policy would: flagged twice, with the figures in the reasons."""
    problems, twins = memorised_tiny
    weak = [i % 3 == 0 for i in range(200)]  # a third solved, as a policy with little skill
    monkeypatch.setattr(evaluator, "generate", _answering(_answers(problems, twins, weak)))
    result = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", secret=SECRET)
    m = result["metrics"]
    assert m["accuracy"] == 1.0 and m["twin_accuracy"] == pytest.approx(67 / 200)
    assert m["perturbation_gap"] == m["twin_gap"] == pytest.approx(1 - 67 / 200)
    variants, twin = result["flags"]
    assert (
        variants.startswith("held-out items look memorised: accuracy 1.000") and "0.335" in variants
    )
    assert "rename/reorder/notation variants" in variants and "twins with other numbers" in twin
    # --check (public problems, a handful) never flags.
    assert evaluator.evaluate(output_copy, ENV, "tiny", "cpu", check=True)["flags"] == []


def test_check_answers_a_few_public_problems_alone(
    evaluator, output_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--check proves the policy loads and answers: 8 public problems, not their variants."""
    asked: list[str] = []

    def generate(policy, tok, prompts, s, temperature, n=1):
        asked.extend(prompts)
        return _answering({})(policy, tok, prompts, s, temperature, n)

    monkeypatch.setattr(evaluator, "generate", generate)
    result = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", check=True)
    assert len(asked) == 8 and len(result["items"]) == 8
    assert "variant_accuracy" not in result["metrics"] and result["flags"] == []


def test_memorising_the_variants_too_still_leaves_the_twins(
    evaluator, output_copy: Path, monkeypatch: pytest.MonkeyPatch, memorised_tiny
) -> None:
    """With the secret leaked, training could learn every held-out text, variants included;
    the twins are drawn only once the weights are final, so they still give it away."""
    problems, twins = memorised_tiny
    template = (ENV / "prompts" / "tiny.txt").read_text()
    known = _answers(problems, twins, [i % 3 == 0 for i in range(200)])
    for p in problems:
        known |= {template.replace("{question}", q): p["answer"] for q in p["variants"].values()}
    monkeypatch.setattr(evaluator, "generate", _answering(known))
    result = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", secret=SECRET)
    assert result["metrics"]["perturbation_gap"] == 0.0
    (flag,) = result["flags"]
    assert "0.335 on their twins with other numbers" in flag
    # An honest policy as weak on the originals as on the twins is not flagged.
    honest = _answers(problems, twins, [i % 3 == 0 for i in range(200)], memorised=False)
    monkeypatch.setattr(evaluator, "generate", _answering(honest))
    result = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", secret=SECRET)
    assert result["metrics"]["accuracy"] == pytest.approx(67 / 200) and result["flags"] == []


# --- splits and per-item outcomes ------------------------------------------------------------


def test_tiny_splits_are_disjoint_fixed_sets_of_500(evaluator) -> None:
    tiny = evaluator.SCALES["tiny"]
    screen = evaluator.load_problems(tiny, ENV, SECRET, "screen")
    confirm = evaluator.load_problems(tiny, ENV, SECRET, "confirm")
    assert len(screen) == len(confirm) == 500
    assert not _texts(screen) & _texts(confirm), "no question or variant in both splits"
    assert not {p["id"] for p in screen} & {p["id"] for p in confirm}
    assert evaluator.load_problems(tiny, ENV, SECRET, "confirm") == confirm
    # The default is screen, and a limited run scores the first of the same problems.
    assert evaluator.load_problems(tiny, ENV, SECRET) == screen
    few = dataclasses.replace(tiny, limit=10)
    assert evaluator.load_problems(few, ENV, SECRET, "confirm") == confirm[:10]
    with pytest.raises(SystemExit, match="EXECUTOR_EVAL_SPLIT must be screen or confirm"):
        evaluator.load_problems(tiny, ENV, SECRET, "final")


def test_fixed_sets_split_into_halves_by_the_secret(evaluator) -> None:
    rows = range(1319)  # GSM8K's test set
    screen = {i for i in rows if evaluator.in_split(SECRET, i, "screen")}
    confirm = {i for i in rows if evaluator.in_split(SECRET, i, "confirm")}
    assert not screen & confirm and screen | confirm == set(rows)
    assert 600 < len(screen) < 720, "about half each"
    other = {i for i in rows if evaluator.in_split(OTHER_SECRET, i, "screen")}
    assert 0.3 < len(screen & other) / len(screen) < 0.7, "another run dir, another halving"
    gsm8k = dataclasses.replace(evaluator.SCALES["gpu"], limit=30)
    ids = {
        split: [p["id"] for p in evaluator.load_problems(gsm8k, ENV, SECRET, split)]
        for split in ("screen", "confirm")
    }
    assert ids["screen"] == [f"p{i:04d}" for i in sorted(screen)[:30]]
    assert ids["confirm"] == [f"p{i:04d}" for i in sorted(confirm)[:30]]
    # --check's public rows ignore the split.
    public = evaluator.load_problems(gsm8k, ENV, None, "confirm")
    assert [p["id"] for p in public] == [f"p{i:04d}" for i in range(30)]


def _values(items: list[dict]) -> list[float]:
    return [r["value"] for r in items if r["value"] is not None]


def test_items_are_one_row_per_graded_completion_and_average_to_the_accuracy(
    evaluator, output_copy: Path, small_tiny_scale: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy that solves every third problem (its variants and twin too): the originals'
    values average to the accuracy; variants and twins are recorded without a value."""
    results = {}
    for split in ("screen", "confirm"):
        problems = evaluator.load_problems(evaluator.SCALES["tiny"], ENV, SECRET, split)
        digest = evaluator.weights_digest(output_copy / "policy")
        twins = evaluator.make_twins(problems, ENV, SECRET, digest)
        solve = [i % 3 == 0 for i in range(len(problems))]
        answers = _answers(problems, twins, solve, memorised=False)
        monkeypatch.setattr(evaluator, "generate", _answering(answers))
        result = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", secret=SECRET, split=split)
        items = result["items"]
        ids = [r["id"] for r in items]
        assert len(ids) == len(set(ids)) == 24 * 7 and all(len(i) <= 64 for i in ids)
        originals = [r for r in items if r["variant"] == "original"]
        assert len(originals) == len(_values(items)) == 24
        assert all(r["value"] is None for r in items if r["variant"] != "original")
        assert {r["variant"] for r in items} == {"original", "twin", *VARIANT_KINDS}
        accuracy = result["metrics"]["accuracy"]
        assert accuracy == pytest.approx(8 / 24) and sum(_values(items)) / 24 == accuracy
        for kind in ("original", "twin", *VARIANT_KINDS):
            assert sum(r["correct"] for r in items if r["variant"] == kind) == 8, kind
        assert all(r["answered"] and r["extracted"] is not None for r in items)
        assert items[0] == {
            "id": f"{problems[0]['id']}:original",
            "value": 1,
            "variant": "original",
            "answered": True,
            "correct": True,
            "extracted": problems[0]["answer"],
        }
        again = evaluator.evaluate(output_copy, ENV, "tiny", "cpu", secret=SECRET, split=split)
        assert [r["id"] for r in again["items"]] == ids, "same split, same items"
        results[split] = set(ids)
    assert not results["screen"] & results["confirm"]
