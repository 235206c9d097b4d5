"""What several commands share: the run options, the LLM options, --json, and their helpers.

Each shared option is declared once, as a field of `OutputOptions`, `StoreOptions`,
`RunOptions` or `LLMOptions`; a command offers the fields it uses
(`Options(RunOptions, without=...)`, agent/cli/options.py)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from agent.cli.errors import UsageError, err, one_line_errors, warning
from agent.cli.options import Options, with_options
from agent.settings import setting

if TYPE_CHECKING:  # the CLI imports the heavy modules inside its commands
    from agent.results import ToJson

DEFAULT_LLM = "anthropic:claude-sonnet-4-6"
F = TypeVar("F", bound=Callable[..., Any])
out = Console()

ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue the search or training in --run-dir.")
]


@dataclass
class OutputOptions:
    """How a command prints its result."""

    as_json: bool = setting(False, "Print one JSON object on stdout.", flag="--json")


@dataclass
class StoreOptions(OutputOptions):
    """Where a command's records live (and, from OutputOptions, how it prints)."""

    run_dir: Path | None = setting(
        None, "Where the store, workspaces and logs live (default: ./runs)."
    )

    @property
    def run_path(self) -> Path:
        # Absolute: git runs worktree commands from the baseline repo, not from here.
        return (self.run_dir or Path(os.environ.get("EXECUTOR_RUN_DIR", "runs"))).resolve()


@dataclass(kw_only=True)
class RunOptions(StoreOptions):
    """Where and how a command's runs execute (and, from StoreOptions, where they are kept)."""

    env: str = field(metadata={"help": "Environment name or folder with env.toml."})
    scale: str = setting("tiny", "Scale from the manifest.")
    sandbox: str = setting(
        "local", "local, or docker; options as KIND:KEY=VALUE,… e.g. docker:network=bridge."
    )
    timeout: float | None = setting(
        None,
        "Training seconds on the scale's budget clock: CPU-seconds for a CPU-clocked scale "
        "(default: the scale's timeout; the time budget shrinks with it).",
    )
    backend: str = setting(
        "local", "Where runs execute: local (this machine), ray, or a backend a package adds."
    )
    gpus: str | None = setting(None, "GPU ids the local backend may use, e.g. 0,1 (default: all).")
    slots: int = setting(1, "Concurrent runs at a CPU (tiny) scale.", min=1)
    ray_address: str | None = setting(None, "Ray cluster, e.g. ray://head:10001 (default: local).")
    ray_shared: bool = setting(False, "The run dir is on a filesystem all Ray nodes mount.")

    def preflight(self, optimizes: bool = False) -> Any:
        """The environment, once its scale and the sandbox are known to be usable.

        `optimizes`: the command optimises against the reward (search, train-ideator). An
        unisolated sandbox lets a candidate read eval-only data and the harness's files, and
        an optimiser finds that: such a command refuses the local sandbox's silent fallback,
        and runs unisolated only when asked in so many words (`local:isolation=none`).
        """
        from environments import resolve_environment
        from sandbox import get_sandbox

        environment = resolve_environment(self.env)
        environment.scale(self.scale)
        sb = get_sandbox(self.sandbox)  # unknown or unavailable kind: fail before any write
        if optimizes and sb.fallback_reason:
            raise UsageError(
                f"--sandbox {self.sandbox} cannot isolate here ({sb.fallback_reason}), and this "
                "command optimises against the reward: install bubblewrap, use --sandbox docker, "
                "or accept the risk with --sandbox local:isolation=none"
            )
        if sb.warning:  # the local sandbox, where bubblewrap cannot run
            warning(sb.warning)
        return environment

    def check_backend(self, environment: Any, gpus: str | None) -> None:
        """Unknown --backend, bad --gpus, or too few GPUs for the scale: exit 2 before any run."""
        from runner.backends import BACKENDS

        try:
            BACKENDS.get(self.backend)
        except ValueError as e:
            raise UsageError(f"--backend: {e}") from None
        if gpus is not None:
            from runner.scheduler import parse_gpus

            try:
                parse_gpus(gpus)
            except ValueError as e:
                raise UsageError(str(e)) from None
        if self.backend == "local":
            from runner.backends import LocalBackend

            try:
                LocalBackend.for_scale(environment, self.scale, gpus, self.slots)
            except ValueError as e:
                raise UsageError(str(e)) from None
        elif self.backend == "ray":
            from runner.ray_backend import _ray

            _ray()  # not installed: say so now

    def request(self, environment: Any, seed: int = 0, gpus: str | None = None, **kw: Any) -> Any:
        """The RunRequest of these options; `gpus` where the command narrowed --gpus."""
        from agent.executor import RunRequest

        return RunRequest(
            environment,
            self.scale,
            self.sandbox,
            self.timeout,
            seed=seed,
            run_dir=self.run_path,
            backend=self.backend,
            gpus=gpus if gpus is not None else self.gpus,
            slots=self.slots,
            ray_address=self.ray_address,
            ray_shared=self.ray_shared,
            **kw,
        )


