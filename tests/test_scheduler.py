"""The slot scheduler: makespan, wide jobs without starvation, crashes, cancels, retries."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

import pytest

from runner.scheduler import Scheduler, Slot, machine_slots, parse_gpus
from sandbox import RunLayout, RunStatus, Step, get_sandbox


def ideal_makespan(durations: list[float], slots: int) -> float:
    """The optimal schedule's length, by trying every assignment (fine for 12 jobs)."""
    best = sum(durations)
    first, rest = durations[0], durations[1:]
    for assign in itertools.product(range(slots), repeat=len(rest)):
        loads = [0.0] * slots
        loads[0] = first  # symmetry: the first job goes to slot 0
        for d, s in zip(rest, assign, strict=True):
            loads[s] += d
        best = min(best, max(loads))
    return best


@pytest.mark.slow
async def test_twelve_mixed_jobs_on_three_slots_near_the_ideal_makespan(tmp_path) -> None:
    durations = [1.8, 0.6, 1.2, 1.2, 0.6, 1.8, 1.2, 0.6, 1.8, 0.6, 1.2, 1.2]
    sched = Scheduler([Slot(i) for i in range(3)])
    sandbox = get_sandbox("local")

    async def job(i: int, slots: tuple[Slot, ...]) -> RunStatus:
        d = tmp_path / str(i)
        (d / "ws").mkdir(parents=True)
        lay = RunLayout(d / "ws", d, d / "out", d / "eval", d / "logs")
        async with sandbox.session(lay):
            res = await sandbox.exec(Step("train", f"sleep {durations[i]}", 30))
        return res.status

    start = time.monotonic()
    jobs = [
        sched.submit(lambda s, i=i: job(i, s), name=f"j{i}", expected_s=durations[i])
        for i in range(12)
    ]
    statuses = await asyncio.gather(*jobs)
    makespan = time.monotonic() - start
    assert statuses == [RunStatus.SUCCEEDED] * 12
    ideal = ideal_makespan(durations, 3)
    assert makespan <= 1.10 * ideal, f"makespan {makespan:.2f}s vs ideal {ideal:.2f}s"
    assert sched.free == sched.slots and not sched.running
    assert sum(r.slot_seconds for r in sched.records) == pytest.approx(sum(durations), rel=0.1)


@dataclass
class Outcome:
    status: RunStatus


async def test_a_two_slot_job_waits_for_two_free_slots_and_is_not_starved() -> None:
    sched = Scheduler([Slot(i, gpu=i) for i in range(3)])
    seen: dict[str, tuple[float, tuple[int | None, ...]]] = {}

    def sleeper(name: str, seconds: float):
        async def fn(slots: tuple[Slot, ...]) -> str:
            seen[name] = (time.monotonic(), tuple(s.gpu for s in slots))
            await asyncio.sleep(seconds)
            return name

        return fn

    t0 = time.monotonic()
    # Three one-slot jobs fill the pool, then a wide job arrives, then a stream of narrow
    # ones that would keep one slot busy forever if they could always jump the queue.
    first = [
        sched.submit(sleeper(f"a{i}", 0.3 * (i + 1)), expected_s=0.3 * (i + 1)) for i in range(3)
    ]
    wide = sched.submit(sleeper("wide", 0.2), slots=2, expected_s=0.2)
    stream = [sched.submit(sleeper(f"s{i}", 0.5), expected_s=0.5) for i in range(6)]
    await asyncio.gather(*first, wide, *stream)
    started, gpus = seen["wide"]
    assert len(gpus) == 2 and len(set(gpus)) == 2
    # Two slots are free once a0 (0.3 s) and a1 (0.6 s) end: the wide job starts then.
    assert started - t0 < 0.6 + 0.15
    # Narrow jobs may backfill only if they end before the wide job can start.
    for i in range(6):
        assert seen[f"s{i}"][0] >= started - 0.05 or seen[f"s{i}"][0] + 0.5 <= started + 0.05


async def test_without_estimates_nothing_jumps_a_blocked_wide_job() -> None:
    sched = Scheduler([Slot(0), Slot(1)])
    order: list[str] = []

    def fn(name: str, seconds: float):
        async def run(_: tuple[Slot, ...]) -> None:
            order.append(name)
            await asyncio.sleep(seconds)

        return run

    a = sched.submit(fn("a", 0.2))
    wide = sched.submit(fn("wide", 0.05), slots=2)
    narrow = sched.submit(fn("narrow", 0.05))
    await asyncio.gather(a, wide, narrow)
    assert order == ["a", "wide", "narrow"]


