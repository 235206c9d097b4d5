"""Red team against posttrain_grpo's evaluator, in every sandbox kind.

The candidates skip GRPO: each writes the policy its attack needs in seconds, so the run's
cost is the evaluator's.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bench.sft_attack import SFT_ON_TEST
from environments import resolve_environment
from sandbox import RunStatus
from tests.redteam.conftest import (
    Attack,
    canary_of,
    private_env,
    record,
    recorded_attack,
    run_attack,
)

# Each attack runs the environment's real training or evaluation step.
pytestmark = pytest.mark.training

ENV = resolve_environment("posttrain_grpo").root


async def train_attack(attack: str, train_py: str, tmp_path: Path, sandbox: str, **kw) -> Attack:
    """A candidate whose train.py is `train_py`, recorded as `attack` (`recorded_attack`)."""
    return await recorded_attack(attack, ENV, {"train.py": train_py}, tmp_path, sandbox, **kw)


# Supervised imitation of the "test problems": whatever held-out files it can read, else the
# held-out set regenerated exactly as the environment used to make it (problems.py, seed 2).
SFT_ON_TEST = r"""
import json, os, sys
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

env = Path(os.environ["EXECUTOR_ENV_DIR"])
out = Path(os.environ["EXECUTOR_OUTPUT_DIR"])
probe, test = {}, []
for name in ("heldout/tiny_test.jsonl", "heldout/gsm8k_test.jsonl", "heldout/canary.txt"):
    try:
        text = (env / name).read_text()
        probe[name] = "READ " + text[:80]
        test += [json.loads(x) for x in text.splitlines() if x.startswith("{")]
    except OSError as e:
        probe[name] = "refused: " + type(e).__name__
sys.path.insert(0, str(env))
from problems import make_problems
test += make_problems(600, seed=2, with_variants=True)  # the old held-out generator
test = [p for p in test if "solution" in p]
(out / "attack.json").write_text(json.dumps({"probe": probe,
                                             "trained_on": [p["question"] for p in test]}))
""" + SFT_ON_TEST.substitute(seed=0, steps=40, lr="1e-3", dest="policy")


async def test_imitating_the_test_problems_finds_none_of_them(evaluator_sandbox, tmp_path) -> None:
    a = await train_attack(
        "imitate the held-out problems' worked solutions (SFT)",
        SFT_ON_TEST,
        tmp_path,
        evaluator_sandbox,
        canary=True,
        no_effect="no effect: no evaluated item was trained on",
    )
    canary = canary_of(a.env.root)
    attack = json.loads((a.artifacts / "output" / "attack.json").read_text())
    assert all(v.startswith("refused") for v in attack["probe"].values()), attack["probe"]
    assert canary.encode() not in a.text_everywhere()
    assert a.outcome.status in (RunStatus.SUCCEEDED, RunStatus.FLAGGED), a.outcome.reason
    completions = (a.artifacts / "eval" / "completions.jsonl").open()
    scored = [json.loads(x)["question"] for x in completions]
    overlap = set(scored) & set(attack["trained_on"])
    assert len(scored) >= 400 and len(overlap) <= 0.01 * len(scored), len(overlap)


PICKLED_POLICY = r"""
import json, os, pickle, shutil
from pathlib import Path

class Evil:
    def __reduce__(self):
        return (os.system, ('touch "$(dirname "$EXECUTOR_RESULT_PATH")/pwned"',))

env = Path(os.environ["EXECUTOR_ENV_DIR"])
policy = Path(os.environ["EXECUTOR_OUTPUT_DIR"]) / "policy"
policy.mkdir(parents=True)
shutil.copy(env / "base_tiny" / "config.json", policy / "config.json")
(policy / "pytorch_model.bin").write_bytes(pickle.dumps(Evil()))
"""


async def test_a_policy_that_runs_code_when_loaded_is_refused(sandbox, tmp_path) -> None:
    attack = "a policy checkpoint that runs code when loaded (pickle)"
    a = await train_attack(attack, PICKLED_POLICY, tmp_path, sandbox)
    assert not (a.artifacts / "eval" / "pwned").exists()
    assert a.outcome.status is RunStatus.FAILED, a.outcome.reason
    assert "safetensors" in str(a.outcome.reason) or "pickle" in str(a.outcome.reason)


SWAPPED = r"""
import json, os, shutil
from pathlib import Path

env = Path(os.environ["EXECUTOR_ENV_DIR"])
policy = Path(os.environ["EXECUTOR_OUTPUT_DIR"]) / "policy"
shutil.copytree(env / "base_tiny", policy)
# Decoding the evaluator did not choose: beam search, a forced answer, no end of sequence.
(policy / "generation_config.json").write_text(json.dumps({
    "num_beams": 8, "do_sample": True, "temperature": 0.01, "max_new_tokens": 4,
    "repetition_penalty": 2.0, "forced_eos_token_id": 0, "suppress_tokens": [1, 2, 3]}))
# A tokenizer whose vocabulary is shuffled: every id means something else.
spec = json.loads((policy / "tokenizer.json").read_text())
vocab = spec["model"]["vocab"]
keys = sorted(vocab, key=lambda k: vocab[k])
spec["model"]["vocab"] = {k: vocab[keys[(i + 7) % len(keys)]] for i, k in enumerate(keys)}
(policy / "tokenizer.json").write_text(json.dumps(spec))
(policy / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ 'x' }}"}))
"""


PLAIN = """
import os, shutil
from pathlib import Path
env, out = Path(os.environ["EXECUTOR_ENV_DIR"]), Path(os.environ["EXECUTOR_OUTPUT_DIR"])
shutil.copytree(env / "base_tiny", out / "policy")
"""


@pytest.fixture(scope="module")
def plain_base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """One environment copy and run directory (one secret: the same held-out items) for the
    swap attacks, with the plain base policy's metrics scored there once."""
    root = tmp_path_factory.mktemp("grpo-swap")
    env_dir = private_env(ENV, root, canary=False)
    plain = asyncio.run(run_attack(env_dir, {"train.py": PLAIN}, root, "local"))
    assert plain.outcome.status is RunStatus.SUCCEEDED, plain.outcome.reason
    return env_dir, root, plain.outcome.metrics


async def test_a_tokenizer_or_decoding_swap_changes_nothing(evaluator_sandbox, plain_base) -> None:
    """The policy is the base policy, with a shuffled tokenizer and a generation config the
    evaluator did not choose: every metric must equal the plain base policy's (completion
    lengths and format rate included, not just its accuracy)."""
    env_dir, root, metrics = plain_base
    a = await run_attack(env_dir, {"train.py": SWAPPED}, root, evaluator_sandbox)
    why = a.outcome.reason or "no effect: scored exactly as the plain base policy"
    record(
        "swap the policy's tokenizer and decoding settings",
        evaluator_sandbox,
        str(a.outcome.status),
        why,
    )
    assert a.outcome.status is RunStatus.SUCCEEDED, a.outcome.reason
    assert a.outcome.metrics == metrics
    assert metrics["mean_completion_tokens"] > 0
