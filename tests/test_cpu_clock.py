"""CPU-clocked budgets (docs/architecture.md, Budget clocks): the harness's CPU meter of a
step, the kill past a CPU limit, timed outputs and the budget check in CPU-seconds, passive
OpenMP waits, and a CPU-clocked toy scale end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from environments.manifest import load_environment
from runner.run import over_budget
from sandbox import RunLayout, RunStatus, Step, get_sandbox
from sandbox import watch as watch_module
from sandbox.cgroups import StepCgroup
from sandbox.cpu import FileMeter, ProcTreeMeter, cgroup_counter, tree_cpu_seconds
from sandbox.docker_sandbox import ContainerMeter, DockerSandbox
from sandbox.local import LocalSandbox
from tests.test_run import run_toy
from tests.test_sandbox_hostile import NO_LOCAL_CGROUPS

# A child that burns `s` CPU-seconds of its own, then exits.
BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def burn(seconds: float) -> list[str]:
    return [sys.executable, "-c", BURN.format(s=seconds)]


def layout(tmp_path: Path) -> RunLayout:
    ws = tmp_path / "ws"
    ws.mkdir(parents=True)
    return RunLayout(ws, tmp_path / "env", tmp_path / "out", tmp_path / "eval", tmp_path / "logs")


@pytest.mark.skipif(NO_LOCAL_CGROUPS is not None, reason=str(NO_LOCAL_CGROUPS))
def test_the_cgroup_counts_a_busy_child_after_it_exited() -> None:
    group = StepCgroup.create(memory_bytes=1 << 30, pids=64)
    assert group is not None
    try:
        assert group.cpu_seconds() == 0.0
        proc = subprocess.Popen(burn(0.6), preexec_fn=group.join)
        # The engine's way of finding a container's counter finds this group's too.
        counter = cgroup_counter(proc.pid)
        assert proc.wait() == 0
        used = group.cpu_seconds()
        assert used is not None and 0.55 < used < 1.5, used
        assert counter is not None and FileMeter(counter).sample() == pytest.approx(used, abs=0.01)
    finally:
        group.kill_all()
        group.remove()


def test_the_process_tree_counts_children_running_and_waited_for() -> None:
    # The shell waits for its first child (its time lands in the shell's cutime), then
    # runs a second that is still busy when read.
    py = sys.executable
    cmd = f"{py} -c '{BURN.format(s=0.5)}'; {py} -c '{BURN.format(s=30)}'"
    shell = subprocess.Popen(["/bin/sh", "-c", cmd], start_new_session=True)
    meter = ProcTreeMeter(shell.pid)
    try:
        deadline = time.monotonic() + 20
        while (meter.read() or 0.0) < 0.9 and time.monotonic() < deadline:
            time.sleep(0.1)
        used = meter.read()
        assert used is not None and used >= 0.9, used
    finally:
        os.killpg(shell.pid, signal.SIGKILL)  # the shell and its child: their own group
        shell.wait()
    # The tree is gone: the meter keeps its largest reading, never goes down.
    time.sleep(0.2)
    assert tree_cpu_seconds(shell.pid) is None
    assert meter.read() == used
    assert meter.freeze() == used


def test_a_container_meter_reads_the_engine_s_stats_without_a_local_group() -> None:
    class Container:
        id = "c" * 64

        def __init__(self) -> None:
            self.attrs = {"State": {"Pid": 0}}  # the engine runs elsewhere: no process here

        def reload(self) -> None:
            pass

        def stats(self, stream: bool, one_shot: bool) -> dict:
            return {"cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}}}

    assert ContainerMeter(Container()).read() == 2.5


def test_counter_files_of_both_cgroup_versions(tmp_path) -> None:
    (tmp_path / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    (tmp_path / "cpuacct.usage").write_text("2000000000\n")
    assert FileMeter(tmp_path / "cpu.stat").read() == 1.5
    assert FileMeter(tmp_path / "cpuacct.usage").read() == 2.0


async def run_step(
    tmp_path: Path, command: str, isolation: str = "auto", cgroups: bool = True, **kw
) -> tuple:
    sb = get_sandbox("local", kill_grace_s=0.5, isolation=isolation, cgroups=cgroups)
    lay = layout(tmp_path)
    async with sb.session(lay):
        res = await sb.exec(Step("train", command, **kw))
    return res, lay


# The cgroup's meter, and the process tree's where there is no cgroup (under bubblewrap the
# tree's root is bwrap itself).
@pytest.mark.parametrize(
    ("isolation", "cgroups"), [("auto", True), ("none", True), ("auto", False)]
)
async def test_a_step_past_its_cpu_limit_is_killed(tmp_path, isolation, cgroups) -> None:
    start = time.monotonic()
    res, _ = await run_step(
        tmp_path,
        "python -c 'while True: pass'",
        isolation,
        cgroups,
        timeout_s=60,
        cpu_timeout_s=1.0,
    )
    assert res.status is RunStatus.TIMEOUT, res.reason
    assert "over its 1 CPU-s budget" in res.reason and "killed" in res.reason
    assert res.cpu_s is not None and 1.0 < res.cpu_s < 3.0, res.cpu_s
    assert time.monotonic() - start < 30


async def test_a_step_that_passed_its_cpu_limit_between_polls_timed_out(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(watch_module, "POLL_S", 60.0)  # no poll while it runs
    burner = f"python -c '{BURN.format(s=0.6)}'"
    res, _ = await run_step(tmp_path, burner, timeout_s=60, cpu_timeout_s=0.3)
    assert res.status is RunStatus.TIMEOUT and res.exit_code == 0
    assert "over its 0.3 CPU-s budget" in res.reason and "killed" not in res.reason
    ok, _ = await run_step(tmp_path / "ok", burner, timeout_s=60, cpu_timeout_s=5)
    assert ok.status is RunStatus.SUCCEEDED and ok.cpu_s is not None and ok.cpu_s >= 0.6


async def test_a_waiting_step_meets_the_wall_clock_cap(tmp_path) -> None:
    res, _ = await run_step(tmp_path, "sleep 30", timeout_s=1, cpu_timeout_s=100)
    assert res.status is RunStatus.TIMEOUT and "wall-clock cap" in res.reason
    assert res.cpu_s is not None and res.cpu_s < 1


async def test_timed_outputs_are_in_cpu_seconds_on_a_cpu_clock(tmp_path) -> None:
    # a.txt at once; b.txt after 1.5 CPU-s of work and 2 s of sleeping.
    script = (
        "import os, time\n"
        "out = os.environ['EXECUTOR_OUTPUT_DIR']\n"
        "open(os.path.join(out, 'a.txt'), 'w').write('a')\n"
        + BURN.format(s=1.5)
        + "time.sleep(2)\n"
        "open(os.path.join(out, 'b.txt'), 'w').write('b')\n"
        "time.sleep(1)\n"
    )
    lay = layout(tmp_path)
    (lay.workspace / "step.py").write_text(script)
    sb = get_sandbox("local", kill_grace_s=0.5)
    timed = ("*.txt",)
    async with sb.session(lay):
        cpu = await sb.exec(
            Step("train", "python step.py", 60, timed_outputs=timed, cpu_timeout_s=60)
        )
    assert cpu.status is RunStatus.SUCCEEDED, cpu.reason
    times = cpu.output_times
    assert times["a.txt"] < 1.0, times
    # In CPU-seconds, b.txt came after the work only (the sleep is free) ...
    assert 1.4 < times["b.txt"] < 3.0, times
    assert cpu.cpu_s is not None and cpu.cpu_s >= times["b.txt"]
    # ... whereas on the wall clock the sleep counts.
    for f in ("a.txt", "b.txt"):
        (lay.output_dir / f).unlink()
    async with sb.session(lay):
        wall = await sb.exec(Step("train", "python step.py", 60, timed_outputs=timed))
    assert wall.output_times["b.txt"] >= 3.5, wall.output_times


def test_over_budget_in_cpu_seconds() -> None:
    # The grace is in the clock's units: run.py gives a CPU clock BUDGET_GRACE_S x cpus.
    assert over_budget({"ckpt.pt": 103.9}, 100, grace=4, cpu_clock=True) is None
    late = over_budget({"ckpt.pt": 104.5, "x.pt": 99.0}, 100, grace=4, cpu_clock=True)
    assert late == (
        "training wrote ckpt.pt 104.5 CPU-s after it started, past its 100 CPU-s time budget "
        "(times as the harness saw them)"
    )
    wall = over_budget({"ckpt.pt": 104.5}, 100)
    assert wall is not None and "104.5s after it started, past its 100s time budget" in wall


async def test_a_sandbox_without_a_meter_refuses_a_cpu_clocked_step(tmp_path) -> None:
    class Blind(LocalSandbox):
        def cpu_meter_problem(self) -> str | None:
            return "this sandbox cannot measure a step's CPU time"

    lay = layout(tmp_path)
    sb = Blind(isolation="none")
    async with sb.session(lay):
        res = await sb.exec(Step("train", "touch ran", 10, cpu_timeout_s=10))
        plain = await sb.exec(Step("smoke", "true", 10))  # a wall-clock step runs as ever
    assert res.status is RunStatus.INFRA_ERROR and "CPU-time budget" in res.reason
    assert "\n" not in res.reason and not (lay.workspace / "ran").exists()
    assert plain.status is RunStatus.SUCCEEDED


async def test_a_meter_that_never_reads_stops_the_step_as_infra_error(
    tmp_path, monkeypatch
) -> None:
    class Broken(LocalSandbox):
        def cpu_seconds(self) -> float | None:
            return None

    monkeypatch.setattr(watch_module, "METER_GRACE_S", 1.0)
    lay = layout(tmp_path)
    sb = Broken(isolation="none", kill_grace_s=0.5)
    start = time.monotonic()
    async with sb.session(lay):
        res = await sb.exec(Step("train", "sleep 30", 60, cpu_timeout_s=10))
    assert res.status is RunStatus.INFRA_ERROR and "could not measure" in res.reason
    assert time.monotonic() - start < 15


def test_openmp_waits_are_passive_unless_the_caller_chose(tmp_path, monkeypatch) -> None:
    lay = layout(tmp_path)
    step = Step("train", "python train.py", 10)
    docker = object.__new__(DockerSandbox)  # its configuration needs no engine
    vars(docker).update(image="img", host_python=False, network="none", tmp_gb=1, shm_gb=1)

    def seen() -> tuple[str, str]:
        local = LocalSandbox(isolation="none")._environment(lay, step)
        return local["OMP_WAIT_POLICY"], docker.container_config(lay, step)["environment"][
            "OMP_WAIT_POLICY"
        ]

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert seen() == ("PASSIVE", "PASSIVE")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert seen() == ("ACTIVE", "ACTIVE")


def cpu_scale(toy_env: Path, budget: float, timeout: float, wall: float) -> None:
    """The toy's tiny scale on a CPU clock, its model file timed."""
    toml = toy_env / "env.toml"
    text = toml.read_text().replace(
        "timeout = 60\n",
        f'budget_clock = "cpu"\ntime_budget = {budget}\ntimeout = {timeout}\n'
        f"wall_timeout = {wall}\n",
    )
    toml.write_text(text.replace("disk_gb = 0.25", 'disk_gb = 0.25\ntimed_outputs = ["model.npz"]'))


