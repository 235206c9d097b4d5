"""A slot scheduler: every GPU (or CPU slot at tiny scale) busy while work is waiting.

Jobs ask for k slots. The queue is ordered by priority, then arrival (FIFO). A job starts
the moment enough slots are free — `_dispatch` runs on every submit and every release, and
nothing polls. A job that needs more slots than are free blocks the queue behind it, except
that later jobs may *backfill* free slots when their expected duration shows they end before
the blocked job could start anyway (EASY backfilling): wide jobs never starve, and short
jobs do not idle slots that the wide job is waiting on.

Only `infra_error` is retried (the sandbox broke, not the idea); a crash or a cancel frees
the job's slots at once. Each job's slot-seconds (GPU-seconds on GPU slots) are recorded.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sandbox.base import RunStatus

T = TypeVar("T")


@dataclass(frozen=True)
class Slot:
    index: int
    gpu: int | None = None  # the device id; None for a CPU slot


def detect_gpus() -> list[int]:
    """GPU ids of this machine (NVML, else nvidia-smi); [] without a driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return list(range(pynvml.nvmlDeviceGetCount()))
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # not installed, or no driver: ask nvidia-smi
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [int(x) for x in out.split() if x.strip().isdigit()]


def parse_gpus(text: str) -> list[int]:
    """ "0,1,3" -> [0, 1, 3]; ValueError with a usable message otherwise."""
    try:
        ids = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--gpus takes device ids like 0,1,2, not {text!r}") from None
    if not ids or len(set(ids)) != len(ids) or min(ids) < 0:
        raise ValueError(f"--gpus takes distinct device ids like 0,1,2, not {text!r}")
    return ids


def machine_slots(gpus_needed: int, gpus: str | None = None, cpu_slots: int = 1) -> list[Slot]:
    """The slots for a scale: one per GPU (from `gpus` or the machine) when it needs GPUs,
    else `cpu_slots` CPU slots."""
    if gpus_needed == 0:
        return [Slot(i) for i in range(cpu_slots)]
    ids = parse_gpus(gpus) if gpus else detect_gpus()
    return [Slot(i, gpu) for i, gpu in enumerate(ids)]


@dataclass
class JobRecord:
    """What the scheduler knows of a job: its wait, its run, its cost in slot-seconds."""

    id: int
    name: str
    slots_needed: int
    priority: int
    expected_s: float | None
    submitted: float
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    slot_seconds: float = 0.0
    gpu_seconds: float = 0.0
    status: str = "queued"  # queued | running | done | failed | cancelled
    slot_indices: tuple[int, ...] = ()  # the slots of its latest attempt

    @property
    def waited_s(self) -> float | None:
        return None if self.started is None else self.started - self.submitted


@dataclass(eq=False)
class Job(Generic[T]):
    record: JobRecord
    fn: Callable[[tuple[Slot, ...]], Awaitable[T]]
    retries: int
    seq: int
    future: asyncio.Future[T]
    task: asyncio.Task[None] | None = None
    slots: tuple[Slot, ...] = ()
    run_started: float = 0.0

    def __await__(self) -> Any:
        return self.future.__await__()


