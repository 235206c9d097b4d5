"""The sandbox interface: where a candidate's commands run (docs/architecture.md, Run and result).

Lifecycle: `prepare(layout)` once per run, `exec(step)` for each step (smoke; or train, export,
evaluate), `collect()` once the steps are done (artifacts into the run's host folders),
`cleanup()` always — use `async with sandbox.session(layout):`, which calls the last two.
A sandbox maps the run's folders to paths its processes see and exports them as EXECUTOR_*
variables; kinds (local, docker, …) register by name in `sandbox.registry`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, TypeVar

from sandbox.cpu import CpuMeter

T = TypeVar("T")


class RunStatus(StrEnum):
    """How a step or a run ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the code exited non-zero
    TIMEOUT = "timeout"  # the harness's clock ran out and killed the process group
    KILLED = "killed"  # a resource limit (memory, disk, file size) or an outside signal
    INFRA_ERROR = "infra_error"  # the sandbox itself broke: retryable
    CANCELLED = "cancelled"  # the user or the scheduler stopped it
    FLAGGED = "flagged"  # the result is implausible, or the harness caught tampering


@dataclass(frozen=True)
class RunLayout:
    """The host folders of one run, and what each step may do with them.

    | step            | workspace | output | export | result | eval-only paths |
    |-----------------|-----------|--------|--------|--------|-----------------|
    | smoke, train    | write     | write  | -      | -      | hidden          |
    | export          | read      | read   | write  | -      | hidden          |
    | evaluate        | read      | read   | read   | write  | read            |

    The environment folder is read-only for every step; the workspace's `.git` pointer is
    read-only too (the harness runs git there after a step). Isolating sandboxes enforce
    the table; the fallback local sandbox cannot, and says so.
    """

    workspace: Path  # the candidate's git worktree: cwd of every step
    env_dir: Path  # the environment folder: evaluator and data, read-only
    output_dir: Path  # EXECUTOR_OUTPUT_DIR: checkpoints, metrics.jsonl
    result_dir: Path  # where the evaluator writes result.json (never visible to training)
    log_dir: Path  # <step>.stdout / <step>.stderr
    dockerfile: Path | None = None  # the environment's image, for sandboxes that build one
    export_dir: Path | None = None  # EXECUTOR_EXPORT_DIR, when the environment has an export step
    eval_only: tuple[Path, ...] = ()  # inside env_dir: visible to the evaluate step alone


GiB = 1024**3


@dataclass(frozen=True)
class Limits:
    """What one step may use. `None` means no limit of that kind."""

    memory_gb: float | None = None  # resident memory; the step is killed above it
    cpus: float | None = None  # CPU time share (Docker); the local sandbox only records it
    pids: int | None = 4096  # processes and threads together: stops fork bombs
    output_bytes: int = 64 * 1024 * 1024  # per stream; the rest is dropped with a marker
    disk_gb: float | None = 20.0  # what the step may write in all (its writable folders)

    @property
    def memory_bytes(self) -> int | None:
        return None if self.memory_gb is None else int(self.memory_gb * GiB)

    @property
    def disk_bytes(self) -> int | None:
        return None if self.disk_gb is None else int(self.disk_gb * GiB)


@dataclass(frozen=True)
class Step:
    """One command to run inside the sandbox."""

    name: str  # "smoke" | "train" | "export" | "evaluate": names the log files too
    command: str  # run by /bin/sh -c
    timeout_s: float  # wall-clock seconds (for a CPU-clocked step: its safety cap)
    seed: int = 0
    gpus: tuple[int, ...] = ()  # device ids this step may see
    sees_result_dir: bool = False  # only the protected evaluator writes the result
    writes_export_dir: bool = False  # the export step (see RunLayout's table)
    limits: Limits = field(default_factory=Limits)
    extra_env: dict[str, str] = field(default_factory=dict)  # set by the harness (trusted)
    timed_outputs: tuple[str, ...] = ()  # globs in output_dir the harness times as they change
    # CPU-seconds of the step's processes after which the harness kills it (sandbox/cpu.py).
    # A CPU-clocked step also times its outputs in CPU-seconds.
    cpu_timeout_s: float | None = None

    @property
    def evaluating(self) -> bool:
        return self.sees_result_dir

    @property
    def writes_workspace(self) -> bool:
        """Training and smoke write the workspace and the output; export and evaluate read."""
        return not (self.sees_result_dir or self.writes_export_dir)

    def writable(self, layout: RunLayout) -> list[Path]:
        """The host folders this step may write (the disk limit counts what lands there)."""
        if self.sees_result_dir:
            return [layout.result_dir]
        if self.writes_export_dir:
            return [layout.export_dir] if layout.export_dir is not None else []
        return [layout.workspace, layout.output_dir]


