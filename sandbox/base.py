"""The sandbox interface (Contract 2 of DESIGN.md): where a candidate's commands run.

Lifecycle: `prepare(layout)` once per run, `exec(step)` for each step (smoke; train, then
evaluate), `cleanup()` always — use `async with sandbox.session(layout):`. A sandbox maps
the run's folders to paths its processes see and exports them as EXECUTOR_* variables;
kinds (local, docker, …) register by name in `sandbox.registry`.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import ClassVar


class RunStatus(StrEnum):
    """How a step or a run ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the code exited non-zero
    TIMEOUT = "timeout"  # the harness's clock ran out and killed the process group
    KILLED = "killed"  # a resource limit (memory, pids, output) or an outside signal
    INFRA_ERROR = "infra_error"  # the sandbox itself broke: retryable
    CANCELLED = "cancelled"  # the user or the scheduler stopped it
    FLAGGED = "flagged"  # the result is implausible or the evaluator was tampered with


@dataclass(frozen=True)
class RunLayout:
    """The host folders of one run. Only `output_dir` and `result_dir` are written by steps."""

    workspace: Path  # the candidate's git worktree: cwd of every step
    env_dir: Path  # the environment folder: evaluator and data, read-only
    output_dir: Path  # EXECUTOR_OUTPUT_DIR: checkpoints, metrics.jsonl
    result_dir: Path  # where the evaluator writes result.json (never visible to training)
    log_dir: Path  # <step>.stdout / <step>.stderr


@dataclass(frozen=True)
class Step:
    """One command to run inside the sandbox."""

    name: str  # "smoke" | "train" | "evaluate": names the log files too
    command: str  # run by /bin/sh -c
    timeout_s: float
    seed: int = 0
    gpus: tuple[int, ...] = ()  # device ids this step may see
    sees_result_dir: bool = False  # only the protected evaluator writes the result
    extra_env: dict[str, str] = field(default_factory=dict)  # set by the harness (trusted)


@dataclass(frozen=True)
class StepResult:
    name: str
    status: RunStatus
    exit_code: int | None
    duration_s: float
    stdout_path: Path
    stderr_path: Path
    reason: str | None = None  # one line when status is not SUCCEEDED

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

    def __init__(self) -> None:
        self.layout: RunLayout | None = None

    async def prepare(self, layout: RunLayout) -> None:
        for d in (layout.output_dir, layout.result_dir, layout.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.layout = layout

    async def exec(self, step: Step) -> StepResult:
        if self.layout is None:
            raise RuntimeError("Sandbox.exec before prepare()")
        return await self._exec(self.layout, step)

    @abc.abstractmethod
    async def _exec(self, layout: RunLayout, step: Step) -> StepResult:
        """Run `step` to completion (or timeout/cancel) and report how it ended."""

    async def cleanup(self) -> None:
        self.layout = None

    @contextlib.asynccontextmanager
    async def session(self, layout: RunLayout) -> AsyncIterator[Sandbox]:
        await self.prepare(layout)
        try:
            yield self
        finally:
            await self.cleanup()
