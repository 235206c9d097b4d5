"""`executor search`, and `report` / `export` of what a run directory holds."""

from __future__ import annotations

import asyncio
from contextlib import closing
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.cli import render as report
from agent.cli.common import (
    LLMOptions,
    ResumeOpt,
    RunOptions,
    job_command,
    out,
    print_path,
    run_job,
)
from agent.cli.errors import UsageError, one_line_errors
from agent.search.config import SearchConfig


@job_command(SearchConfig)
def search_cmd(
    run: RunOptions, config: SearchConfig, llm: LLMOptions, resume: ResumeOpt = False
) -> None:
    """Search: epochs of ideas screened against ENV, every result archived, the best confirmed."""
    from agent.search.loop import run_search
    from environments import ManifestError

    environment = run.preflight(optimizes=True)
    try:  # an unknown focus fails before anything runs (the search applies it, resumes too)
        environment = environment.focused(config.focus)
    except ManifestError as e:
        raise UsageError(str(e)) from None
    focus = environment.focus
    if config.ensembles and (focus is None or focus.ensemble is None):
        raise UsageError(
            f"--ensembles: focus {config.focus!r} of {environment.name} declares no "
            "[focus.NAME.ensemble] that says how ideas combine; leave --ensembles out"
        )
    run.check_backend(environment, run.gpus)
    cache = run.run_path / "llm_cache"
    ideator = _ideator(config.ideator, environment, run.scale, llm, cache)
    impl_client = llm.client(config.implementer, cache) if config.implementer else None
    if impl_client is None:
        impl_client = getattr(ideator, "client", None)  # an LLM ideator implements its ideas
    req = run.request(environment)
    run_job(
        run,
        [impl_client, getattr(ideator, "client", None)],  # ideation and implementation spend
        lambda store, step: asyncio.run(
            run_search(
                config, req, store, ideator, implementer=impl_client, resume=resume, progress=step
            )
        ),
        report.print_search,
    )


def _ideator(spec: str, environment: Any, scale: str, llm: LLMOptions, cache: Path) -> Any:
    """The ideator `--ideator` names (a registry entry, PROVIDER:MODEL or package.module:Class);
    an unknown name, a replay file or knobs that cannot serve: exit 2."""
    from agent.search.ideators import make_ideator

    try:
        return make_ideator(
            spec, env=environment, scale=scale, make_client=lambda s: llm.client(s, cache)
        )
    except ValueError as e:
        raise UsageError(str(e)) from None


@one_line_errors
def report_cmd(
    run_dir: Annotated[
        Path, typer.Argument(help="A run directory holding a search or an ideator training.")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="HTML file (default: RUN_DIR/report.html).")
    ] = None,
) -> None:
    """Write a self-contained HTML report of the search (or ideator training) in RUN_DIR."""
    from agent.ideator_rl.html_report import has_training, write_training_report
    from agent.search.archive import Archive
    from agent.search.html_report import write_report

    store = _existing_store(run_dir)
    paths = []
    with closing(store):
        search, training = Archive(store).latest() is not None, has_training(store)
        if not search and not training:
            raise UsageError(
                f"{run_dir} holds no search or ideator training: run `executor search` or "
                "`executor train-ideator` first"
            )
        if search:
            paths.append(write_report(store, out or run_dir / "report.html"))
        if training:  # beside a search's report when the run dir holds both
            default = run_dir / ("ideator_report.html" if search else "report.html")
            target = out.with_name("ideator_" + out.name) if out and search else out or default
            paths.append(write_training_report(store, target))
    for path in paths:
        print_path(path)


@one_line_errors
def export_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory holding a search.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="JSONL file (default: RUN_DIR/trajectories.jsonl)."),
    ] = None,
) -> None:
    """Write the search's trajectories as JSONL (one idea per line); print the path."""
    from agent.search.export import trajectories, write_jsonl

    store = _existing_store(run_dir)
    with closing(store):
        rows = trajectories(store)
    if not rows:
        raise UsageError(f"{run_dir} holds no search: run `executor search` first")
    path = out or run_dir / "trajectories.jsonl"
    write_jsonl(rows, path)
    print_path(path)


@one_line_errors
def stats_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory holding a finished search.")],
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Exit 1 unless the recomputed table is byte-identical to the stored one.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
    as_markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the table as Markdown.")
    ] = False,
) -> None:
    """Recompute the search's confirmation table from the store (runs and per-item outcomes)."""
    from agent.search.archive import Archive
    from agent.search.confirm import TABLE, load_table
    from agent.store import StoreError

    store = _existing_store(run_dir)
    with closing(store):
        search = Archive(store).latest()
        if search is None:
            raise UsageError(f"{run_dir} holds no search: run `executor search` first")
        try:
            table = load_table(store, search["id"])
        except StoreError as e:
            raise UsageError(str(e)) from None
        stored = store.search_table(search["id"], TABLE)
    if as_json:
        typer.echo(table.canonical())
    elif as_markdown:
        from agent.search.table_view import markdown

        typer.echo(markdown(table.to_json()), nl=False)
    else:
        report.print_table(out, table.to_json())
    if not verify:
        return
    if stored is None:
        raise UsageError(
            f"search {search['id']} stored no confirmation table (it has not finished): "
            "nothing to verify against"
        )
    if stored["sha256"] != table.sha256() or stored["body"] != table.canonical():
        typer.echo(
            f"differs: stored sha256 {stored['sha256'][:16]}, recomputed {table.sha256()[:16]}",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"identical: sha256 {table.sha256()}", err=True)


def _existing_store(run_dir: Path) -> Any:
    from agent.store import DB_NAME, Store

    if not (run_dir / DB_NAME).is_file():
        raise UsageError(f"no store at {run_dir / DB_NAME}: pass the run directory of a search")
    return Store(run_dir)
