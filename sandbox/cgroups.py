"""A Linux control group per local step: memory and process limits, CPU accounting, and a
kill that misses nobody.

A process group can be escaped (`setsid`), and RLIMIT_NPROC does not apply to root; a cgroup
holds every descendant and caps them together. It also counts the CPU time of all of them,
those that exited included: the meter of a CPU-clocked step (sandbox/cpu.py). Works with
cgroup v1 (one folder per controller) and v2 (one unified folder) where this process may
create groups (root, or a delegated subtree). Where it cannot, `StepCgroup.create` returns
None and the local sandbox falls back to rlimits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "executor"  # every step's group lives under this one


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _read_int(path: Path, key: str | None = None) -> int | None:
    """An integer file, or the value of `key` in a "key value" file."""
    try:
        text = path.read_text()
    except OSError:
        return None
    if key is None:
        text = text.strip()
        return int(text) if text.isdigit() else None
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if k == key and v.strip().isdigit():
            return int(v)
    return None


class StepCgroup:
    """The group of one step: join it from the child, read its peak memory and CPU time, kill
    it, remove it."""

    def __init__(self, dirs: dict[str, Path], v2: bool) -> None:
        self.dirs = dirs  # controller -> folder ("unified" -> folder on v2)
        self.v2 = v2

    @classmethod
    def create(cls, memory_bytes: int | None, pids: int | None) -> StepCgroup | None:
        """A new group with these limits, or None where cgroups cannot be used here."""
        # The owner's pid in the name lets a later process sweep what a killed one left.
        name = f"step-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            if (ROOT / "cgroup.controllers").is_file():
                return cls._create_v2(name, memory_bytes, pids)
            return cls._create_v1(name, memory_bytes, pids)
        except OSError:
            return None

    @classmethod
    def _create_v1(cls, name: str, memory_bytes: int | None, pids: int | None) -> StepCgroup:
        dirs: dict[str, Path] = {}
        group = cls(dirs, v2=False)
        try:
            for ctl in ("memory", "pids"):
                d = ROOT / ctl / PARENT / name
                d.mkdir(parents=True)
                dirs[ctl] = d
            if memory_bytes is not None:
                _write(dirs["memory"] / "memory.limit_in_bytes", str(memory_bytes))
                swap = dirs["memory"] / "memory.memsw.limit_in_bytes"
                if swap.exists():  # no escaping the limit into swap
                    _write(swap, str(memory_bytes))
            if pids is not None:
                _write(dirs["pids"] / "pids.max", str(pids))
        except OSError:
            group.remove()
            raise
        # CPU accounting is optional: without it the step's CPU time is read from /proc.
        with contextlib.suppress(OSError):
            d = ROOT / "cpuacct" / PARENT / name
            d.mkdir(parents=True)
            dirs["cpuacct"] = d
        return group

    @classmethod
    def _create_v2(cls, name: str, memory_bytes: int | None, pids: int | None) -> StepCgroup:
        parent = ROOT / PARENT
        parent.mkdir(exist_ok=True)
        # Controllers must be enabled on the way down; the parent holds no processes itself.
        _write(parent / "cgroup.subtree_control", "+memory +pids")
        d = parent / name
        d.mkdir()
        group = cls({"unified": d}, v2=True)
        try:
            if memory_bytes is not None:
                _write(d / "memory.max", str(memory_bytes))
                with contextlib.suppress(OSError):
                    _write(d / "memory.swap.max", "0")
            if pids is not None:
                _write(d / "pids.max", str(pids))
        except OSError:
            group.remove()
            raise
        return group

    def join(self) -> None:
        """Move the calling process in. Runs in the child between fork and exec."""
        pid = str(os.getpid())
        for d in self.dirs.values():
            _write(d / "cgroup.procs", pid)

    def pids(self) -> list[int]:
        seen: set[int] = set()
        for d in self.dirs.values():
            with contextlib.suppress(OSError):
                seen.update(int(p) for p in (d / "cgroup.procs").read_text().split())
        return sorted(seen)

    def kill_all(self, timeout_s: float = 5.0) -> None:
        """SIGKILL every process in the group until it is empty (a fork bomb included)."""
        if self.v2 and (self.dirs["unified"] / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                _write(self.dirs["unified"] / "cgroup.kill", "1")
        deadline = time.monotonic() + timeout_s
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this group for exceeding its memory limit."""
        if self.v2:
            n = _read_int(self.dirs["unified"] / "memory.events", "oom_kill")
        else:
            n = _read_int(self.dirs["memory"] / "memory.oom_control", "oom_kill")
            if n is None:  # kernels before 4.13 only count hits of the limit
                n = _read_int(self.dirs["memory"] / "memory.failcnt")
        return bool(n)

    def cpu_seconds(self) -> float | None:
        """User plus system CPU time of every process that was ever in the group, or None
        where the group does not account CPU (v1 without cpuacct)."""
        if self.v2:  # cpu.stat's usage_usec exists in every v2 group, controller or not
            usec = _read_int(self.dirs["unified"] / "cpu.stat", "usage_usec")
            return None if usec is None else usec / 1e6
        if "cpuacct" not in self.dirs:
            return None
        ns = _read_int(self.dirs["cpuacct"] / "cpuacct.usage")
        return None if ns is None else ns / 1e9

    def peak_memory(self) -> int | None:
        if self.v2:
            return _read_int(self.dirs["unified"] / "memory.peak")
        return _read_int(self.dirs["memory"] / "memory.max_usage_in_bytes")

    def remove(self) -> None:
        for d in self.dirs.values():
            for _ in range(50):  # rmdir fails while the last killed processes are exiting
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


def sweep_orphans() -> int:
    """Kill and remove step groups whose owner process is gone (it was SIGKILLed, or the
    machine's harness crashed): their steps would otherwise run on, unseen. Returns how many."""
    swept = 0
    dirs: dict[str, list[Path]] = {}
    for d in [*ROOT.glob(f"*/{PARENT}/step-*"), *ROOT.glob(f"{PARENT}/step-*")]:
        dirs.setdefault(d.name, []).append(d)
    for name, paths in dirs.items():
        pid = name.split("-")[1]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            continue
        v2 = not any(p.parent.parent.name in ("memory", "pids", "cpuacct") for p in paths)
        group = StepCgroup({("unified" if v2 else p.parent.parent.name): p for p in paths}, v2=v2)
        group.kill_all()
        group.remove()
        swept += 1
    return swept