@dataclass
class LLMOptions:
    """Which LLM a command calls, and how."""

    llm: str | None = setting(
        None,
        # Parentheses, not brackets: typer's rich help would read [...] as markup.
        "PROVIDER:MODEL (anthropic, openai, vllm, ollama, sglang; "
        f"default: $EXECUTOR_LLM, else {DEFAULT_LLM}).",
        show_default=False,
    )
    base_url: str | None = setting(
        None, "LLM server URL (OpenAI-compatible or Anthropic) for the LLMs used."
    )
    no_cache: bool = setting(False, "Ask the LLM afresh instead of reusing answers.")

    def client(self, spec: str | None, cache_dir: Path | None) -> Any:
        from agent.llm import make_client

        spec = spec or os.environ.get("EXECUTOR_LLM") or DEFAULT_LLM
        retries = os.environ.get("EXECUTOR_LLM_RETRIES", "5")
        if not retries.isdigit():
            raise UsageError(f"EXECUTOR_LLM_RETRIES must be a whole number, not {retries!r}")
        cache = None if self.no_cache else cache_dir
        return make_client(spec, base_url=self.base_url, cache_dir=cache, max_retries=int(retries))


def book_llm_calls(store: Any, *clients: Any) -> None:
    """Record every call of these clients (once each) in the store: all spend counts."""
    from agent.implementer.attempts import CURRENT_CANDIDATE

    for c in {id(c): c for c in clients if c is not None}.values():
        c.on_call = lambda record: store.add_llm_call(CURRENT_CANDIDATE.get(), record)


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise UsageError(f"{what}: cannot read {path}: {e.strerror or e}") from None


Shown = TypeVar("Shown", bound="dict[str, Any] | ToJson")


def emit(data: Shown, as_json: bool, pretty: Callable[[Console, Shown], None]) -> None:
    """A typed result (or a gathered dict) as one JSON line, or rendered for people."""
    if as_json:
        plain = data if isinstance(data, dict) else data.to_json()
        sys.stdout.write(json.dumps(plain, default=str) + "\n")
    else:
        pretty(out, data)


def print_path(path: Path) -> None:
    Console().print(str(path.resolve()), highlight=False, soft_wrap=True)


class progress:
    """A spinner on stderr while the job runs; silent when stderr is not a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet or not err.is_terminal
        self.status: Any = None

    def __enter__(self) -> Callable[[str], None]:
        if self.quiet:
            return lambda _msg: None
        self.status = err.status("starting")
        self.status.start()
        return lambda msg: self.status.update(msg)

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()


def job_command(config: type) -> Callable[[F], F]:
    """`search` and `train-ideator`: run options (no --ray-address: Ray's default cluster),
    the job's CONFIG, and --base-url for its LLMs; errors as one line."""
    bundles = {
        "run": Options(RunOptions, without=("ray_address", "ray_shared")),
        "config": Options(config),
        "llm": Options(LLMOptions, only=("base_url",)),
    }
    return lambda fn: one_line_errors(with_options(**bundles)(fn))


def run_job(
    run: RunOptions,
    clients: list[Any],
    job: Callable[[Any, Callable[[str], None]], Shown],
    pretty: Callable[[Console, Shown], None],
) -> None:
    """Run `job(store, progress)` with the clients' calls booked; a ValueError is bad input."""
    from agent.store import Store

    with closing(Store(run.run_path)) as store, progress(run.as_json) as step:
        book_llm_calls(store, *clients)
        try:
            result = job(store, step)
        except ValueError as e:
            raise UsageError(str(e)) from None
    emit(result, run.as_json, pretty)
