"""Where runs execute: this machine's slots (`local`), or a Ray cluster (`ray`).

Both take a `RunJob` (a `RunSpec` and where its files are) and return the `RunOutcome`, with
the artifacts in the job's folder on this machine, so the store on the driver records every
run the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import KW_ONLY, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from environments import Environment
from plugins import Registry
from runner.run import RunOutcome, run_candidate
from runner.scheduler import Scheduler, Slot, machine_slots
from sandbox.registry import get_sandbox


@dataclass
class RunSpec:
    """What a run is, wherever it executes: the environment at a scale, in a sandbox, with an
    optional training time limit (None: the scale's), and its seed (by name)."""

    env: Environment
    scale: str
    sandbox: str = "local"  # sandbox spec, e.g. "docker:network=none"
    timeout_s: float | None = None
    _: KW_ONLY
    seed: int = 0
    split: str = "screen"  # the evaluator's items: screen, or confirm (runner/run.py SPLITS)

    @property
    def gpus_needed(self) -> int:
        return self.env.scale(self.scale).gpus

    @property
    def expected_s(self) -> float:
        """Upper estimate of the run's length: training plus evaluation timeouts. (A
        CPU-clocked scale's timeout, in CPU-seconds, is above its wall time on an idle
        machine, where training keeps more than one core busy.)"""
        scale = self.env.scale(self.scale)
        return (self.timeout_s or scale.timeout) + (
            scale.evaluate_timeout or self.env.manifest.evaluate.timeout
        )

    def portable(self) -> dict[str, Any]:
        """The fields a worker gets as data; the environment travels as its folder."""
        return {f.name: getattr(self, f.name) for f in fields(RunSpec) if f.name != "env"}


@dataclass
class RunJob:
    """One run of one candidate, as the driver sees it."""

    spec: RunSpec
    workspace: Path  # the candidate's worktree on the driver
    artifacts: Path  # where logs, output and result end up on the driver
    expected_env: dict[str, str] | None = None  # pinned hashes of the protected files
    eval_secret: str | None = None  # the run directory's, for the evaluator alone
    name: str = ""
    priority: int = 0
    on_start: Callable[[], None] = field(default=lambda: None)


def run_spec(
    spec: RunSpec,
    workspace: Path,
    artifacts: Path,
    *,
    gpus: tuple[int, ...],
    expected_env: dict[str, str] | None,
    eval_secret: str | None,
) -> Coroutine[Any, Any, RunOutcome]:
    """`run_candidate` for `spec`: the one place a spec's fields become its arguments."""
    return run_candidate(
        spec.env,
        spec.scale,
        workspace,
        artifacts,
        get_sandbox(spec.sandbox),
        seed=spec.seed,
        gpus=gpus,
        timeout_s=spec.timeout_s,
        expected_env=expected_env,
        eval_secret=eval_secret,
        split=spec.split,
    )


class Backend(Protocol):
    """Where runs execute. `scheduler`: this machine's slots, None where another system (a
    Ray cluster) places the runs; `capacity`: how many runs it takes at once."""

    @property
    def scheduler(self) -> Scheduler | None: ...

    @property
    def capacity(self) -> int: ...

    async def run(self, job: RunJob) -> RunOutcome: ...

    def close(self) -> None: ...


class LocalBackend:
    """Runs on this machine: a `Scheduler` over its GPUs (or CPU slots) and a sandbox per run."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    @property
    def capacity(self) -> int:
        return self.scheduler.capacity

    @classmethod
    def for_scale(
        cls, env: Environment, scale: str, gpus: str | None = None, cpu_slots: int = 1
    ) -> LocalBackend:
        need = env.scale(scale).gpus
        slots = machine_slots(need, gpus, cpu_slots)
        if len(slots) < need:
            have = f"{len(slots)} GPU" + ("s" if len(slots) != 1 else "")
            raise ValueError(
                f"scale {scale!r} of {env.name} needs {need} GPUs and {have} are available: "
                "pass --gpus with enough device ids, or use a smaller scale"
            )
        return cls(Scheduler(slots))

    async def run(self, job: RunJob) -> RunOutcome:
        async def attempt(slots: tuple[Slot, ...]) -> RunOutcome:
            job.on_start()
            return await run_spec(
                job.spec,
                job.workspace,
                job.artifacts,
                gpus=tuple(s.gpu for s in slots if s.gpu is not None),
                expected_env=job.expected_env,
                eval_secret=job.eval_secret,
            )

        handle = self.scheduler.submit(
            attempt,
            slots=max(1, job.spec.gpus_needed),
            priority=job.priority,
            name=job.name,
            expected_s=job.spec.expected_s,
        )
        try:
            outcome = await handle
        except BaseException:
            self.scheduler.cancel(handle)
            raise
        rec = handle.record
        outcome.timings["queued"] = rec.waited_s or 0.0
        outcome.timings["gpu_seconds"] = rec.gpu_seconds
        return outcome

    def close(self) -> None:
        return None


class BackendFactory(Protocol):
    """Builds the backend `--backend NAME` names; it is handed every option and takes the
    ones it uses (a third party's may end its parameters with `**_: Any`)."""

    def __call__(
        self,
        env: Environment,
        scale: str,
        *,
        gpus: str | None,
        slots: int,
        ray_address: str | None,
        ray_shared: bool,
    ) -> Backend: ...


# Third parties add backends under the entry-point group "executor.backends".
BACKENDS: Registry[BackendFactory] = Registry("backend", "executor.backends")


@BACKENDS.register("local")
def _local_backend(
    env: Environment, scale: str, *, gpus: str | None, slots: int, **_: Any
) -> Backend:
    return LocalBackend.for_scale(env, scale, gpus, slots)


@BACKENDS.register("ray")
def _ray_backend(
    env: Environment, scale: str, *, ray_address: str | None, ray_shared: bool, **_: Any
) -> Backend:
    from runner.ray_backend import RayBackend  # Ray is optional: imported only when chosen

    return RayBackend(ray_address, shared=ray_shared)


def make_backend(
    kind: str,
    env: Environment,
    scale: str,
    *,
    gpus: str | None = None,
    slots: int = 1,
    ray_address: str | None = None,
    ray_shared: bool = False,
) -> Backend:
    """The backend named by `--backend`; ValueError (PluginError) with the known names on
    bad input."""
    return BACKENDS.get(kind)(
        env, scale, gpus=gpus, slots=slots, ray_address=ray_address, ray_shared=ray_shared
    )
