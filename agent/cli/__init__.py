"""The `executor` command line: run-idea, baseline, envs, show, doctor.

Exit codes: 0 the run succeeded; 1 it did not (rejected, failed, timeout, flagged, …);
2 bad input (unknown environment, broken manifest, missing key, unusable patch, …).
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from agent.cli import render as report

if TYPE_CHECKING:  # the CLI imports the heavy modules inside its commands
    from agent.results import ToJson

app = typer.Typer(
    help="Turn research ideas into code changes, run them in a sandbox, get a reward.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


@app.callback()
def _startup() -> None:
    # A process started with SIGINT ignored (a background job, a parent that ignores it)
    # passes that on, and then Python never raises KeyboardInterrupt: Ctrl-C or `kill -INT`
    # would leave training running. Cancellation must always work, so take SIGINT back.
    signal.signal(signal.SIGINT, signal.default_int_handler)


DEFAULT_LLM = "anthropic:claude-sonnet-4-6"
F = TypeVar("F", bound=Callable[..., Any])


class UsageError(Exception):
    """Bad input: exit 2 with the message."""


def _bad_input_errors() -> tuple[type[BaseException], ...]:
    from agent.implementer import ContextTooLarge
    from agent.implementer.edits import EditParseError
    from agent.llm import MissingKeyError
    from agent.store import StoreError
    from environments import ManifestError
    from runner.workspace import StaleRunDir
    from sandbox import SandboxUnavailable

    return (
        UsageError,
        ManifestError,
        MissingKeyError,
        EditParseError,
        StoreError,
        SandboxUnavailable,
        ContextTooLarge,
        StaleRunDir,
    )


def one_line_errors(fn: F) -> F:
    """Known errors become `error: …` on stderr and an exit code; nothing else leaks."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from agent.llm import LLMError

        bad_input = _bad_input_errors()
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except bad_input as e:
            _error(_first_line(e))
            raise typer.Exit(2) from None
        except LLMError as e:
            _error(_first_line(e))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]: the store records what finished")
            raise typer.Exit(130) from None
        except Exception as e:
            if os.environ.get("EXECUTOR_DEBUG"):
                raise
            err.print(
                f"[red]internal error:[/red] {type(e).__name__}: {_first_line(e)} "
                "(set EXECUTOR_DEBUG=1 for the traceback, and please report it)",
                highlight=False,
            )
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]


def _error(message: str) -> None:
    """One `error: …` line on stderr, never wrapped (scripts grep it)."""
    err.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def _run_dir(run_dir: Path | None) -> Path:
    # Absolute: git runs worktree commands from the baseline repo, not from here.
    return (run_dir or Path(os.environ.get("EXECUTOR_RUN_DIR", "runs"))).resolve()