@dataclass(eq=False)
class Scheduler:
    """Run jobs on a fixed pool of slots. Use from one event loop."""

    slots: list[Slot]
    free: list[Slot] = field(init=False)
    waiting: list[Job[Any]] = field(default_factory=list, init=False)
    running: set[Job[Any]] = field(default_factory=set, init=False)
    records: list[JobRecord] = field(default_factory=list, init=False)
    _seq: Any = field(default_factory=itertools.count, init=False)

    def __post_init__(self) -> None:
        if not self.slots:
            raise ValueError("a scheduler needs at least one slot")
        self.free = list(self.slots)

    @property
    def capacity(self) -> int:
        return len(self.slots)

    def submit(
        self,
        fn: Callable[[tuple[Slot, ...]], Awaitable[T]],
        *,
        slots: int = 1,
        priority: int = 0,
        name: str = "",
        retries: int = 2,
        expected_s: float | None = None,
    ) -> Job[T]:
        """Queue `fn`; it is called with its slots once they are free. Await the returned job.

        `retries`: extra attempts when `fn` returns something whose `.status` is infra_error.
        `expected_s`: an estimate of the run time (a scale's timeout), which lets the job
        backfill past a blocked wide job.
        """
        if slots > len(self.slots):
            raise ValueError(
                f"job {name or '?'} needs {slots} slots; this scheduler has {len(self.slots)}"
            )
        seq = next(self._seq)
        record = JobRecord(seq, name or f"job-{seq}", slots, priority, expected_s, time.monotonic())
        self.records.append(record)
        job: Job[T] = Job(record, fn, retries, seq, asyncio.get_running_loop().create_future())
        self.waiting.append(job)
        self.waiting.sort(key=lambda j: (-j.record.priority, j.seq))
        self._dispatch()
        return job

    async def run(self, fn: Callable[[tuple[Slot, ...]], Awaitable[T]], **kw: Any) -> T:
        """Submit and wait; cancelling the caller cancels the job."""
        job = self.submit(fn, **kw)
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:
            self.cancel(job)
            raise

    def cancel(self, job: Job[Any]) -> None:
        """Stop `job`: a queued one leaves the queue, a running one is cancelled (its sandbox
        kills the step) and its slots free as soon as that is done."""
        if job in self.waiting:
            self.waiting.remove(job)
            job.record.status = "cancelled"
            job.future.cancel()
            self._dispatch()
        elif job.task is not None:
            job.task.cancel()

    # -- internals --------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start every job that may start now (see the module docstring for the policy)."""
        now = time.monotonic()
        blocked: Job[Any] | None = None
        shadow = math.inf  # when the blocked job is sure to have its slots
        spare = 0  # slots free at the shadow time beyond what the blocked job needs
        for job in list(self.waiting):
            need = job.record.slots_needed
            if need > len(self.free):
                if blocked is None:
                    blocked = job
                    shadow, spare = self._reservation(job, now)
                continue
            if blocked is not None:
                expected = job.record.expected_s
                ends_in_time = expected is not None and now + expected <= shadow
                if not ends_in_time and need > spare:
                    continue
                if not ends_in_time:
                    spare -= need
            self._start(job)

    def _reservation(self, job: Job[Any], now: float) -> tuple[float, int]:
        """When `job` will have its slots if running jobs end as expected, and how many
        slots beyond its need will be free then."""
        free = len(self.free)
        ends = sorted(
            (
                j.run_started + j.record.expected_s if j.record.expected_s else math.inf,
                j.record.slots_needed,
            )
            for j in self.running
        )
        for end, n in ends:
            free += n
            if free >= job.record.slots_needed:
                return max(end, now), free - job.record.slots_needed
        return math.inf, 0

    def _start(self, job: Job[Any]) -> None:
        self.waiting.remove(job)
        job.slots = tuple(self.free[: job.record.slots_needed])
        del self.free[: job.record.slots_needed]
        job.record.slot_indices = tuple(s.index for s in job.slots)
        self.running.add(job)
        job.run_started = time.monotonic()
        if job.record.started is None:
            job.record.started = job.run_started
        job.record.status = "running"
        job.record.attempts += 1
        job.task = asyncio.get_running_loop().create_task(self._run(job), name=job.record.name)

    async def _run(self, job: Job[Any]) -> None:
        retry = False
        # The waiter may have gone (its future cancelled): then only the record is updated.
        fut = job.future
        try:
            result = await job.fn(job.slots)
        except asyncio.CancelledError:
            job.record.status = "cancelled"
            fut.cancel()
        except BaseException as e:  # a crashed job frees its slots like any other
            job.record.status = "failed"
            if not fut.done():
                fut.set_exception(e)
        else:
            infra = getattr(result, "status", None) == RunStatus.INFRA_ERROR
            if infra and job.record.attempts <= job.retries and not fut.done():
                retry = True
            else:
                job.record.status = "done"
                if not fut.done():
                    fut.set_result(result)
        finally:
            self._release(job, requeue=retry)

    def _release(self, job: Job[Any], requeue: bool) -> None:
        end = time.monotonic()
        spent = end - job.run_started
        job.record.slot_seconds += spent * len(job.slots)
        job.record.gpu_seconds += spent * sum(1 for s in job.slots if s.gpu is not None)
        job.record.finished = end
        self.running.discard(job)
        # Back in pool order, so slot (and GPU) assignment stays predictable.
        self.free = sorted(self.free + list(job.slots), key=lambda s: s.index)
        job.slots = ()
        if requeue:
            job.record.status = "queued"
            self.waiting.append(job)
            self.waiting.sort(key=lambda j: (-j.record.priority, j.seq))
        self._dispatch()

    def utilization(self) -> float:
        """Busy slot-seconds over available slot-seconds, from the first start to the last end."""
        done = [r for r in self.records if r.started is not None and r.finished is not None]
        if not done:
            return 0.0
        span = max(r.finished for r in done if r.finished) - min(
            r.started for r in done if r.started
        )
        busy = sum(r.slot_seconds for r in done)
        return busy / (span * len(self.slots)) if span > 0 else 0.0
