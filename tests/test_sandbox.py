"""The local sandbox: statuses, the process group dies on timeout and cancel, no secrets leak."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from sandbox import RunLayout, RunStatus, Step, get_sandbox, sandbox_kinds
from sandbox.base import SandboxUnavailable
from tests.conftest import our_step_processes


def layout(tmp_path: Path) -> RunLayout:
    ws = tmp_path / "ws"
    ws.mkdir()
    return RunLayout(ws, tmp_path / "env", tmp_path / "out", tmp_path / "eval", tmp_path / "logs")


async def run(
    tmp_path: Path, command: str, timeout: float = 10, isolation: str = "auto", **kw
) -> tuple:
    sb = get_sandbox("local", kill_grace_s=0.5, isolation=isolation)
    lay = layout(tmp_path)
    async with sb.session(lay):
        res = await sb.exec(Step("train", command, timeout, **kw))
    return res, lay


async def test_success_and_contract_variables(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("HF_TOKEN", "hf-secret")
    res, lay = await run(tmp_path, "env; python -c 'print(1+1)'", seed=7, sees_result_dir=True)
    assert res.status is RunStatus.SUCCEEDED and res.exit_code == 0
    out = res.stdout_path.read_text()
    assert f"EXECUTOR_OUTPUT_DIR={lay.output_dir}" in out
    assert "EXECUTOR_SEED=7" in out and "CUDA_VISIBLE_DEVICES=\n" in out
    assert f"EXECUTOR_RESULT_PATH={lay.result_dir / 'result.json'}" in out
    assert "sk-secret" not in out and "hf-secret" not in out
    assert out.rstrip().endswith("2")


async def test_training_does_not_see_the_result_path(tmp_path) -> None:
    res, _ = await run(tmp_path, "env")
    assert "EXECUTOR_RESULT_PATH" not in res.stdout_path.read_text()


async def test_failure_and_crash(tmp_path) -> None:
    res, _ = await run(tmp_path, "echo boom >&2; exit 4")
    assert res.status is RunStatus.FAILED and res.exit_code == 4
    assert "code 4" in res.reason and res.stderr_tail() == "boom"
    crash = tmp_path / "crash"
    crash.mkdir()
    res, _ = await run(crash, "kill -KILL $$")
    assert res.status is RunStatus.KILLED and "SIGKILL" in res.reason
    # Through the shell, a killed child shows as 128 + 9.
    through_shell = tmp_path / "through_shell"
    through_shell.mkdir()
    res, _ = await run(through_shell, "python -c 'import os; os.kill(os.getpid(), 9)'; exit $?")
    assert res.status is RunStatus.KILLED and res.exit_code == 137


# Under bubblewrap a step's pids are those of its own PID namespace, so what survives is
# found by its environment (EXECUTOR_OUTPUT_DIR under tmp_path), whichever isolation runs.
ISOLATIONS = pytest.mark.parametrize("isolation", ["auto", "none"])


@ISOLATIONS
async def test_timeout_kills_the_whole_group(tmp_path, isolation) -> None:
    # The step starts a grandchild that ignores SIGTERM, then hangs.
    cmd = "sh -c 'trap \"\" TERM; sleep 60' & echo $! > child.pid; sleep 60"
    start = time.monotonic()
    res, lay = await run(tmp_path, cmd, timeout=1, isolation=isolation)
    assert res.status is RunStatus.TIMEOUT and "1s limit" in res.reason
    assert time.monotonic() - start < 5
    assert (lay.workspace / "child.pid").read_text().strip()  # the grandchild did start
    await asyncio.sleep(0.1)
    assert our_step_processes(tmp_path) == []


@ISOLATIONS
async def test_cancel_kills_the_group(tmp_path, isolation) -> None:
    sb = get_sandbox("local", kill_grace_s=0.5, isolation=isolation)
    lay = layout(tmp_path)
    await sb.prepare(lay)
    task = asyncio.create_task(sb.exec(Step("train", "sleep 60 & echo $! > c.pid; wait", 30)))
    for _ in range(100):
        if (lay.workspace / "c.pid").exists() and (lay.workspace / "c.pid").read_text():
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    assert our_step_processes(tmp_path) == []
    await sb.cleanup()


@ISOLATIONS
async def test_leftover_children_die_with_a_finished_step(tmp_path, isolation) -> None:
    res, lay = await run(tmp_path, "sleep 60 & echo $! > bg.pid", isolation=isolation)
    assert res.status is RunStatus.SUCCEEDED
    assert (lay.workspace / "bg.pid").read_text().strip()
    await asyncio.sleep(0.1)
    assert our_step_processes(tmp_path) == []


def test_unknown_kind_names_the_known_ones() -> None:
    assert "local" in sandbox_kinds()
    with pytest.raises(SandboxUnavailable, match="local"):
        get_sandbox("nope")


def test_an_isolated_step_dies_with_a_killed_harness(tmp_path) -> None:
    """bubblewrap's --die-with-parent and PID namespace: SIGKILL the harness mid-step, and
    the step and its children are gone at once (no sweep at the next start needed)."""
    import os
    import signal
    import subprocess
    import sys

    from sandbox.local import isolation_problem

    if why := isolation_problem():
        pytest.skip(f"the local sandbox cannot isolate here: {why}")
    script = f"""
import asyncio
from pathlib import Path
from sandbox import RunLayout, Step, get_sandbox
root = Path({str(tmp_path)!r})
(root / "ws").mkdir()
lay = RunLayout(root / "ws", root / "env", root / "out", root / "eval", root / "logs")
async def main():
    sb = get_sandbox("local", cgroups=False)  # no cgroup: only bubblewrap can clean up
    async with sb.session(lay):
        await sb.exec(Step("train", "sleep 60 & sleep 60 & echo up; wait", 120))
asyncio.run(main())
"""
    harness = subprocess.Popen([sys.executable, "-c", script])
    out = tmp_path / "logs" / "train.stdout"
    for _ in range(200):
        if out.exists() and out.read_text().strip() == "up":
            break
        time.sleep(0.05)
    assert len(our_step_processes(tmp_path)) >= 3
    os.kill(harness.pid, signal.SIGKILL)
    harness.wait()
    for _ in range(50):
        if not our_step_processes(tmp_path):
            break
        time.sleep(0.1)
    assert our_step_processes(tmp_path) == []
