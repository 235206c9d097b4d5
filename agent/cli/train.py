"""`executor train-ideator`: GRPO on execution reward for the model that writes ideas."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agent.cli import render as report
from agent.cli.common import LLMOptions, ResumeOpt, RunOptions, job_command, run_job
from agent.cli.errors import UsageError
from agent.ideator_rl.budget import TIMEOUT_KEY, describe
from agent.ideator_rl.config import TrainIdeatorConfig


@job_command(TrainIdeatorConfig)
def train_ideator_cmd(
    run: RunOptions, config: TrainIdeatorConfig, llm: LLMOptions, resume: ResumeOpt = False
) -> None:
    """Train the ideator with GRPO on execution reward (LoRA); every idea is run and stored."""
    from agent.ideator_rl.trainer import execution_gpus, train_ideator
    from runner.scheduler import detect_gpus

    environment = run.preflight(optimizes=True)
    scale_gpus = environment.scale(run.scale).gpus
    try:
        if config.implementer == "hparam":
            from agent.knobs import knobs_for

            knobs_for(environment, run.scale)
        if config.tiny:
            from agent.ideator_rl.tiny_ideator import ideator_knobs

            ideator_knobs(environment, run.scale, config.knob_names)  # a bad --knobs: now
        gpus = execution_gpus(
            run.gpus,
            detect_gpus() if run.backend == "local" else [],
            config.policy_gpu,
            scale_gpus,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    if config.tiny and scale_gpus:
        raise UsageError("--model tiny is for CPU scales: give a hub model for a GPU scale")
    run.check_backend(environment, gpus)
    client = None
    if config.implementer != "hparam":
        client = llm.client(config.implementer, run.run_path / "llm_cache")
    req = run.request(environment, config.seed, gpus=gpus)

    def shown(console: Any, result: Any) -> None:
        report.print_training(console, result)
        # The budget every idea trained for: a short --timeout is a screening budget.
        timeout = result.config.get(TIMEOUT_KEY)
        console.print(f"ideas ran at: {describe(replace(req, timeout_s=timeout))}")

    run_job(
        run,
        [client],
        lambda store, step: train_ideator(
            config, req, store, client=client, resume=resume, progress=step
        ),
        shown,
    )
