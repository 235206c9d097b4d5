"""What the harness watches while a step runs, in every sandbox kind.

- **Disk**: the step's writable folders (RunLayout's table) are measured twice a second; a
  step that writes more than `Limits.disk_gb`, or more than `MAX_ENTRIES` files, is killed.
  Sandboxes also cap single files (RLIMIT_FSIZE), which stops a fast writer between polls.
- **Timed outputs**: for each file matching `Step.timed_outputs`, the harness's own clock at
  the last poll where the file had changed (inode, size, mtime or ctime). Training cannot
  forge these: it can set mtime, but not when the harness sees the change.
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
from collections.abc import Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

from sandbox.base import RunLayout, RunStatus, Step, StepResult

POLL_S = 0.5
MAX_ENTRIES = 200_000  # files and folders a step may leave in its writable folders


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
    """The harness's times for files of the output folder matching some globs."""

    def __init__(self, root: Path, patterns: tuple[str, ...]) -> None:
        self.root = root
        self.patterns = patterns
        self.start = time.monotonic()
        self.times: dict[str, float] = {}
        self._seen: dict[str, tuple[int, int, int, int]] = {}

    def poll(self) -> None:
        now = time.monotonic() - self.start
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
                    self.times[rel] = round(now, 3)


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


async def watched(
    run: Coroutine[Any, Any, StepResult], layout: RunLayout, step: Step
) -> StepResult:
    """Await the sandbox's `run` of `step`, enforcing the disk limit and keeping watch."""
    pointer_path = layout.workspace / ".git"
    pointer = _pointer(pointer_path)
    clock = OutputClock(layout.output_dir, step.timed_outputs) if step.timed_outputs else None
    limit = step.limits.disk_bytes
    dirs = step.writable(layout)
    task = asyncio.ensure_future(run)
    start = time.monotonic()
    over: str | None = None
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=POLL_S)
            if task.done():
                break
            if clock is not None:
                await asyncio.to_thread(clock.poll)
            if limit is not None:
                used, entries = await asyncio.to_thread(usage, dirs)
                if used > limit:
                    over = f"{step.name} wrote over its {step.limits.disk_gb:g} GB disk limit"
                elif entries > MAX_ENTRIES:
                    over = f"{step.name} created over {MAX_ENTRIES} files"
                if over:
                    task.cancel()
                    await asyncio.wait({task})
                    break
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.wait({task})  # the sandbox kills the step before this returns
        raise
    if over is not None:
        log = layout.log_dir
        result = StepResult(
            step.name,
            RunStatus.KILLED,
            None,
            time.monotonic() - start,
            log / f"{step.name}.stdout",
            log / f"{step.name}.stderr",
            over,
        )
    else:
        result = task.result()
    if clock is not None:
        clock.poll()
        result = replace(result, output_times=dict(clock.times))
    if pointer is not None and _pointer(pointer_path) != pointer:
        _restore_pointer(pointer_path, pointer)
        result = replace(
            result,
            status=RunStatus.FLAGGED,
            reason=f"{step.name} changed the workspace's .git pointer (restored): the harness "
            "runs git there, so this is treated as an escape attempt",
        )
    return result
