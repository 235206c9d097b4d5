"""End to end on CPU: `executor train-ideator` at tiny scale with real executions of the toy
environment — killed mid-training, resumed from its last checkpoint, every idea in the store."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    assert_one_line_error,
    assert_store_consistent,
    assert_usage_error,
    executor_argv,
    rows_while_running,
    sigkill_when,
    slowed_toy,
    store_rows,
)

# GRPO with LoRA on the tiny ideator, each idea run for real on the toy environment.
pytestmark = pytest.mark.training


TRAINING = {"steps": 5, "group_size": 4, "save_every": 1, "slots": 2, "diversity_weight": 0.1}


def train_cmd(env: Path, runs: Path, *extra: str) -> list[str]:
    return executor_argv("train-ideator", env, runs, *extra, **TRAINING)


def steps_recorded(runs: Path) -> list[int]:
    return [r[0] for r in rows_while_running(runs, "SELECT step FROM rl_steps ORDER BY step")]


def test_train_kill_resume_and_report(cli, cli_process, toy_env, tmp_path) -> None:
    env, runs = slowed_toy(toy_env, 0.5), tmp_path / "runs"

    def two_checkpoints() -> bool:  # on disk: then it is killed
        return len(list(runs.glob("ideator/*/checkpoints/checkpoint-2/trainer_state.json"))) == 1

    sigkill_when(
        train_cmd(env, runs),
        two_checkpoints,
        within=600,  # generous: a busy CI machine; it ends at the checkpoint
        every=0.1,
        late=lambda: f"no checkpoint-2 in time; steps recorded: {steps_recorded(runs)}",
    )
    assert 2 <= max(steps_recorded(runs)) < 5

    res = cli_process(*train_cmd(env, runs, "--resume")[1:], timeout=600)  # end to end
    assert res.rc == 0, res
    out = res.json
    assert out["resumed_from"] is not None and out["resumed_from"].startswith("checkpoint-")
    assert [s["step"] for s in out["steps"]] == [1, 2, 3, 4, 5]
    for s in out["steps"]:
        assert 0 <= s["execution_rate"] <= 1 and 0 < s["top2_cluster_share"] <= 1
        assert s["completion_tokens"] > 0 and s["thinking_tokens"] > 0

    # The LoRA adapter: checkpointed, saved at the end, and trained (B no longer zero).
    adapter = Path(out["adapter"])
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").is_file()
    ckpts = sorted(adapter.parent.glob("checkpoints/checkpoint-*/adapter_model.safetensors"))
    assert ckpts, "no adapter checkpoints"
    from safetensors.torch import load_file

    weights = load_file(adapter / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in weights.items())

    # Every idea trained on is in the store with its run and reward.
    samples = store_rows(runs, "rl_samples")
    assert len(samples) == 5 * 4
    ideas = {i["id"]: i for i in store_rows(runs, "ideas")}
    cands = {c["id"]: c for c in store_rows(runs, "candidates")}
    runs_by_idea: dict[str, list[dict]] = {}
    for r in store_rows(runs, "runs"):
        runs_by_idea.setdefault(cands[r["candidate_id"]]["idea_id"], []).append(r)
    for s in samples:
        if not s["idea"]:
            assert s["status"] == "no_idea"
            continue
        assert ideas[s["idea_id"]]["source"].startswith("ideator_rl:")
        if s["status"] == "succeeded":
            final = [r for r in runs_by_idea[s["idea_id"]] if r["status"] == "succeeded"]
            assert len(final) == 1 and final[0]["reward"] == s["execution_reward"]
    (training,) = store_rows(runs, "rl_trainings")
    assert training["status"] == "done"
    assert_store_consistent(runs)

    rep = cli("report", runs)
    assert rep.rc == 0, rep
    page = Path(rep.stdout.strip())
    html = page.read_text()
    assert html.count("<svg") == 5 and "Collapse" in html and "top-2 clusters" in html
    assert "flat groups" in html and "thinking" in html
    chromium = shutil.which("chromium")
    if chromium:  # where scripts/test_deps.sh could install it: the browser parses the plots
        dom = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert dom.returncode == 0 and dom.stdout.count("<svg") == 5, dom.stderr[-2000:]


def test_bad_input_is_one_line_and_writes_nothing(cli, toy_env, tmp_path) -> None:
    runs = tmp_path / "runs"
    cases = [
        (("--resume",), "no ideator training to resume"),
        (("--model", "./no/such/model"), "no model there"),
        (("--vllm", "on"), "--vllm on needs a CUDA GPU"),
    ]
    for extra, message in cases:
        res = cli("train-ideator", "--env", toy_env, "--run-dir", runs, *extra)
        assert res.rc == 2, res
        assert_one_line_error(res, message)
    res = cli("train-ideator", "--env", toy_env, "--run-dir", runs, "--reward", "best")
    assert_usage_error(res, "Invalid value for '--reward'", "'raw', 'baseline-relative', 'rank'")
    assert not list(runs.glob("ideator/*")), "a refused training left files behind"
