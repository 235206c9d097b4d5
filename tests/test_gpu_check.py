"""bench/gpu_check.py: its logic at tiny shapes on the CPU (the JSON is complete and its
figures agree with one another), the peak-FLOPs table, and its one-line refusals."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPT = BENCH / "gpu_check.py"


def run_check(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.training
def test_tiny_cpu_run_reports_consistent_figures(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "gpu_check.json"
    # A made-up peak, so the MFU arithmetic is exercised on the CPU too.
    proc = run_check("--device", "cpu", "--tiny", "--peak-flops", "1e12", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert json.loads(proc.stdout) == report  # stdout carries the JSON alone
    assert report["device"] == "cpu" and report["tiny"] is True
    assert report["torch"] == torch.__version__
    assert report["peak_bf16_flops"] == 1e12 and report["peak_note"] is None

    nano = report["nanogpt"]
    shapes = nano["shapes"]
    assert (
        nano["tokens_per_step"] == shapes["batch_size"] * shapes["seq_len"] * shapes["grad_accum"]
    )
    assert nano["steps_done"] == 8  # the tiny preset's --max_steps
    # The window starts after the compile/warm-up steps and spans whole steps' tokens.
    assert 2 <= nano["measured_from_step"] < nano["measured_to_step"] <= nano["steps_done"]
    steps = nano["measured_to_step"] - nano["measured_from_step"]
    assert nano["measured_tokens"] == steps * nano["tokens_per_step"]
    assert nano["measured_s"] > 0
    assert nano["tokens_per_s"] == pytest.approx(nano["measured_tokens"] / nano["measured_s"])
    assert nano["params"] > 0 and nano["flops_per_token"] > 6 * nano["params"]
    assert nano["mfu"] == pytest.approx(nano["flops_per_token"] * nano["tokens_per_s"] / 1e12)
    assert nano["data"]["train_tokens"] > 0 and nano["data"]["val_tokens"] > 0
    assert 0 < nano["final_loss"] < 20

    grpo = report["grpo"]
    assert grpo["sampler"] == "HFSampler" and grpo["config"]["rollout_backend"] == "hf"
    assert grpo["model"]["family"] == "qwen2" and grpo["model"]["params"] > 0
    n = grpo["measured_steps"]
    assert n == 2 == len(grpo["step_s"]) == len(grpo["rollout_s"]) == len(grpo["rollout_tokens"])
    assert grpo["median_step_s"] == pytest.approx(statistics.median(grpo["step_s"]))
    # The rollout is part of the step; no completion is longer than the cap.
    assert all(0 < r < s for r, s in zip(grpo["rollout_s"], grpo["step_s"], strict=True))
    cap = grpo["completions_per_step"] * grpo["config"]["max_new_tokens"]
    assert all(0 < t <= cap for t in grpo["rollout_tokens"])
    assert grpo["rollout_tokens_per_s"] == pytest.approx(
        sum(grpo["rollout_tokens"]) / sum(grpo["rollout_s"])
    )
    assert grpo["mean_prompt_tokens"] > 0 and grpo["build_s"] > 0
    assert report["total_wall_s"] >= nano["wall_s"] + grpo["wall_s"] - 1e-6


def test_peaks_are_matched_by_device_name_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))  # gpu_check imports its GRPO half beside it
    import gpu_check

    assert gpu_check.peak_flops("NVIDIA H200") == 989e12
    assert gpu_check.peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu_check.peak_flops("NVIDIA H100 PCIe") == 756e12
    assert gpu_check.peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert gpu_check.peak_flops("NVIDIA L40S") == 362e12
    assert gpu_check.peak_flops("NVIDIA L40") is None  # not L4's peak by a prefix
    assert gpu_check.peak_flops("cpu") is None


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a CPU-only machine")
def test_refuses_without_cuda_or_tiny_in_one_line() -> None:
    for args, says in ((), "no CUDA device"), (("--device", "cpu"), "needs --tiny"):
        proc = run_check(*args, timeout=120)
        assert proc.returncode != 0 and proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], proc.stderr
