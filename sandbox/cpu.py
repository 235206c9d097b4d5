"""The harness's CPU meter of a running step (docs/architecture.md, Budget clocks).

A scale with `budget_clock = "cpu"` counts its training budget in CPU-seconds of the step's
processes: user plus system time of every process and thread the step started. Unlike wall
time, that does not shrink when other work shares the machine's cores. The harness measures
it from outside the step, so the candidate's code cannot under-report it:

- a cgroup (sandbox/cgroups.py; Docker's own container group) counts every process that
  was ever in it, those that exited included: exact;
- without one, the live process tree under the step's first process, from /proc: each
  process's own time plus what it collected from children it waited for. A process that
  left the tree (reparented to the machine's init) is no longer counted, and one that ends
  between two readings may be missed; under bubblewrap orphans stay in the tree (its PID
  namespace's init is the step's own).

Readings never go down: a meter keeps the largest value it has seen, and `freeze` fixes it
when the step is over (its group is about to be removed).
"""

from __future__ import annotations

import abc
import contextlib
import os
import threading
from pathlib import Path

from sandbox import cgroups
from sandbox.cgroups import StepCgroup

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class CpuMeter(abc.ABC):
    """CPU-seconds used so far by one step's processes, as the harness measures them."""

    def __init__(self) -> None:
        self._max: float | None = None
        self._frozen = False
        self._lock = threading.Lock()  # read from the watch's thread and the sandbox's

    @abc.abstractmethod
    def sample(self) -> float | None:
        """The source's current reading, or None where it has none (yet, or any longer)."""

    def read(self) -> float | None:
        """The largest reading so far; None before the first."""
        with self._lock:
            if not self._frozen:
                value: float | None = None
                with contextlib.suppress(OSError, ValueError):
                    value = self.sample()
                if value is not None and (self._max is None or value > self._max):
                    self._max = value
            return self._max

    def freeze(self) -> float | None:
        """Take a last reading and keep it: the step is over."""
        value = self.read()
        self._frozen = True
        return value


def _stat(pid_dir: str) -> tuple[int, int] | None:
    """(parent pid, CPU ticks of the process and of the children it waited for)."""
    try:
        with open(f"{pid_dir}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    rest = text[text.rfind(b")") + 2 :].split()
    # rest[0] is field 3 (state); ppid is 4, utime 14, stime 15, cutime 16, cstime 17.
    return int(rest[1]), int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])


def tree_cpu_seconds(root: int) -> float | None:
    """CPU-seconds of the live process tree under `root` (itself included), or None when
    `root` is gone."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    with os.scandir(PROC) as it:
        for entry in it:
            if not entry.name.isdigit():
                continue
            got = _stat(entry.path)
            if got is not None:
                pid = int(entry.name)
                children.setdefault(got[0], []).append(pid)
                ticks[pid] = got[1]
    if root not in ticks:
        return None
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += ticks.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total / TICKS


class ProcTreeMeter(CpuMeter):
    """The process tree under the step's first process, read from /proc."""

    def __init__(self, root_pid: int) -> None:
        super().__init__()
        self.root_pid = root_pid

    def sample(self) -> float | None:
        return tree_cpu_seconds(self.root_pid)


class CgroupMeter(CpuMeter):
    """The step's cgroup, or its process tree where the group does not account CPU."""

    def __init__(self, group: StepCgroup, root_pid: int) -> None:
        super().__init__()
        self.group = group
        self.tree = ProcTreeMeter(root_pid)

    def sample(self) -> float | None:
        value = self.group.cpu_seconds()
        return self.tree.sample() if value is None else value


class FileMeter(CpuMeter):
    """A cgroup's counter file outside our own groups (a container's, found by its engine):
    cpuacct.usage (nanoseconds, v1) or cpu.stat's usage_usec (v2)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def sample(self) -> float | None:
        text = self.path.read_text()
        if self.path.name == "cpu.stat":
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
            return None
        return int(text.strip()) / 1e9


def cgroup_counter(pid: int) -> Path | None:
    """The CPU counter file of the cgroup that holds `pid` on this machine, or None."""
    try:
        lines = (PROC / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        candidate: Path | None = None
        if controllers == "":  # v2 (on a hybrid v1 machine this finds nothing: v1 is used)
            candidate = cgroups.ROOT / rel / "cpu.stat"
        elif "cpuacct" in controllers.split(","):
            # Mounted as "cpuacct", or co-mounted as "cpu,cpuacct" (usually with a link).
            mounts = (cgroups.ROOT / "cpuacct", cgroups.ROOT / controllers)
            candidate = next((m / rel / "cpuacct.usage" for m in mounts if m.is_dir()), None)
        else:
            continue
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def proc_meter_problem() -> str | None:
    """Why this machine has no /proc to read a process tree's CPU time from, or None."""
    if not (PROC / str(os.getpid()) / "stat").is_file():
        return "there is no /proc to read the step's CPU time from"
    return None
