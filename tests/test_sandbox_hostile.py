"""Hostile steps against both sandboxes (Docker against a real engine, local under bubblewrap).

Each test states what a sandbox guarantees. Where the local sandbox runs unisolated (no
bubblewrap: `local:isolation=none`), the test pins down that documented difference instead.
The red-team suite (tests/redteam/) attacks whole runs of the real environments.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from environments import load_environment
from runner.run import run_candidate
from sandbox import RunLayout, RunStatus, Sandbox, SandboxUnavailable, Step, get_sandbox
from sandbox.base import Limits, StepResult
from sandbox.output import truncation_marker
from tests.conftest import docker_unavailable_reason, our_step_processes

DOCKER_SKIP = docker_unavailable_reason()


def _cgroups_usable() -> bool:
    from sandbox.cgroups import StepCgroup

    group = StepCgroup.create(memory_bytes=1 << 30, pids=64)
    if group is None:
        return False
    group.remove()
    return True


# Without cgroups the local sandbox cannot contain a fork bomb run by root (RLIMIT_NPROC
# does not bind root) nor see an OOM kill: those cases would test the machine, not us.
NO_LOCAL_CGROUPS = (
    None
    if _cgroups_usable()
    else (
        "this machine does not let us create cgroups (needs root and cgroup v1, or a delegated "
        "v2 subtree); `executor doctor` says so too"
    )
)


def needs_cgroups(kind: str) -> None:
    if kind == "local" and NO_LOCAL_CGROUPS:
        pytest.skip(NO_LOCAL_CGROUPS)


@pytest.fixture(params=["local", "docker"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "docker" and DOCKER_SKIP:
        pytest.skip(DOCKER_SKIP)
    return str(request.param)


def make_layout(tmp_path: Path) -> RunLayout:
    ws, env = tmp_path / "ws", tmp_path / "env"
    ws.mkdir()
    env.mkdir()
    (env / "evaluate.py").write_text("print('the protected evaluator')\n")
    return RunLayout(ws, env, tmp_path / "out", tmp_path / "eval", tmp_path / "logs")


def make_sandbox(kind: str, **options: object) -> Sandbox:
    if kind == "local":
        options.setdefault("kill_grace_s", 0.5)
    return get_sandbox(kind, **options)


async def run_step(
    kind: str, tmp_path: Path, command: str, timeout: float = 20, **kw: object
) -> tuple[StepResult, RunLayout]:
    options = kw.pop("options", {})
    assert isinstance(options, dict)
    sb = make_sandbox(kind, **options)
    lay = make_layout(tmp_path)
    async with sb.session(lay):
        res = await sb.exec(Step("train", command, timeout, **kw))  # type: ignore[arg-type]
    return res, lay


def assert_nothing_running(kind: str, root: Path) -> None:
    assert our_step_processes(root) == []
    if kind == "docker":
        from sandbox.docker_sandbox import docker_client, our_containers

        mine = [
            c
            for c in our_containers(docker_client())
            if c.labels.get("executor.output", "").startswith(str(root))
        ]
        assert mine == []


async def test_infinite_loop_times_out_and_leaves_nothing(kind, tmp_path) -> None:
    start = time.monotonic()
    res, _ = await run_step(kind, tmp_path, "python -c 'while True: pass'", timeout=1.5)
    assert res.status is RunStatus.TIMEOUT and "1.5s limit" in str(res.reason)
    assert time.monotonic() - start < 10
    assert_nothing_running(kind, tmp_path)


@pytest.mark.slow
async def test_fork_bomb_is_contained_and_the_machine_responds(kind, tmp_path) -> None:
    needs_cgroups(kind)
    bomb = "bomb() { bomb | bomb & }; bomb; sleep 3"
    task = asyncio.create_task(run_step(kind, tmp_path, bomb, timeout=8, limits=Limits(pids=64)))
    await asyncio.sleep(1.5)  # the bomb is at its limit by now
    t0 = time.monotonic()
    subprocess.run(["true"], check=True, timeout=5)
    assert time.monotonic() - t0 < 1.0, "the machine stopped responding"
    res, _ = await task
    assert res.status in {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMEOUT}
    assert res.duration_s < 8 + 3
    await asyncio.sleep(0.2)
    assert_nothing_running(kind, tmp_path)


async def test_memory_bomb_is_killed_at_the_limit(kind, tmp_path) -> None:
    needs_cgroups(kind)
    bomb = "python -c 'x = b\" \" * (2 * 1024**3); print(len(x))'"
    res, _ = await run_step(kind, tmp_path, bomb, limits=Limits(memory_gb=0.25))
    assert res.status is RunStatus.KILLED, res
    assert "0.25 GB memory limit" in str(res.reason)
    if kind == "local":  # the cgroup saw it reach the limit
        assert res.peak_memory_bytes is not None
        assert res.peak_memory_bytes >= 0.2 * 1024**3


@pytest.mark.slow
async def test_a_gigabyte_of_stdout_is_capped_with_a_marker(kind, tmp_path) -> None:
    cap = 1_000_000
    res, _ = await run_step(
        kind, tmp_path, "yes | head -c 1000000000; echo done >&2", limits=Limits(output_bytes=cap)
    )
    assert res.status is RunStatus.SUCCEEDED, res
    data = res.stdout_path.read_bytes()
    assert len(data) == cap + len(truncation_marker(cap))
    assert data.endswith(truncation_marker(cap)) and data[:cap] == b"y\n" * (cap // 2)
    assert res.stderr_path.read_text() == "done\n"  # the other stream is untouched


async def test_network_request_fails_without_network(kind, tmp_path) -> None:
    # The default of both: no network (the local sandbox's needs bubblewrap, which it has here).
    fetch = "python -c 'import socket; socket.create_connection((\"1.1.1.1\", 80), timeout=3)'"
    res, _ = await run_step(kind, tmp_path, fetch)
    assert res.status is RunStatus.FAILED
    assert "unreachable" in res.stderr_tail().lower()


async def test_network_off_unisolated_needs_root_and_unshare(tmp_path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the unisolated sandbox's private network namespace needs root")
    fetch = "python -c 'import socket; socket.create_connection((\"1.1.1.1\", 80), timeout=3)'"
    opts = {"isolation": "none", "network": False}
    res, _ = await run_step("local", tmp_path, fetch, options=opts)
    assert res.status is RunStatus.FAILED and "unreachable" in res.stderr_tail().lower()


@pytest.mark.parametrize("isolation", ["auto", "none"])
async def test_writing_outside_the_workspace(kind, tmp_path, isolation) -> None:
    if kind == "docker" and isolation == "none":
        pytest.skip("`isolation` is an option of the local sandbox only")
    target = Path("/tmp") / f"executor-escape-{uuid.uuid4().hex}"
    opts = {"isolation": isolation} if kind == "local" else {}
    try:
        res, lay = await run_step(
            kind,
            tmp_path,
            f"echo escaped > {target}; echo inside > $EXECUTOR_OUTPUT_DIR/ok",
            options=opts,
        )
        assert res.status is RunStatus.SUCCEEDED, res
        assert (lay.output_dir / "ok").read_text() == "inside\n"
        # Isolated, /tmp is the step's own; unisolated it is the machine's (documented).
        assert target.exists() == (isolation == "none")
    finally:
        target.unlink(missing_ok=True)


async def test_reading_an_api_key_finds_nothing(kind, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    res, _ = await run_step(kind, tmp_path, "env; echo key=${OPENAI_API_KEY:-absent}")
    out = res.stdout_path.read_text()
    assert res.status is RunStatus.SUCCEEDED and "key=absent" in out
    assert "secret" not in out


async def test_the_home_is_scratch(kind, tmp_path) -> None:
    name = f"x-{secrets.token_hex(6)}"  # a file no earlier process on this host left there
    res, _ = await run_step(kind, tmp_path, f"echo $HOME; touch $HOME/{name}")
    home = res.stdout_path.read_text().strip()
    assert res.status is RunStatus.SUCCEEDED
    assert home != os.environ.get("HOME") and not Path(home, name).exists()


@pytest.mark.parametrize("unisolated", [False, True])
async def test_editing_the_evaluator_at_run_time_is_stopped_or_flagged(
    kind, toy_env, tmp_path, unisolated
) -> None:
    if unisolated and kind == "docker":
        pytest.skip("`isolation` is an option of the local sandbox only")
    kind = "unisolated" if unisolated else kind
    env = load_environment(toy_env)
    ws = tmp_path / "ws"
    shutil.copytree(toy_env / "repo", ws)
    tamper = (
        "import os\ntry:\n"
        "    with open(os.path.join(os.environ['EXECUTOR_ENV_DIR'], 'evaluate.py'), 'a') as f:\n"
        "        f.write('\\nprint(\"tampered\")\\n')\n"
        "except OSError as e:\n    print('write refused:', e)\n"
    )
    train = ws / "train.py"
    train.write_text(tamper + train.read_text())
    before = (toy_env / "evaluate.py").read_text()
    unisolated = kind == "unisolated"
    sandbox = make_sandbox("local", isolation="none") if unisolated else make_sandbox(kind)
    outcome = await run_candidate(env, "tiny", ws, tmp_path / "artifacts", sandbox)
    stdout = (tmp_path / "artifacts" / "logs" / "train.stdout").read_text()
    if kind != "unisolated":
        # The folder is mounted read-only: the write fails and the run scores normally.
        assert "Read-only file system" in stdout
        assert (toy_env / "evaluate.py").read_text() == before
        assert outcome.status is RunStatus.SUCCEEDED, outcome.reason
        usage = json.loads((tmp_path / "artifacts" / "logs" / "usage.json").read_text())
        assert set(usage) == {"train", "evaluate"} and usage["train"]["status"] == "succeeded"
    else:
        # Unisolated, nothing stops the write; the hash check catches it.
        assert (toy_env / "evaluate.py").read_text() != before
        assert outcome.status is RunStatus.FLAGGED and outcome.reward is None
        assert "evaluate.py" in str(outcome.reason) and "during training" in str(outcome.reason)


async def test_a_step_that_escapes_its_process_group_still_dies(tmp_path) -> None:
    # setsid leaves the process group; only the cgroup still holds it.
    needs_cgroups("local")
    res, _ = await run_step("local", tmp_path, "setsid sh -c 'sleep 60' & sleep 0.3; echo started")
    assert res.status is RunStatus.SUCCEEDED
    await asyncio.sleep(0.2)
    assert our_step_processes(tmp_path) == []


async def test_cancel_stops_the_step_and_removes_everything(kind, tmp_path) -> None:
    sb = make_sandbox(kind)
    lay = make_layout(tmp_path)
    await sb.prepare(lay)
    task = asyncio.create_task(sb.exec(Step("train", "echo started; sleep 60", 120)))
    out = lay.log_dir / "train.stdout"
    for _ in range(100):
        if out.exists() and out.read_text():
            break
        await asyncio.sleep(0.05)
    t0 = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await sb.cleanup()
    assert time.monotonic() - t0 < 5
    assert_nothing_running(kind, tmp_path)


@pytest.mark.docker
@pytest.mark.skipif(DOCKER_SKIP is not None, reason=str(DOCKER_SKIP))
def test_sweep_removes_containers_of_a_dead_harness_only() -> None:
    from sandbox.docker_sandbox import (
        LABEL,
        OWNER_LABEL,
        docker_client,
        owner_label,
        sweep_leftovers,
    )
    from sandbox.images import BASE_IMAGE

    client = docker_client()
    dead = subprocess.Popen(["true"])
    dead_label = owner_label(dead.pid)
    dead.wait()
    made = {
        name: client.containers.create(
            BASE_IMAGE, ["sleep", "60"], labels={LABEL: "docker", OWNER_LABEL: label}
        )
        for name, label in (("dead", dead_label), ("alive", owner_label()))
    }
    try:
        assert sweep_leftovers(client) >= 1
        ids = {c.id for c in client.containers.list(all=True)}
        assert made["dead"].id not in ids and made["alive"].id in ids
    finally:
        for c in made.values():
            with contextlib.suppress(Exception):
                c.remove(force=True)


@pytest.mark.docker
@pytest.mark.skipif(DOCKER_SKIP is not None, reason=str(DOCKER_SKIP))
def test_docker_step_configuration(tmp_path) -> None:
    """What cannot run here (GPUs) is checked in the container's configuration."""
    sb = get_sandbox("docker")
    lay = make_layout(tmp_path)
    sb.image = "executor-base:bookworm"  # type: ignore[attr-defined]
    train = sb.container_config(  # type: ignore[attr-defined]
        lay, Step("train", "python train.py", 10, gpus=(2, 5), limits=Limits(memory_gb=2, cpus=4))
    )
    assert train["device_requests"][0].device_ids == ["2", "5"]
    assert train["environment"]["CUDA_VISIBLE_DEVICES"] == "0,1"  # renumbered inside
    assert train["mem_limit"] == train["memswap_limit"] == 2 * 1024**3
    assert train["nano_cpus"] == 4 * 10**9 and train["network_mode"] == "none"
    assert train["read_only"] and train["cap_drop"] == ["ALL"]
    mounts = {v["bind"]: v["mode"] for v in train["volumes"].values()}
    assert mounts == {"/workspace": "rw", "/env": "ro", "/output": "rw"}
    assert train["ulimits"][0]["Name"] == "fsize"
    assert "EXECUTOR_RESULT_PATH" not in train["environment"]
    evaluate = sb.container_config(  # type: ignore[attr-defined]
        lay, Step("evaluate", "python /env/evaluate.py", 10, sees_result_dir=True)
    )
    mounts = {v["bind"]: v["mode"] for v in evaluate["volumes"].values()}
    assert mounts == {"/workspace": "ro", "/env": "ro", "/output": "ro", "/result": "rw"}
    assert evaluate["environment"]["EXECUTOR_RESULT_PATH"] == "/result/result.json"
    assert "device_requests" not in evaluate


