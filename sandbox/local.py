"""The local sandbox: each step is a subprocess on this machine, isolated by bubblewrap.

With `bwrap` usable (sandbox/bwrap.py: root, or unprivileged user namespaces), a step sees
a read-only system, writes only what RunLayout's table allows, cannot see eval-only data,
has a private /tmp and PID namespace, no network unless `network=true`, and dies with the
harness. Where bwrap cannot run, the step runs as you on your files (`isolation=none`), with
a one-line warning (ISOLATION_WARNING) and `executor doctor` saying so. Either way:
- the step and everything it started die on timeout, cancel, or when the step ends
  (a cgroup where this process may create one, else the process group);
- memory and process limits (cgroup; else RLIMIT_AS/RLIMIT_NPROC, which root ignores), and a
  file-size limit (RLIMIT_FSIZE) under the disk limit that sandbox/watch.py enforces;
- output capped per stream, with a marker where the cap cut in;
- the step's CPU time measured (its cgroup, else its process tree in /proc; sandbox/cpu.py);
- a scratch HOME, no API keys or tokens in the environment, and `python` meaning the
  interpreter running the harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox import bwrap
from sandbox.base import Limits, RunLayout, RunStatus, Sandbox, SandboxUnavailable, Step, StepResult
from sandbox.cgroups import StepCgroup, sweep_orphans
from sandbox.cpu import CgroupMeter, CpuMeter, ProcTreeMeter, proc_meter_problem
from sandbox.output import CappedLog
from sandbox.registry import register

ISOLATION_WARNING = (
    "the local sandbox cannot isolate here ({why}): candidate code runs as you with your "
    "files, eval-only data and network; use --sandbox docker, or install bubblewrap"
)
ISOLATIONS = ("auto", "bwrap", "none")

# Secrets an idea's code must never see (it could print them into a log).
_SECRET = re.compile(
    r"(API_KEY|_TOKEN|SECRET|PASSWORD|CREDENTIAL|ACCESS_KEY|PRIVATE_KEY|^AWS_|^GH_)",
    re.IGNORECASE,
)

_swept = False  # orphaned step groups are swept once per process

# Signals that mean "stopped by a limit" (OOM killer, CPU/file-size rlimits), not a code bug.
_LIMIT_SIGNALS = {signal.SIGKILL, signal.SIGXCPU, signal.SIGXFSZ}

# Variables every step gets unless the harness's own environment sets them. OpenMP threads
# that spin while they wait burn CPU without doing work: under contention that doubled the
# CPU time of a tiny training step (and Docker's seccomp filter slows spinning 4 to 13 fold),
# so a CPU-clocked budget would buy less training on a busy machine. Passive waits do not.
STEP_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def strip_secrets(base: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in base.items() if not _SECRET.search(k)}


def step_environment(
    layout: RunLayout, step: Step, base: dict[str, str], paths: RunLayout | None = None
) -> dict[str, str]:
    """The variables every step sees (docs/architecture.md, Run and result), over `base`
    with secrets removed.

    `paths` is the layout as the step's processes see it (container paths under Docker).
    """
    seen = paths or layout
    env = {**STEP_DEFAULTS, **strip_secrets(base)}
    env.update(
        EXECUTOR_WORKSPACE=str(seen.workspace),
        EXECUTOR_ENV_DIR=str(seen.env_dir),
        EXECUTOR_OUTPUT_DIR=str(seen.output_dir),
        EXECUTOR_SEED=str(step.seed),
        EXECUTOR_STEP=step.name,
        CUDA_VISIBLE_DEVICES=",".join(str(g) for g in step.gpus),
        PYTHONDONTWRITEBYTECODE="1",  # keep candidate workspaces free of __pycache__
        PYTHONUNBUFFERED="1",  # logs arrive while the step runs
    )
    if seen.export_dir is not None and (step.writes_export_dir or step.evaluating):
        env["EXECUTOR_EXPORT_DIR"] = str(seen.export_dir)
    env.update(step.extra_env)
    if step.sees_result_dir:
        env["EXECUTOR_RESULT_PATH"] = str(seen.result_dir / "result.json")
    return env


def exit_status(step: str, code: int) -> tuple[RunStatus, str | None]:
    """Status and reason for an exit code (a signal shows as -N, or 128+N through a shell)."""
    if code == 0:
        return RunStatus.SUCCEEDED, None
    sig_no = -code if code < 0 else code - 128 if code > 128 else None
    if sig_no in _LIMIT_SIGNALS:
        return RunStatus.KILLED, f"{step} was killed by {signal.Signals(sig_no).name}"
    if code < 0:
        return RunStatus.FAILED, f"{step} crashed with {signal.Signals(-code).name}"
    return RunStatus.FAILED, f"{step} exited with code {code}"


def isolation_problem() -> str | None:
    """Why `--sandbox local` runs unisolated here, or None when bubblewrap isolates it."""
    return bwrap.problem()


def _rlimits(limits: Limits, gpus: bool, cgroup: bool) -> Callable[[], None]:
    """What the child sets before exec: no core dumps, a file-size cap, and the limits no
    cgroup enforces."""
    nproc = None
    if limits.pids is not None and os.getuid() != 0 and not cgroup:
        # RLIMIT_NPROC counts all of this user's processes, so it is a margin above today's.
        mine = sum(1 for p in Path("/proc").iterdir() if p.name.isdigit() and _owned(p))
        nproc = mine + limits.pids

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if limits.disk_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.disk_bytes, limits.disk_bytes))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        # CUDA reserves far more address space than it uses: no AS limit for GPU steps.
        if limits.memory_bytes is not None and not gpus and not cgroup:
            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))

    return apply


def _model_caches() -> tuple[str, ...]:
    """Hugging Face's cache: bound read-only into isolated steps, since runs share it and the
    evaluator loads tokenizers from it (a writable cache could be poisoned for later runs)."""
    real_home = Path(os.environ.get("HOME", str(Path.home())))
    return (os.environ.get("HF_HOME") or str(real_home / ".cache" / "huggingface"),)


def _owned(proc_dir: Path) -> bool:
    try:
        return proc_dir.stat().st_uid == os.getuid()
    except OSError:
        return False


async def _pump(fd: int, log: CappedLog) -> None:
    """Copy a pipe into a log until end of file; closes the pipe."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    try:
        while chunk := await reader.read(1 << 16):
            log.write(chunk)
    finally:
        transport.close()


