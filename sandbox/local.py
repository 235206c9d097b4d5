"""The local sandbox: each step is a subprocess in its own process group on this machine.

It isolates far less than Docker (same user, same filesystem): it exists for the tiny
scales and for development. What it does guarantee: the whole process group dies on
timeout or cancel, logs go to files, API keys are not inherited, and `python` means the
interpreter running the harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from pathlib import Path

from sandbox.base import RunLayout, RunStatus, Sandbox, Step, StepResult
from sandbox.registry import register

# Secrets an idea's code must never see (it could print them into a log).
_SECRET = re.compile(r"(API_KEY|_TOKEN|SECRET|PASSWORD|CREDENTIAL)", re.IGNORECASE)


# Signals that mean "stopped by a limit" (OOM killer, CPU/file-size rlimits), not a code bug.
_LIMIT_SIGNALS = {signal.SIGKILL, signal.SIGXCPU, signal.SIGXFSZ}


def step_environment(layout: RunLayout, step: Step, base: dict[str, str]) -> dict[str, str]:
    """The variables of Contract 2, over `base` with secrets removed."""
    env = {k: v for k, v in base.items() if not _SECRET.search(k)}
    env.update(
        EXECUTOR_WORKSPACE=str(layout.workspace),
        EXECUTOR_ENV_DIR=str(layout.env_dir),
        EXECUTOR_OUTPUT_DIR=str(layout.output_dir),
        EXECUTOR_SEED=str(step.seed),
        EXECUTOR_STEP=step.name,
        CUDA_VISIBLE_DEVICES=",".join(str(g) for g in step.gpus),
        PYTHONDONTWRITEBYTECODE="1",  # keep candidate workspaces free of __pycache__
        PYTHONUNBUFFERED="1",  # logs arrive while the step runs
    )
    env.update(step.extra_env)
    if step.sees_result_dir:
        env["EXECUTOR_RESULT_PATH"] = str(layout.result_dir / "result.json")
    return env


@register("local")
class LocalSandbox(Sandbox):
    def __init__(self, kill_grace_s: float = 5.0) -> None:
        super().__init__()
        self.kill_grace_s = kill_grace_s

    async def _exec(self, layout: RunLayout, step: Step) -> StepResult:
        base = dict(os.environ)
        # The harness's interpreter first on PATH: `python train.py` uses this venv.
        base["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
        env = step_environment(layout, step, base)
        out_path = layout.log_dir / f"{step.name}.stdout"
        err_path = layout.log_dir / f"{step.name}.stderr"
        start = time.monotonic()

        def result(status: RunStatus, code: int | None, reason: str | None) -> StepResult:
            return StepResult(
                step.name, status, code, time.monotonic() - start, out_path, err_path, reason
            )

        with out_path.open("wb") as out, err_path.open("wb") as err:
            try:
                proc = await asyncio.create_subprocess_exec(
                    "/bin/sh", "-c", step.command,
                    cwd=layout.workspace, env=env, stdout=out, stderr=err,
                    stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
            except OSError as e:
                return result(RunStatus.INFRA_ERROR, None, f"could not start {step.name}: {e}")
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel
                # (Ctrl-C) that lands as the wait completes.
                async with asyncio.timeout(step.timeout_s):
                    code = await proc.wait()
            except TimeoutError:
                await self._kill_group(proc)
                return result(
                    RunStatus.TIMEOUT, proc.returncode,
                    f"{step.name} exceeded its {step.timeout_s:g}s limit and was killed",
                )  # fmt: skip
            except asyncio.CancelledError:
                await asyncio.shield(self._kill_group(proc))
                raise
            # The step's leader exited; children it left behind must not outlive it.
            await self._kill_group(proc, already_exited=True)
        if code == 0:
            return result(RunStatus.SUCCEEDED, 0, None)
        # A signal shows as -N when it hit the shell's child directly, 128+N through the shell.
        sig_no = -code if code < 0 else code - 128 if code > 128 else None
        if sig_no in _LIMIT_SIGNALS:
            sig = signal.Signals(sig_no).name
            return result(
                RunStatus.KILLED, code, f"{step.name} was killed by {sig} (a resource limit?)"
            )
        if code < 0:
            sig = signal.Signals(-code).name
            return result(RunStatus.FAILED, code, f"{step.name} crashed with {sig}")
        return result(RunStatus.FAILED, code, f"{step.name} exited with code {code}")

    async def _kill_group(
        self, proc: asyncio.subprocess.Process, already_exited: bool = False
    ) -> None:
        """SIGTERM the process group, give it `kill_grace_s`, then SIGKILL what is left."""
        pgid = proc.pid  # start_new_session made the child a group leader
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        if not already_exited:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), timeout=self.kill_grace_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        if proc.returncode is None:
            await proc.wait()
