"""What the harness watches while a step runs, in every sandbox kind.

- **Disk**: the step's writable folders (RunLayout's table) are measured twice a second; a
  step that writes more than `Limits.disk_gb`, or more than `MAX_ENTRIES` files, is killed.
  Sandboxes also cap single files (RLIMIT_FSIZE), which stops a fast writer between polls.
- **Timed outputs**: for each file matching `Step.timed_outputs`, the harness's own clock at
  the last poll where the file had changed (inode, size, mtime or ctime). Training cannot
  forge these: it can set mtime, but not when the harness sees the change. The clock is the
  step's budget clock: wall seconds, or CPU-seconds of its processes for a CPU-clocked step.
- **CPU time** (sandbox/cpu.py): the sandbox's meter is read at every poll and the total
  kept in `StepResult.cpu_s`; a step with `cpu_timeout_s` is killed once it used more. A
  CPU-clocked step whose CPU time cannot be read is stopped as an infrastructure error.
- **The workspace's git pointer**: the harness runs git in the workspace after a step, so a
  step that rewrote `.git` (to point git at hooks or a config of its own) is flagged and the
  pointer restored. Isolating sandboxes mount it read-only; this covers the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

from sandbox.base import RunLayout, RunStatus, Step, StepResult

POLL_S = 0.5
MAX_ENTRIES = 200_000  # files and folders a step may leave in its writable folders
# How long a CPU-clocked step may run with no reading from its meter (a container still
# starting) before the harness gives up on measuring it.
METER_GRACE_S = 30.0


def usage(dirs: list[Path], max_entries: int = MAX_ENTRIES) -> tuple[int, int]:
    """(bytes on disk, entries) under `dirs`; symlinks are not followed. Stops counting
    entries just past `max_entries`, so a million tiny files cannot stall the harness."""
    total, entries = 0, 0
    stack = [d for d in dirs if d.is_dir()]
    while stack and entries <= max_entries:
        path = stack.pop()
        try:
            with os.scandir(path) as it:
                for entry in it:
                    entries += 1
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    # Blocks, not size: a sparse file takes no disk (RLIMIT_FSIZE caps its size).
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
        except OSError:
            continue
    return total, entries


class OutputClock:
    """The harness's times for files of the output folder matching some globs, on a clock
    given as a function: wall seconds since the step started, or its CPU-seconds so far."""

    def __init__(self, root: Path, patterns: tuple[str, ...], now: Callable[[], float]) -> None:
        self.root = root
        self.patterns = patterns
        self.now = now
        self.times: dict[str, float] = {}
        self._seen: dict[str, tuple[int, int, int, int]] = {}

    def poll(self) -> None:
        changed: list[str] = []
        for pattern in self.patterns:
            for path in self.root.glob(pattern):
                try:
                    st = path.lstat()
                except OSError:
                    continue
                if not path.is_file() or path.is_symlink():
                    continue
                rel = path.relative_to(self.root).as_posix()
                sig = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                if self._seen.get(rel) != sig:
                    self._seen[rel] = sig
                    changed.append(rel)
        if changed:
            # Read after the scan: never earlier than the change itself.
            now = round(self.now(), 3)
            self.times.update(dict.fromkeys(changed, now))


def _pointer(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() and not path.is_symlink() else None
    except OSError:
        return None


def _restore_pointer(path: Path, content: bytes) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    path.write_bytes(content)


def _cpu_stop(
    step: Step, cpu_s: float | None, ran_s: float, running: bool = True
) -> tuple[RunStatus, str] | None:
    """Why a CPU-clocked step must stop now (or, when no longer `running`, why it counts as
    stopped at its limit: it passed it between two polls), or None."""
    limit = step.cpu_timeout_s
    if limit is None:
        return None
    if cpu_s is None:
        if ran_s < METER_GRACE_S:
            return None
        return RunStatus.INFRA_ERROR, (
            f"the harness could not measure {step.name}'s CPU time for {METER_GRACE_S:g}s, "
            "so it cannot enforce its CPU-time budget; stopped"
        )
    if cpu_s <= limit:
        return None
    return RunStatus.TIMEOUT, (
        f"{step.name} used over its {limit:g} CPU-s budget ({cpu_s:.1f} CPU-s of its "
        "processes, as the harness measured them)" + (" and was killed" if running else "")
    )


def _disk_stop(step: Step, dirs: list[Path]) -> tuple[RunStatus, str] | None:
    """Why a step that wrote too much must stop now, or None."""
    used, entries = usage(dirs)
    limit = step.limits.disk_bytes
    if limit is not None and used > limit:
        return RunStatus.KILLED, f"{step.name} wrote over its {step.limits.disk_gb:g} GB disk limit"
    if entries > MAX_ENTRIES:
        return RunStatus.KILLED, f"{step.name} created over {MAX_ENTRIES} files"
    return None


async def watched(
    run: Coroutine[Any, Any, StepResult],
    layout: RunLayout,
    step: Step,
    cpu: Callable[[], float | None] = lambda: None,
) -> StepResult:
    """Await the sandbox's `run` of `step`, enforcing the disk and CPU limits and keeping
    watch. `cpu` reads the sandbox's CPU meter of the step (Sandbox.cpu_seconds)."""
    pointer_path = layout.workspace / ".git"
    pointer = _pointer(pointer_path)
    start = time.monotonic()

    def now() -> float:
        if step.cpu_timeout_s is not None:
            return cpu() or 0.0
        return time.monotonic() - start

    clock = OutputClock(layout.output_dir, step.timed_outputs, now) if step.timed_outputs else None
    dirs = step.writable(layout)
    task = asyncio.ensure_future(run)
    stop: tuple[RunStatus, str] | None = None
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=POLL_S)
            if task.done():
                break
            if clock is not None:
                await asyncio.to_thread(clock.poll)
            cpu_s = await asyncio.to_thread(cpu)
            stop = _cpu_stop(step, cpu_s, time.monotonic() - start)
            if stop is None and step.limits.disk_bytes is not None:
                stop = await asyncio.to_thread(_disk_stop, step, dirs)
            if stop is not None:
                task.cancel()
                await asyncio.wait({task})
                break
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.wait({task})  # the sandbox kills the step before this returns
        raise
    if stop is not None:
        log = layout.log_dir
        result = StepResult(
            step.name,
            stop[0],
            None,
            time.monotonic() - start,
            log / f"{step.name}.stdout",
            log / f"{step.name}.stderr",
            stop[1],
        )
    else:
        result = task.result()
        if result.status is RunStatus.TIMEOUT and step.cpu_timeout_s is not None:
            result = replace(
                result,
                reason=f"{result.reason} (the wall-clock cap of a CPU-clocked step: it "
                "waited rather than computed, or the machine is overloaded)",
            )
    if clock is not None:
        await asyncio.to_thread(clock.poll)
        result = replace(result, output_times=dict(clock.times))
    if (cpu_s := await asyncio.to_thread(cpu)) is not None:
        result = replace(result, cpu_s=cpu_s)
        # Past the limit before it ended: as late as a wall-clock step still running at its
        # timeout, which the sandbox kills.
        late = _cpu_stop(step, cpu_s, 0.0, running=False)
        if stop is None and result.status is RunStatus.SUCCEEDED and late is not None:
            result = replace(result, status=late[0], reason=late[1])
    if pointer is not None and _pointer(pointer_path) != pointer:
        _restore_pointer(pointer_path, pointer)
        result = replace(
            result,
            status=RunStatus.FLAGGED,
            reason=f"{step.name} changed the workspace's .git pointer (restored): the harness "
            "runs git there, so this is treated as an escape attempt",
        )
    return result