SPY = (
    "import json, os, numpy as np\n"
    "out = os.environ['EXECUTOR_OUTPUT_DIR']\n"
    "keys = ('EXECUTOR_BUDGET_CLOCK', 'EXECUTOR_TIME_BUDGET_S', 'OMP_WAIT_POLICY',\n"
    "        'OMP_NUM_THREADS')\n"
    "json.dump({k: os.environ.get(k) for k in keys}, open(os.path.join(out, 'env.json'), 'w'))\n"
    "np.savez(os.path.join(out, 'model.npz'), w=np.zeros(8))\n"
)


async def test_a_cpu_clocked_toy_scale_end_to_end(toy_env, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    cpu_scale(toy_env, budget=1, timeout=20, wall=200)
    scale = load_environment(toy_env).scale("tiny")
    assert scale.wall_cap(20) == 200 and scale.wall_cap(3) == 30  # shrunk with --timeout
    honest = await run_toy(toy_env, tmp_path / "honest", SPY)
    assert honest.status is RunStatus.SUCCEEDED, honest.reason
    seen = json.loads((honest.artifacts / "output" / "env.json").read_text())
    assert seen == {
        "EXECUTOR_BUDGET_CLOCK": "cpu",
        "EXECUTOR_TIME_BUDGET_S": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        "OMP_NUM_THREADS": "1",  # the scale's cores: more threads' syncing depends on load
    }
    usage = json.loads((honest.artifacts / "logs" / "usage.json").read_text())
    assert 0 < usage["train"]["cpu_s"] < 10 and "cpu_s" in usage["evaluate"]
    # Saving after 4 CPU-s: past the 1 CPU-s budget and its grace (2 s x 1 cpu).
    late = BURN.format(s=4) + SPY
    flagged = await run_toy(toy_env, tmp_path / "late", late)
    assert flagged.status is RunStatus.FLAGGED, flagged.reason
    assert "CPU-s after it started, past its 1 CPU-s time budget" in flagged.reason
    # --timeout 3 is 3 CPU-s here: a step that never ends is killed there.
    endless = await run_toy(toy_env, tmp_path / "endless", "while True: pass\n", timeout_s=3)
    assert endless.status is RunStatus.TIMEOUT, endless.reason
    assert "over its 3 CPU-s budget" in endless.reason