@register("local")
class LocalSandbox(Sandbox):
    """Options: `isolation` (auto: bubblewrap where it runs, else none with a warning;
    bwrap: required; none: run as you), `network` (default: off when isolated, on when not;
    false without bwrap needs root and `unshare`), `tmp_gb` (size of the private /tmp and
    /dev/shm), `cgroups` (false: rlimits and the process group only), `kill_grace_s`."""

    def __init__(
        self,
        isolation: str = "auto",
        network: bool | None = None,
        tmp_gb: float = 2.0,
        cgroups: bool = True,
        kill_grace_s: float = 5.0,
    ) -> None:
        super().__init__()
        if isolation not in ISOLATIONS:
            raise SandboxUnavailable(
                f"local:isolation={isolation!r} is not one of {', '.join(ISOLATIONS)}"
            )
        why = isolation_problem() if isolation != "none" else "isolation=none"
        if isolation == "bwrap" and why:
            raise SandboxUnavailable(f"local:isolation=bwrap: {why}")
        self.isolated = why is None
        self.unisolated_reason = why
        self.fallback_reason = why if isolation == "auto" else None
        if network is None:
            network = not self.isolated
        if (
            not network
            and not self.isolated
            and (os.geteuid() != 0 or shutil.which("unshare") is None)
        ):
            raise SandboxUnavailable(
                "local:network=false without bubblewrap needs root and `unshare` (util-linux); "
                "install bubblewrap, or use --sandbox docker, whose default is no network"
            )
        self.network = network
        self.tmp_bytes = int(tmp_gb * 1024**3)
        self.kill_grace_s = kill_grace_s
        self.use_cgroups = cgroups
        global _swept
        if cgroups and not _swept:
            _swept = True
            with contextlib.suppress(OSError):
                sweep_orphans()
        self.home: Path | None = None

    async def prepare(self, layout: RunLayout) -> None:
        await super().prepare(layout)
        self.home = Path(tempfile.mkdtemp(prefix="executor-home-"))

    async def cleanup(self) -> None:
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None
        await super().cleanup()

    def _environment(self, layout: RunLayout, step: Step) -> dict[str, str]:
        base = dict(os.environ)
        # The harness's interpreter first on PATH: `python train.py` uses this venv.
        base["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
        # Model caches stay where they are (a scratch HOME would re-download every run).
        base.setdefault("HF_HOME", _model_caches()[0])
        # Isolated, HOME is the private /tmp (the host's scratch folder is not mounted).
        base["HOME"] = "/tmp" if self.isolated else str(self.home or layout.output_dir)
        return step_environment(layout, step, base)

    async def _exec(self, layout: RunLayout, step: Step) -> StepResult:
        env = self._environment(layout, step)
        out_path = layout.log_dir / f"{step.name}.stdout"
        err_path = layout.log_dir / f"{step.name}.stderr"
        limits = step.limits
        group = StepCgroup.create(limits.memory_bytes, limits.pids) if self.use_cgroups else None
        rlimits = _rlimits(limits, bool(step.gpus), cgroup=group is not None)

        def preexec() -> None:
            if group is not None:
                group.join()
            rlimits()

        start = time.monotonic()
        peak: int | None = None
        meter: CpuMeter | None = None

        def result(status: RunStatus, code: int | None, reason: str | None) -> StepResult:
            return StepResult(
                step.name,
                status,
                code,
                time.monotonic() - start,
                out_path,
                err_path,
                reason,
                peak_memory_bytes=peak,
            )

        try:
            with (
                CappedLog(out_path, limits.output_bytes) as out,
                CappedLog(err_path, limits.output_bytes) as err,
            ):
                # Our own pipes: asyncio's would make proc.wait() also wait for every
                # process that inherited them (a background child) to close them.
                out_r, out_w = os.pipe()
                err_r, err_w = os.pipe()
                try:
                    proc = await asyncio.create_subprocess_exec(
                        *self._argv(layout, step),
                        cwd=layout.workspace,
                        env=env,
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=out_w,
                        stderr=err_w,
                        start_new_session=True,
                        preexec_fn=preexec,
                    )
                except (OSError, subprocess.SubprocessError) as e:
                    os.close(out_r)
                    os.close(err_r)
                    return result(RunStatus.INFRA_ERROR, None, f"could not start {step.name}: {e}")
                finally:
                    os.close(out_w)  # the child holds its copies
                    os.close(err_w)
                meter = ProcTreeMeter(proc.pid) if group is None else CgroupMeter(group, proc.pid)
                self.cpu_meter = meter
                pumps = asyncio.gather(_pump(out_r, out), _pump(err_r, err))
                # Cancelled pumps (Ctrl-C, a stray pipe holder) must not log "never retrieved".
                pumps.add_done_callback(lambda f: f.cancelled() or f.exception())
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                    # cancel (Ctrl-C) that lands as the wait completes.
                    async with asyncio.timeout(step.timeout_s):
                        code = await proc.wait()
                except TimeoutError:
                    await self._kill(proc, group)
                    await self._drain(pumps)
                    return result(
                        RunStatus.TIMEOUT,
                        proc.returncode,
                        f"{step.name} exceeded its {step.timeout_s:g}s limit and was killed",
                    )
                except asyncio.CancelledError:
                    await asyncio.shield(self._kill(proc, group))
                    pumps.cancel()
                    raise
                # The step's leader exited; children it left behind must not outlive it.
                await self._kill(proc, group, already_exited=True)
                await self._drain(pumps)
            if group is not None:
                peak = group.peak_memory()
            status, reason = exit_status(step.name, code)
            if status is RunStatus.KILLED and group is not None and group.oom_killed():
                reason = f"{step.name} exceeded its {limits.memory_gb:g} GB memory limit"
            if out.truncated or err.truncated:
                capped = f"output capped at {limits.output_bytes} bytes per stream"
                reason = f"{reason}; {capped}" if reason else None
            return result(status, code, reason)
        finally:
            if group is not None:
                group.kill_all()
            if meter is not None:
                meter.freeze()  # the group's total, before the group goes
            if group is not None:
                group.remove()

    def cpu_meter_problem(self) -> str | None:
        return proc_meter_problem()  # a cgroup, where there is one, is read first

    @property
    def warning(self) -> str | None:
        """One line naming what is not isolated, or None when bubblewrap isolates."""
        if self.isolated:
            return None
        return ISOLATION_WARNING.format(why=self.unisolated_reason)

    def _argv(self, layout: RunLayout, step: Step) -> list[str]:
        if self.isolated:
            return bwrap.argv(
                layout,
                step,
                network=self.network,
                tmp_bytes=self.tmp_bytes,
                read_only=_model_caches(),
            )
        shell = ["/bin/sh", "-c", step.command]
        return shell if self.network else ["unshare", "--net", "--", *shell]

    async def _drain(self, pumps: asyncio.Future[Any]) -> None:
        """Wait for the log pumps to reach end of file (a stray holder of the pipe is dead)."""
        try:
            async with asyncio.timeout(5):
                await pumps
        except TimeoutError:
            pumps.cancel()

    async def _kill(
        self,
        proc: asyncio.subprocess.Process,
        group: StepCgroup | None,
        already_exited: bool = False,
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
        if group is not None:
            # Whatever left the process group (setsid, double fork) is still in the cgroup.
            await asyncio.to_thread(group.kill_all)
        if proc.returncode is None:
            await proc.wait()
