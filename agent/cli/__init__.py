"""The `executor` command line.

Commands: run-idea and baseline (agent/cli/run.py); search, report, export and stats
(agent/cli/search.py); train-ideator (agent/cli/train.py); envs, show and doctor
(agent/cli/info.py). Settings are dataclass fields whose options are generated
(agent/cli/options.py); options several commands share live in agent/cli/common.py.

Exit codes: 0 the run succeeded; 1 it did not (rejected, failed, timeout, flagged, …);
2 bad input (unknown environment, broken manifest, missing key, unusable patch, a choice not
offered, …); 3 an internal error; 130 interrupted. Errors are one line on stderr, never a
traceback (agent/cli/errors.py).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import typer

from agent.cli import info, run, search, train

app = typer.Typer(
    help="Turn research ideas into code changes, run them in a sandbox, get a reward.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _startup() -> None:
    # A process started with SIGINT ignored (a background job, a parent that ignores it)
    # passes that on, and then Python never raises KeyboardInterrupt: Ctrl-C or `kill -INT`
    # would leave training running. Cancellation must always work, so take SIGINT back.
    signal.signal(signal.SIGINT, signal.default_int_handler)


COMMANDS: dict[str, Callable[..., Any]] = {
    "run-idea": run.run_idea_cmd,
    "baseline": run.baseline_cmd,
    "search": search.search_cmd,
    "train-ideator": train.train_ideator_cmd,
    "report": search.report_cmd,
    "export": search.export_cmd,
    "stats": search.stats_cmd,
    "envs": info.envs_cmd,
    "show": info.show_cmd,
    "doctor": info.doctor_cmd,
}
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)


def main() -> None:  # pragma: no cover - console entry for `python -m agent.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