@pytest.mark.docker
@pytest.mark.skipif(DOCKER_SKIP is not None, reason=str(DOCKER_SKIP))
async def test_the_environment_image_is_built_once_per_dockerfile_content(tmp_path) -> None:
    from sandbox.docker_sandbox import docker_client
    from sandbox.images import BASE_IMAGE, image_tag

    dockerfile = tmp_path / "Dockerfile"
    marker = uuid.uuid4().hex
    dockerfile.write_text(f"FROM {BASE_IMAGE}\nRUN echo {marker} > /built.txt\n")
    tag = image_tag(dockerfile)
    client = docker_client()
    try:
        for attempt in range(2):
            sb = get_sandbox("docker")
            (tmp_path / str(attempt)).mkdir()
            lay = make_layout(tmp_path / str(attempt))
            lay = RunLayout(
                lay.workspace,
                lay.env_dir,
                lay.output_dir,
                lay.result_dir,
                lay.log_dir,
                dockerfile=dockerfile,
            )
            t0 = time.monotonic()
            async with sb.session(lay):
                res = await sb.exec(Step("train", "cat /built.txt", 30))
            assert res.stdout_path.read_text().strip() == marker
            assert sb.image == tag  # type: ignore[attr-defined]
            if attempt == 1:
                assert time.monotonic() - t0 < 5  # cached: no rebuild
        dockerfile.write_text(dockerfile.read_text() + "RUN true\n")
        assert image_tag(dockerfile) != tag  # new content, new image
    finally:
        with contextlib.suppress(Exception):
            client.images.remove(tag, force=True)


