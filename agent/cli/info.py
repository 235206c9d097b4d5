"""`executor envs`, `show` and `doctor`: what is installed, stored, and usable here."""

from __future__ import annotations

from contextlib import closing
from typing import Annotated

import typer

from agent.cli import gather
from agent.cli import render as report
from agent.cli.common import OutputOptions, StoreOptions, emit
from agent.cli.errors import UsageError, one_line_errors
from agent.cli.options import Options, with_options


@one_line_errors
@with_options(out=Options(OutputOptions))
def envs_cmd(out: OutputOptions) -> None:
    """List the environments found (built in, and on $EXECUTOR_ENV_PATH) and their scales."""
    from environments import list_environments

    found = list_environments()
    emit(gather.envs_table(found), out.as_json, report.print_envs)


@one_line_errors
@with_options(store=Options(StoreOptions))
def show_cmd(
    store: StoreOptions,
    ident: Annotated[
        str | None,
        typer.Argument(metavar="[ID]", help="An idea, candidate or run id (or prefix)."),
    ] = None,
    last: Annotated[int, typer.Option("--last", min=1, help="Ideas listed without an ID.")] = 20,
) -> None:
    """Show an idea, candidate or run; without an ID, list the latest ideas."""
    from agent.store import DB_NAME, Store

    run_path = store.run_path
    if not (run_path / DB_NAME).is_file():
        raise UsageError(f"no store at {run_path / DB_NAME}; pass --run-dir")
    with closing(Store(run_path)) as db:
        if ident is None:
            emit({"ideas": db.latest_ideas(last)}, store.as_json, report.print_ideas)
            return
        kind, row = db.resolve(ident)
        data = gather.collect(db, kind, row)
    emit(data, store.as_json, report.print_show)


@with_options(out=Options(OutputOptions))
def doctor_cmd(out: OutputOptions) -> None:
    """Check Python, torch, GPUs, the Docker engine, git and API keys, each with a verdict."""
    from agent.doctor import run_checks

    checks = run_checks()
    emit({"checks": checks}, out.as_json, report.print_doctor)
    raise typer.Exit(1 if any(c["verdict"] == "fail" for c in checks) else 0)