RunDirOpt = Annotated[
    Path | None,
    typer.Option("--run-dir", help="Where the store, workspaces and logs live (default: ./runs)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
EnvOpt = Annotated[str, typer.Option("--env", help="Environment name or folder with env.toml.")]
ScaleOpt = Annotated[str, typer.Option("--scale", help="Scale from the manifest.")]
SandboxOpt = Annotated[
    str,
    typer.Option(
        "--sandbox",
        help="local, or docker; options as KIND:KEY=VALUE,… e.g. docker:network=bridge.",
    ),
]
TimeoutOpt = Annotated[
    float | None, typer.Option("--timeout", help="Training seconds (default: the scale's).")
]
BackendOpt = Annotated[
    str, typer.Option("--backend", help="Where runs execute: local (this machine) or ray.")
]
GpusOpt = Annotated[
    str | None,
    typer.Option("--gpus", help="GPU ids the local backend may use, e.g. 0,1 (default: all)."),
]
SlotsOpt = Annotated[
    int, typer.Option("--slots", min=1, help="Concurrent runs at a CPU (tiny) scale.")
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option("--ray-address", help="Ray cluster, e.g. ray://head:10001 (default: local)."),
]
RaySharedOpt = Annotated[
    bool,
    typer.Option("--ray-shared", help="The run dir is on a filesystem all Ray nodes mount."),
]


@app.command("run-idea")
@one_line_errors
def run_idea_cmd(
    idea: Annotated[
        str | None,
        typer.Argument(help="The idea text, @FILE, or - for stdin. Optional with --patch."),
    ] = None,
    env: EnvOpt = ...,  # type: ignore[assignment]
    scale: ScaleOpt = "tiny",
    llm: Annotated[
        str | None,
        typer.Option(
            "--llm",
            help=f"PROVIDER:MODEL (anthropic, openai, vllm, ollama, sglang) "
            f"[default: $EXECUTOR_LLM or {DEFAULT_LLM}]",
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="LLM server URL (OpenAI-compatible or Anthropic)."),
    ] = None,
    patch: Annotated[
        Path | None, typer.Option("--patch", help="Apply this diff or SEARCH/REPLACE file; no LLM.")
    ] = None,
    attempts: Annotated[int, typer.Option("--attempts", min=1, help="Tries per sample.")] = 3,
    samples: Annotated[
        int, typer.Option("--samples", min=1, help="Parallel implementations; first valid wins.")
    ] = 1,
    sandbox: SandboxOpt = "local",
    timeout: TimeoutOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="EXECUTOR_SEED of the run.")] = 0,
    backend: BackendOpt = "local",
    gpus: GpusOpt = None,
    ray_address: RayAddressOpt = None,
    ray_shared: RaySharedOpt = False,
    context_tokens: Annotated[
        int, typer.Option("--context-tokens", help="Prompt budget for task + editable files.")
    ] = 100_000,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Ask the LLM afresh instead of reusing answers.")
    ] = False,
    run_dir: RunDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Implement IDEA as a candidate commit, validate it, run it, and print its reward."""
    from agent.executor import RunRequest, run_idea
    from agent.implementer import ImplementerConfig
    from agent.implementer.context import editable_context
    from agent.implementer.edits import parse_edits
    from agent.store import Store

    environment, sb = _preflight(env, scale, sandbox)
    _check_backend(environment, scale, backend, gpus)
    patch_text = None
    if patch is not None:
        patch_text = _read_text(patch, "--patch")
        parse_edits(patch_text)  # a patch with no usable edit fails before anything is written
        idea = idea or _idea_from_patch(patch_text, patch)
    if idea is None:
        raise UsageError("give the IDEA text (or @FILE), or --patch FILE")
    if idea == "-":
        idea = sys.stdin.read()
    elif idea.startswith("@"):
        idea = _read_text(Path(idea[1:]), "IDEA")
    if not idea.strip():
        raise UsageError("the IDEA text is empty")
    config = ImplementerConfig(attempts=attempts, samples=samples, context_tokens=context_tokens)
    run_path = _run_dir(run_dir)
    client = None
    if patch_text is None:
        editable_context(environment, context_tokens)  # too large: say so before any call
        client = _make_client(llm, base_url, None if no_cache else run_path / "llm_cache")
    req = RunRequest(
        environment,
        scale,
        sb,
        timeout,
        seed=seed,
        implementer=config,
        run_dir=run_path,
        backend=backend,
        gpus=gpus,
        ray_address=ray_address,
        ray_shared=ray_shared,
    )
    with closing(Store(run_path)) as store, _progress(as_json) as progress:
        if client is not None:
            client.on_call = _book_llm_calls(store)
        result = asyncio.run(
            run_idea(idea, req, store, client=client, patch_text=patch_text, progress=progress)
        )
    _emit(result, as_json, report.print_run_idea)
    if not result.succeeded:
        _error(report.failure_line(result))
        raise typer.Exit(1)


@app.command("baseline")
@one_line_errors
def baseline_cmd(
    env: EnvOpt = ...,  # type: ignore[assignment]
    scale: ScaleOpt = "tiny",
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Runs with seeds 0..N-1.")] = 3,
    sandbox: SandboxOpt = "local",
    timeout: TimeoutOpt = None,
    backend: BackendOpt = "local",
    gpus: GpusOpt = None,
    slots: SlotsOpt = 1,
    ray_address: RayAddressOpt = None,
    ray_shared: RaySharedOpt = False,
    run_dir: RunDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the unmodified baseline with several seeds; print mean ± std of reward and metrics.

    Seeds run at once where slots allow: one per GPU (or per --slots at a CPU scale)."""
    from agent.executor import RunRequest, run_baseline
    from agent.store import Store

    environment, sb = _preflight(env, scale, sandbox)
    _check_backend(environment, scale, backend, gpus, slots)
    run_path = _run_dir(run_dir)
    req = RunRequest(
        environment,
        scale,
        sb,
        timeout,
        run_dir=run_path,
        backend=backend,
        gpus=gpus,
        slots=slots,
        ray_address=ray_address,
        ray_shared=ray_shared,
    )
    with closing(Store(run_path)) as store, _progress(as_json) as progress:
        result = asyncio.run(run_baseline(req, store, seeds, progress))
    _emit(result, as_json, report.print_baseline)
    raise typer.Exit(0 if result.status == "succeeded" else 1)