@dataclass(frozen=True)
class StepResult:
    name: str
    status: RunStatus
    exit_code: int | None
    duration_s: float
    stdout_path: Path
    stderr_path: Path
    reason: str | None = None  # one line when status is not SUCCEEDED
    peak_memory_bytes: int | None = None  # where the sandbox can measure it
    # Seconds from the step's start to the harness's last sight of each timed output changing
    # (CPU-seconds of the step's processes when the step has a cpu_timeout_s).
    output_times: dict[str, float] = field(default_factory=dict)
    cpu_s: float | None = None  # CPU-seconds its processes used, where the harness measures it

    def stderr_tail(self, lines: int = 30) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class SandboxUnavailable(RuntimeError):
    """This sandbox kind cannot run here; the message says what to install or start."""


class Sandbox(abc.ABC):
    """Base class of sandbox kinds. Subclasses implement `_exec` and may extend the hooks."""

    kind: ClassVar[str]
    # Why this sandbox runs steps unisolated although isolation was not declined (the local
    # sandbox where bubblewrap cannot run); None when it isolates, or was told not to.
    fallback_reason: str | None = None

    def __init__(self) -> None:
        self.layout: RunLayout | None = None
        # The running (or last) step's CPU meter: `_exec` sets it once the processes exist.
        self.cpu_meter: CpuMeter | None = None

    @property
    def warning(self) -> str | None:
        """One line for the user about what this sandbox cannot guarantee here, or None."""
        return None

    async def prepare(self, layout: RunLayout) -> None:
        for d in (layout.output_dir, layout.result_dir, layout.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.layout = layout

    async def prepare_step(self, step: Step) -> None:
        """Create the folders the step writes, and the export folder it may mount."""
        if self.layout is not None:
            for d in step.writable(self.layout):
                d.mkdir(parents=True, exist_ok=True)
            if self.layout.export_dir is not None:
                self.layout.export_dir.mkdir(parents=True, exist_ok=True)

    async def exec(self, step: Step) -> StepResult:
        """Run `step` under the watch of `sandbox.watch`: the disk limit, the timed outputs,
        and the workspace's git pointer (restored if the step changed it)."""
        from sandbox.watch import watched  # local: watch imports this module

        if self.layout is None:
            raise RuntimeError("Sandbox.exec before prepare()")
        if step.cpu_timeout_s is not None and (why := self.cpu_meter_problem()):
            # Never a silent fallback to wall-clock time: that budget would depend on load.
            log = self.layout.log_dir
            return StepResult(
                step.name,
                RunStatus.INFRA_ERROR,
                None,
                0.0,
                log / f"{step.name}.stdout",
                log / f"{step.name}.stderr",
                f"{step.name} has a CPU-time budget, but {why}; use --sandbox local or docker",
            )
        await self.prepare_step(step)
        self.cpu_meter = None
        return await watched(self._exec(self.layout, step), self.layout, step, self.cpu_seconds)

    def cpu_meter_problem(self) -> str | None:
        """Why this sandbox cannot measure a step's CPU time here, or None when it can (and
        its `_exec` sets `cpu_meter`)."""
        return f"the {self.kind} sandbox cannot measure a step's CPU time"

    def cpu_seconds(self) -> float | None:
        """CPU-seconds the current (or last) step's processes have used, as the harness
        measures them; None before they start, or where this sandbox cannot measure."""
        meter = self.cpu_meter
        return None if meter is None else meter.read()

    def seen_path(self, host_path: Path) -> Path:
        """Where a host path under the layout's folders appears to the step's processes
        (the same path unless the sandbox maps folders, as Docker does)."""
        return host_path

    @abc.abstractmethod
    async def _exec(self, layout: RunLayout, step: Step) -> StepResult:
        """Run `step` to completion (or timeout/cancel) and report how it ended."""

    async def collect(self) -> None:
        """Bring the steps' artifacts into the layout's host folders.

        Sandboxes that mount those folders (local, docker) have nothing to do; one that runs
        elsewhere copies output, result and logs back here.
        """
        return None

    async def cleanup(self) -> None:
        """Release everything `prepare` and the steps made. Runs on every path, once."""
        self.layout = None

    @contextlib.asynccontextmanager
    async def session(self, layout: RunLayout) -> AsyncIterator[Sandbox]:
        await self.prepare(layout)
        try:
            yield self
            await self.collect()
        finally:
            await finish_despite_cancel(self.cleanup())


async def finish_despite_cancel(aw: Awaitable[T]) -> T:
    """Await `aw` to its end even if this task is cancelled meanwhile, then re-raise the cancel.

    Killing a process group or removing a container must complete: a second Ctrl-C during
    cleanup would otherwise leave them behind.
    """
    task = asyncio.ensure_future(aw)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result