@pytest.mark.docker
def test_a_missing_image_says_how_to_get_it(tmp_path) -> None:
    if DOCKER_SKIP:
        pytest.skip(DOCKER_SKIP)
    sb = get_sandbox("docker", image="executor-no-such-image:1")
    with pytest.raises(SandboxUnavailable, match="not found: pull or build it"):
        asyncio.run(sb.prepare(make_layout(tmp_path)))


def test_a_killed_harness_leaves_no_step_running_after_the_next_start(tmp_path) -> None:
    """Steps of a SIGKILLed harness live on in their cgroup; the next start sweeps them."""
    needs_cgroups("local")
    from sandbox.cgroups import StepCgroup, sweep_orphans

    dead = subprocess.Popen(["true"])
    dead.wait()
    group = StepCgroup.create(1 << 30, 64)
    assert group is not None
    moved = {}
    for ctl, d in group.dirs.items():  # as if the dead process had made it
        moved[ctl] = d.rename(d.parent / f"step-{dead.pid}-test0000")
    orphan = StepCgroup(moved, v2=group.v2)
    step = subprocess.Popen(["sleep", "60"], preexec_fn=orphan.join, start_new_session=True)
    assert orphan.pids() == [step.pid]
    assert sweep_orphans() >= 1
    step.wait(timeout=5)
    assert not any(d.exists() for d in moved.values())