@app.command("search")
@one_line_errors
def search_cmd(
    env: EnvOpt = ...,  # type: ignore[assignment]
    scale: ScaleOpt = "tiny",
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Epochs of ideas.")] = 3,
    ideas_per_epoch: Annotated[
        int, typer.Option("--ideas-per-epoch", min=1, help="Ideas generated per epoch.")
    ] = 8,
    ideator: Annotated[
        str, typer.Option("--ideator", help="hparam, replay:FILE, or PROVIDER:MODEL.")
    ] = "hparam",
    implementer: Annotated[
        str | None,
        typer.Option("--implementer", help="PROVIDER:MODEL that implements LLM ideas."),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="LLM server URL for both LLMs.")
    ] = None,
    baseline_seeds: Annotated[
        int, typer.Option("--baseline-seeds", min=1, help="Baseline runs (the noise estimate).")
    ] = 3,
    rerun_top: Annotated[int, typer.Option("--rerun-top", min=0, help="Ideas re-run.")] = 3,
    rerun_seeds: Annotated[
        int, typer.Option("--rerun-seeds", min=1, help="Held-out seeds per re-run.")
    ] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the ideator.")] = 0,
    mode: Annotated[
        str,
        typer.Option("--mode", help="epochs (the published method) or async (no barriers)."),
    ] = "epochs",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the search in --run-dir.")
    ] = False,
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", help="Stop cleanly at this LLM spend.")
    ] = None,
    budget_gpu_hours: Annotated[
        float | None,
        typer.Option("--budget-gpu-hours", help="Stop cleanly at this many GPU-hours of runs."),
    ] = None,
    sandbox: SandboxOpt = "local",
    timeout: TimeoutOpt = None,
    backend: BackendOpt = "local",
    gpus: GpusOpt = None,
    slots: SlotsOpt = 1,
    run_dir: RunDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search: epochs of ideas run against ENV, every result archived, top ideas re-run."""
    from agent.executor import RunRequest
    from agent.search.ideators import HparamIdeator, LLMIdeator, ReplayIdeator
    from agent.search.loop import SearchConfig, run_search
    from agent.store import Store

    environment, sb = _preflight(env, scale, sandbox)
    _check_backend(environment, scale, backend, gpus, slots)
    run_path = _run_dir(run_dir)
    cache = run_path / "llm_cache"
    ideator_obj: Any
    if ideator == "hparam":
        from agent.knobs import knobs_for

        try:
            knobs_for(environment, scale)
        except ValueError as e:
            raise UsageError(str(e)) from None
        ideator_obj = HparamIdeator()
    elif ideator.startswith("replay:"):
        from agent.search.ideators import load_replay

        try:
            load_replay(Path(ideator[len("replay:") :]))
        except ValueError as e:
            raise UsageError(str(e)) from None
        ideator_obj = ReplayIdeator(Path(ideator[len("replay:") :]))
    else:
        ideator_obj = LLMIdeator(_make_client(ideator, base_url, cache))
    impl_client = _make_client(implementer, base_url, cache) if implementer else None
    if isinstance(ideator_obj, LLMIdeator) and impl_client is None:
        impl_client = ideator_obj.client
    try:
        config = SearchConfig(
            epochs=epochs,
            ideas_per_epoch=ideas_per_epoch,
            baseline_seeds=baseline_seeds,
            rerun_top=rerun_top,
            rerun_seeds=rerun_seeds,
            seed=seed,
            ideator=ideator,
            implementer=implementer or "",
            mode=mode,
            budget_usd=budget_usd,
            budget_gpu_hours=budget_gpu_hours,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    req = RunRequest(
        environment, scale, sb, timeout, run_dir=run_path, backend=backend, gpus=gpus, slots=slots
    )
    with closing(Store(run_path)) as store, _progress(as_json) as progress:
        clients = {id(c): c for c in (impl_client, getattr(ideator_obj, "client", None)) if c}
        for c in clients.values():  # ideation and implementation spend both count
            c.on_call = _book_llm_calls(store)
        try:
            result = asyncio.run(
                run_search(
                    config,
                    req,
                    store,
                    ideator_obj,
                    implementer=impl_client,
                    resume=resume,
                    progress=progress,
                )
            )
        except ValueError as e:
            raise UsageError(str(e)) from None
    _emit(result, as_json, report.print_search)


@app.command("train-ideator")
@one_line_errors
def train_ideator_cmd(
    env: EnvOpt = ...,  # type: ignore[assignment]
    scale: ScaleOpt = "tiny",
    model: Annotated[
        str, typer.Option("--model", help="Hub id or path of the ideator; tiny: build one here.")
    ] = "tiny",
    implementer: Annotated[
        str, typer.Option("--implementer", help="hparam (NAME=VALUE ideas) or PROVIDER:MODEL.")
    ] = "hparam",
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="LLM server URL for the implementer.")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="GRPO optimizer steps.")] = 20,
    group_size: Annotated[
        int, typer.Option("--group-size", min=2, help="Ideas sampled per prompt (GRPO group).")
    ] = 8,
    prompts_per_step: Annotated[
        int, typer.Option("--prompts-per-step", min=1, help="GRPO groups per step.")
    ] = 1,
    learning_rate: Annotated[
        float | None,
        typer.Option("--learning-rate", help="Adapter learning rate (default: 1e-5; tiny 3e-3)."),
    ] = None,
    lora_r: Annotated[int, typer.Option("--lora-r", min=1, help="LoRA rank.")] = 16,
    temperature: Annotated[
        float, typer.Option("--temperature", help="Sampling temperature.")
    ] = 1.0,
    max_completion_tokens: Annotated[
        int | None,
        typer.Option("--max-completion-tokens", help="Completion cap (default: 2048; tiny 64)."),
    ] = None,
    beta: Annotated[float, typer.Option("--beta", help="KL penalty to the base model.")] = 0.0,
    reward: Annotated[
        str, typer.Option("--reward", help="raw, baseline-relative or rank (inside the group).")
    ] = "raw",
    failure_reward: Annotated[
        float, typer.Option("--failure-reward", help="Reward of a failed or flagged idea.")
    ] = 0.0,
    diversity_weight: Annotated[
        float, typer.Option("--diversity-weight", help="Penalty weight for repeated ideas.")
    ] = 0.0,
    diversity_history: Annotated[
        int, typer.Option("--diversity-history", help="Earlier steps the penalty compares.")
    ] = 2,
    novelty_weight: Annotated[
        float, typer.Option("--novelty-weight", help="Bonus for ideas new to the archive.")
    ] = 0.0,
    length_bonus: Annotated[
        float, typer.Option("--length-bonus", help="Most bonus for completion length.")
    ] = 0.0,
    length_cap: Annotated[
        int, typer.Option("--length-cap", help="Tokens at which the length bonus stops.")
    ] = 1024,
    save_every: Annotated[
        int, typer.Option("--save-every", min=1, help="Checkpoint the adapter every N steps.")
    ] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seeds sampling, adapter and runs.")] = 0,
    vllm: Annotated[str, typer.Option("--vllm", help="auto, on or off.")] = "auto",
    policy_gpu: Annotated[
        int, typer.Option("--policy-gpu", help="GPU the policy trains on (runs use the rest).")
    ] = 0,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the training in --run-dir.")
    ] = False,
    sandbox: SandboxOpt = "local",
    timeout: TimeoutOpt = None,
    backend: BackendOpt = "local",
    gpus: GpusOpt = None,
    slots: SlotsOpt = 1,
    run_dir: RunDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train the ideator with GRPO on execution reward (LoRA); every idea is run and stored."""
    from agent.executor import RunRequest
    from agent.ideator_rl import TrainIdeatorConfig, train_ideator
    from agent.ideator_rl.trainer import execution_gpus
    from agent.store import Store
    from runner.scheduler import detect_gpus

    environment, sb = _preflight(env, scale, sandbox)
    try:
        config = TrainIdeatorConfig(
            model=model,
            implementer=implementer,
            steps=steps,
            group_size=group_size,
            prompts_per_step=prompts_per_step,
            learning_rate=learning_rate,
            lora_r=lora_r,
            temperature=temperature,
            max_completion_tokens=max_completion_tokens,
            beta=beta,
            reward=reward,
            failure_reward=failure_reward,
            diversity_weight=diversity_weight,
            diversity_history=diversity_history,
            novelty_weight=novelty_weight,
            length_bonus=length_bonus,
            length_cap=length_cap,
            save_every=save_every,
            seed=seed,
            vllm=vllm,
            policy_gpu=policy_gpu,
        )
        if implementer == "hparam":
            from agent.knobs import knobs_for

            knobs_for(environment, scale)
        gpus = execution_gpus(
            gpus,
            detect_gpus() if backend == "local" else [],
            policy_gpu,
            environment.scale(scale).gpus,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    if config.tiny and environment.scale(scale).gpus:
        raise UsageError("--model tiny is for CPU scales: give a hub model for a GPU scale")
    _check_backend(environment, scale, backend, gpus, slots)
    run_path = _run_dir(run_dir)
    client = None
    if implementer != "hparam":
        client = _make_client(implementer, base_url, run_path / "llm_cache")
    req = RunRequest(
        environment,
        scale,
        sb,
        timeout,
        seed=seed,
        run_dir=run_path,
        backend=backend,
        gpus=gpus,
        slots=slots,
    )
    with closing(Store(run_path)) as store, _progress(as_json) as progress:
        if client is not None:
            client.on_call = _book_llm_calls(store)
        try:
            result = train_ideator(
                config, req, store, client=client, resume=resume, progress=progress
            )
        except ValueError as e:
            raise UsageError(str(e)) from None
    _emit(result, as_json, report.print_training)


@app.command("report")
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
    out_console = Console()
    for path in paths:
        out_console.print(str(path.resolve()), highlight=False, soft_wrap=True)


@app.command("export")
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
    Console().print(str(path.resolve()), highlight=False, soft_wrap=True)


def _existing_store(run_dir: Path) -> Any:
    from agent.store import DB_NAME, Store

    if not (run_dir / DB_NAME).is_file():
        raise UsageError(f"no store at {run_dir / DB_NAME}: pass the run directory of a search")
    return Store(run_dir)


@app.command("envs")
@one_line_errors
def envs_cmd(as_json: JsonOpt = False) -> None:
    """List the environments found (built in, and on $EXECUTOR_ENV_PATH) and their scales."""
    from environments import list_environments

    found = list_environments()
    _emit(report.envs_table(found), as_json, report.print_envs)


@app.command("show")
@one_line_errors
def show_cmd(
    ident: Annotated[
        str | None,
        typer.Argument(metavar="[ID]", help="An idea, candidate or run id (or prefix)."),
    ] = None,
    last: Annotated[int, typer.Option("--last", min=1, help="Ideas listed without an ID.")] = 20,
    run_dir: RunDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an idea, candidate or run; without an ID, list the latest ideas."""
    from agent.store import DB_NAME, Store

    run_path = _run_dir(run_dir)
    if not (run_path / DB_NAME).is_file():
        raise UsageError(f"no store at {run_path / DB_NAME}; pass --run-dir")
    with closing(Store(run_path)) as store:
        if ident is None:
            _emit({"ideas": store.latest_ideas(last)}, as_json, report.print_ideas)
            return
        kind, row = store.resolve(ident)
        data = report.collect(store, kind, row)
    _emit(data, as_json, report.print_show)


@app.command("doctor")
def doctor_cmd(as_json: JsonOpt = False) -> None:
    """Check Python, torch, GPUs, the Docker engine, git and API keys, each with a verdict."""
    from agent.doctor import run_checks

    checks = run_checks()
    _emit({"checks": checks}, as_json, report.print_doctor)
    raise typer.Exit(1 if any(c["verdict"] == "fail" for c in checks) else 0)


# -- helpers ------------------------------------------------------------------------------


def _preflight(env: str, scale: str, sandbox: str) -> tuple[Any, str]:
    from environments import resolve_environment
    from sandbox import get_sandbox

    environment = resolve_environment(env)
    environment.scale(scale)
    sb = get_sandbox(sandbox)  # unknown or unavailable kind: fail before anything is written
    warning = getattr(sb, "warning", None)  # the local sandbox where bubblewrap cannot run
    if warning:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    return environment, sandbox


def _check_backend(
    environment: Any, scale: str, backend: str, gpus: str | None, slots: int = 1
) -> None:
    """Bad --backend/--gpus, or too few GPUs for the scale: exit 2 before anything runs."""
    if backend not in ("local", "ray"):
        raise UsageError(f"unknown --backend {backend!r}: use local or ray")
    if gpus is not None:
        from runner.scheduler import parse_gpus

        try:
            parse_gpus(gpus)
        except ValueError as e:
            raise UsageError(str(e)) from None
    if backend == "local":
        from runner.backends import LocalBackend

        try:
            LocalBackend.for_scale(environment, scale, gpus, slots)
        except ValueError as e:
            raise UsageError(str(e)) from None
    else:
        from runner.ray_backend import _ray

        _ray()  # not installed: say so now


def _make_client(llm: str | None, base_url: str | None, cache_dir: Path | None) -> Any:
    from agent.llm import make_client

    spec = llm or os.environ.get("EXECUTOR_LLM") or DEFAULT_LLM
    retries = os.environ.get("EXECUTOR_LLM_RETRIES", "5")
    if not retries.isdigit():
        raise UsageError(f"EXECUTOR_LLM_RETRIES must be a whole number, not {retries!r}")
    return make_client(spec, base_url=base_url, cache_dir=cache_dir, max_retries=int(retries))


def _book_llm_calls(store: Any) -> Callable[[Any], None]:
    from agent.implementer import CURRENT_CANDIDATE

    return lambda record: store.add_llm_call(CURRENT_CANDIDATE.get(), record)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise UsageError(f"{what}: cannot read {path}: {e.strerror or e}") from None


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


Shown = TypeVar("Shown", bound="dict[str, Any] | ToJson")


def _emit(data: Shown, as_json: bool, pretty: Callable[[Console, Shown], None]) -> None:
    if as_json:
        plain = data if isinstance(data, dict) else data.to_json()
        sys.stdout.write(json.dumps(plain, default=str) + "\n")
    else:
        pretty(out, data)


class _progress:
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


def main() -> None:  # pragma: no cover - console entry for `python -m agent.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
