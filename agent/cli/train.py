"""`executor train-ideator`: GRPO on execution reward for the model that writes ideas."""

from __future__ import annotations

from contextlib import closing
from typing import Annotated

import typer

from agent.cli import render as report
from agent.cli.common import JsonOpt, LLMOptions, RunOptions, book_llm_calls, emit, progress
from agent.cli.errors import UsageError, one_line_errors
from agent.cli.options import Options, with_options
from agent.ideator_rl.config import TrainIdeatorConfig


@one_line_errors
@with_options(
    run=Options(RunOptions, without=("ray_address", "ray_shared")),
    config=Options(TrainIdeatorConfig),
    llm=Options(LLMOptions, only=("base_url",)),
)
def train_ideator_cmd(
    run: RunOptions,
    config: TrainIdeatorConfig,
    llm: LLMOptions,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the training in --run-dir.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train the ideator with GRPO on execution reward (LoRA); every idea is run and stored."""
    from agent.ideator_rl import train_ideator
    from agent.ideator_rl.trainer import execution_gpus
    from agent.store import Store
    from runner.scheduler import detect_gpus

    environment = run.preflight()
    scale_gpus = environment.scale(run.scale).gpus
    try:
        if config.implementer == "hparam":
            from agent.knobs import knobs_for

            knobs_for(environment, run.scale)
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
    with closing(Store(run.run_path)) as store, progress(as_json) as step:
        book_llm_calls(store, client)
        try:
            result = train_ideator(config, req, store, client=client, resume=resume, progress=step)
        except ValueError as e:
            raise UsageError(str(e)) from None
    emit(result, as_json, report.print_training)