async def test_priority_goes_first_then_fifo() -> None:
    sched = Scheduler([Slot(0)])
    order: list[str] = []

    def fn(name: str):
        async def run(_: tuple[Slot, ...]) -> None:
            order.append(name)
            await asyncio.sleep(0.01)

        return run

    jobs = [sched.submit(fn("first"))]  # starts at once
    jobs += [sched.submit(fn(n), priority=p) for n, p in [("low1", 0), ("high", 5), ("low2", 0)]]
    await asyncio.gather(*jobs)
    assert order == ["first", "high", "low1", "low2"]


async def test_a_crashed_job_frees_its_slot() -> None:
    sched = Scheduler([Slot(0)])

    async def crash(_: tuple[Slot, ...]) -> None:
        raise RuntimeError("harness bug")

    async def ok(_: tuple[Slot, ...]) -> str:
        return "ran"

    bad = sched.submit(crash)
    good = sched.submit(ok)
    with pytest.raises(RuntimeError, match="harness bug"):
        await bad
    assert await good == "ran"
    assert sched.records[0].status == "failed" and sched.free == sched.slots


async def test_cancelling_a_running_job_frees_its_slot_at_once(tmp_path) -> None:
    sched = Scheduler([Slot(0)])
    sandbox = get_sandbox("local", kill_grace_s=0.5)
    (tmp_path / "ws").mkdir()
    lay = RunLayout(tmp_path / "ws", tmp_path, tmp_path / "o", tmp_path / "e", tmp_path / "l")

    async def long(_: tuple[Slot, ...]) -> None:
        async with sandbox.session(lay):
            await sandbox.exec(Step("train", "sleep 60", 120))

    started = asyncio.Event()

    async def next_job(_: tuple[Slot, ...]) -> float:
        started.set()
        return time.monotonic()

    running = sched.submit(long)
    queued_cancel = sched.submit(next_job)
    waiting = sched.submit(next_job)
    await asyncio.sleep(0.3)
    sched.cancel(queued_cancel)  # a queued job just leaves the queue
    t0 = time.monotonic()
    sched.cancel(running)
    began = await waiting
    assert began - t0 < 1.0
    with pytest.raises(asyncio.CancelledError):
        await running
    assert queued_cancel.future.cancelled()
    assert [r.status for r in sched.records] == ["cancelled", "cancelled", "done"]


async def test_only_infra_errors_are_retried() -> None:
    sched = Scheduler([Slot(0)])
    calls = {"infra": 0, "failed": 0}

    def fn(kind: str, status: RunStatus):
        async def run(_: tuple[Slot, ...]) -> Outcome:
            calls[kind] += 1
            return Outcome(status)

        return run

    infra = await sched.run(fn("infra", RunStatus.INFRA_ERROR), retries=2)
    failed = await sched.run(fn("failed", RunStatus.FAILED), retries=2)
    assert infra.status is RunStatus.INFRA_ERROR and calls["infra"] == 3
    assert failed.status is RunStatus.FAILED and calls["failed"] == 1
    assert sched.records[0].attempts == 3


async def test_gpu_seconds_are_accounted() -> None:
    sched = Scheduler([Slot(0, gpu=4), Slot(1, gpu=5)])

    async def fn(slots: tuple[Slot, ...]) -> tuple[int | None, ...]:
        await asyncio.sleep(0.2)
        return tuple(s.gpu for s in slots)

    assert await sched.run(fn, slots=2) == (4, 5)
    assert sched.records[0].gpu_seconds == pytest.approx(0.4, abs=0.1)


def test_slots_from_the_machine_and_from_gpus_flag() -> None:
    assert machine_slots(0, cpu_slots=3) == [Slot(0), Slot(1), Slot(2)]
    assert machine_slots(1, gpus="2,5") == [Slot(0, 2), Slot(1, 5)]
    for bad in ("a,b", "1,1", "-1"):
        with pytest.raises(ValueError, match="--gpus"):
            parse_gpus(bad)
    with pytest.raises(ValueError, match="needs 2 slots"):
        asyncio.run(_submit_too_wide())


async def _submit_too_wide() -> None:
    async def fn(_: tuple[Slot, ...]) -> None:
        return None

    Scheduler([Slot(0)]).submit(fn, slots=2)


def test_ideal_makespan_helper() -> None:
    assert ideal_makespan([3, 3, 2, 2, 2], 2) == 6
    assert ideal_makespan([1, 1, 1], 3) == 1
