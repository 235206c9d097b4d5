"""`executor run-idea` and `executor baseline`: one idea, or the unmodified baseline, run."""

from __future__ import annotations

import asyncio
import sys
from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer

from agent.cli import render as report
from agent.cli.common import (
    LLMOptions,
    RunOptions,
    book_llm_calls,
    emit,
    progress,
    read_text,
)
from agent.cli.errors import UsageError, error, one_line_errors
from agent.cli.options import Options, with_options
from agent.implementer.config import ImplementerConfig


@one_line_errors
@with_options(
    run=Options(RunOptions, without=("slots",)),
    config=Options(ImplementerConfig),
    llm=Options(LLMOptions),
)
def run_idea_cmd(
    run: RunOptions,
    config: ImplementerConfig,
    llm: LLMOptions,
    idea: Annotated[
        str | None,
        typer.Argument(help="The idea text, @FILE, or - for stdin. Optional with --patch."),
    ] = None,
    patch: Annotated[
        Path | None, typer.Option("--patch", help="Apply this diff or SEARCH/REPLACE file; no LLM.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="EXECUTOR_SEED of the run.")] = 0,
) -> None:
    """Implement IDEA as a candidate commit, validate it, run it, and print its reward."""
    from agent.executor import run_idea
    from agent.implementer.context import editable_context
    from agent.implementer.edits import parse_edits
    from agent.store import Store

    environment = run.preflight()
    run.check_backend(environment, run.gpus)
    patch_text = None
    if patch is not None:
        patch_text = read_text(patch, "--patch")
        parse_edits(patch_text)  # a patch with no usable edit fails before anything is written
        idea = idea or _idea_from_patch(patch_text, patch)
    if idea is None:
        raise UsageError("give the IDEA text (or @FILE), or --patch FILE")
    if idea == "-":
        idea = sys.stdin.read()
    elif idea.startswith("@"):
        idea = read_text(Path(idea[1:]), "IDEA")
    if not idea.strip():
        raise UsageError("the IDEA text is empty")
    client = None
    if patch_text is None:
        editable_context(environment, config.context_tokens)  # too large: say so before a call
        client = llm.client(llm.llm, run.run_path / "llm_cache")
    req = run.request(environment, seed, implementer=config)
    with closing(Store(run.run_path)) as store, progress(run.as_json) as step:
        book_llm_calls(store, client)
        result = asyncio.run(
            run_idea(idea, req, store, client=client, patch_text=patch_text, progress=step)
        )
    emit(result, run.as_json, report.print_run_idea)
    if not result.succeeded:
        error(report.failure_line(result))
        raise typer.Exit(1)


@one_line_errors
@with_options(run=Options(RunOptions))
def baseline_cmd(
    run: RunOptions,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Runs with seeds 0..N-1.")] = 3,
) -> None:
    """Run the unmodified baseline with several seeds; print mean ± std of reward and metrics.

    Seeds run at once where slots allow: one per GPU (or per --slots at a CPU scale)."""
    from agent.executor import run_baseline
    from agent.store import Store

    environment = run.preflight()
    run.check_backend(environment, run.gpus)
    req = run.request(environment)
    with closing(Store(run.run_path)) as store, progress(run.as_json) as step:
        result = asyncio.run(run_baseline(req, store, seeds, step))
    emit(result, run.as_json, report.print_baseline)
    raise typer.Exit(0 if result.status == "succeeded" else 1)


def _idea_from_patch(text: str, path: Path) -> str:
    """The prose before the first edit, else the file name: replays keep their idea."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("<<<<<<<", "--- ", "diff --git", "```")):
            prose = [x for x in lines[:i] if x.strip()]
            if line.startswith("<<<<<<<") and prose:
                prose.pop()  # the line before a SEARCH marker is the file's path
            return "\n".join(prose).strip() or f"patch {path.name}"
    return f"patch {path.name}"
