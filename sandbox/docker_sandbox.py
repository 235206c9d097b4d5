"""The Docker sandbox: each step runs in a fresh container of the environment's image.

What it protects: the container sees only the run's folders as RunLayout's table says
(workspace and output writable while training, the export folder while exporting, the
result folder for the evaluator alone), the environment folder read-only with its eval-only
paths masked for every step but the evaluator, and the workspace's `.git` pointer read-only;
no network by default; a read-only root
filesystem with a size-capped /tmp; no capabilities; memory, CPU, process and output
limits; exactly the GPUs the scheduler assigned. The step's CPU time is read from the
container's cgroup on this machine, else from the engine's stats (sandbox/cpu.py). What it
does not: kernel exploits (containers share the host kernel) and a deliberately permissive
`network=bridge`.

Every container carries labels naming its owner process, so a later start sweeps away
what a crashed harness left; every path out of `exec` removes its container.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sandbox.base import (
    RunLayout,
    RunStatus,
    Sandbox,
    SandboxUnavailable,
    Step,
    StepResult,
    finish_despite_cancel,
)
from sandbox.cpu import CpuMeter, FileMeter, cgroup_counter
from sandbox.images import ensure_image
from sandbox.local import STEP_DEFAULTS, exit_status, step_environment
from sandbox.output import CappedLog
from sandbox.registry import register

LABEL = "executor.sandbox"  # on every container we make
OWNER_LABEL = "executor.owner"  # host:pid:start-time of the harness process
# Where the run's folders appear inside the container.
INSIDE = RunLayout(
    workspace=Path("/workspace"),
    env_dir=Path("/env"),
    output_dir=Path("/output"),
    result_dir=Path("/result"),
    log_dir=Path("/logs"),
    export_dir=Path("/export"),
)

_client: Any = None
_client_lock = threading.Lock()
_swept = False


def docker_client() -> Any:
    """The process's client; SandboxUnavailable (saying what to do) when there is no engine."""
    global _client
    try:
        import docker
    except ImportError:
        raise SandboxUnavailable(
            "--sandbox docker needs the `docker` Python package: pip install docker"
        ) from None
    with _client_lock:
        if _client is None:
            try:
                client = docker.from_env(timeout=120)
                client.ping()
            except Exception as e:  # the SDK raises many kinds; any means "no usable engine"
                first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
                raise SandboxUnavailable(
                    f"no Docker engine reachable ({first}): start one (as root: "
                    "scripts/docker_engine.sh, or `dockerd &`), or use --sandbox local"
                ) from None
            _client = client
    return _client


def _start_time(pid: int) -> str:
    """The kernel's start time of `pid` (field 22 of /proc/PID/stat): pid reuse tells apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def owner_label(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _owner_alive(label: str) -> bool:
    host, _, rest = label.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname():
        return True  # another machine's: not ours to judge
    return pid.isdigit() and _start_time(int(pid)) == start


def our_containers(client: Any) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": LABEL}))


def sweep_leftovers(client: Any) -> int:
    """Remove containers whose harness process is gone (it crashed or was SIGKILLed)."""
    removed = 0
    for c in our_containers(client):
        if not _owner_alive(c.labels.get(OWNER_LABEL, "")):
            with contextlib.suppress(Exception):
                c.remove(force=True)
                removed += 1
    return removed


@register("docker")
class DockerSandbox(Sandbox):
    """Options: `image` (else the environment's Dockerfile, else the base image), `network`
    ("none", or "bridge" to allow it), `tmp_gb` and `shm_gb` (sizes of /tmp and /dev/shm),
    `host_python` (mount the harness's Python and its packages read-only and run the base
    image: for machines with no registry to build an environment's image from)."""

    def __init__(
        self,
        image: str | None = None,
        network: str = "none",
        tmp_gb: float = 1.0,
        shm_gb: float = 1.0,
        host_python: bool = False,
    ) -> None:
        super().__init__()
        self.client = docker_client()
        self.host_python = host_python
        if host_python and image is None:
            from sandbox.images import BASE_IMAGE

            image = BASE_IMAGE
        self.image_option = image
        self.network = network
        self.tmp_gb = tmp_gb
        self.shm_gb = shm_gb
        self.image: str | None = None

    async def prepare(self, layout: RunLayout) -> None:
        global _swept
        await super().prepare(layout)
        if not _swept:
            _swept = True
            await asyncio.to_thread(sweep_leftovers, self.client)
        self.image = await asyncio.to_thread(
            ensure_image, self.client, layout.dockerfile, self.image_option
        )

    def seen_path(self, host_path: Path) -> Path:
        assert self.layout is not None
        for field in ("workspace", "output_dir", "result_dir", "export_dir", "env_dir"):
            host, inside = getattr(self.layout, field), getattr(INSIDE, field)
            if host is not None and host_path.is_relative_to(host):
                return inside / host_path.relative_to(host)
        return host_path

    def container_config(self, layout: RunLayout, step: Step) -> dict[str, Any]:
        """The `containers.create` arguments of a step: mounts, limits, labels, devices."""
        import docker.types

        evaluating = step.evaluating
        mode = "rw" if step.writes_workspace else "ro"
        volumes = {
            str(layout.workspace): {"bind": str(INSIDE.workspace), "mode": mode},
            str(layout.env_dir): {"bind": str(INSIDE.env_dir), "mode": "ro"},
            str(layout.output_dir): {"bind": str(INSIDE.output_dir), "mode": mode},
        }
        if (layout.workspace / ".git").is_file():  # the harness runs git here afterwards
            volumes[str(layout.workspace / ".git")] = {
                "bind": str(INSIDE.workspace / ".git"),
                "mode": "ro",
            }
        if layout.export_dir is not None and (step.writes_export_dir or evaluating):
            volumes[str(layout.export_dir)] = {
                "bind": str(INSIDE.export_dir),
                "mode": "rw" if step.writes_export_dir else "ro",
            }
        if evaluating:
            volumes[str(layout.result_dir)] = {"bind": str(INSIDE.result_dir), "mode": "rw"}
        mounts = [] if evaluating else _eval_only_masks(layout)
        seen = INSIDE if layout.export_dir is not None else replace(INSIDE, export_dir=None)
        # STEP_DEFAULTS (passive OpenMP waits) apply unless the harness's caller set them.
        passed = {k: os.environ[k] for k in STEP_DEFAULTS if k in os.environ}
        base = {"HOME": "/tmp", "USER": "executor", **passed}
        if self.host_python:
            from sandbox.bwrap import python_roots

            for root in python_roots():
                volumes[str(root)] = {"bind": str(root), "mode": "ro"}
            path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            base["PATH"] = f"{Path(sys.executable).parent}:{path}"
        env = step_environment(layout, step, base, seen)
        # Inside the container the assigned GPUs are numbered from 0.
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(step.gpus)))
        limits = step.limits
        config: dict[str, Any] = {
            "image": self.image,
            "command": ["/bin/sh", "-c", step.command],
            "working_dir": str(INSIDE.workspace),
            "environment": env,
            "volumes": volumes,
            "mounts": mounts,
            "user": f"{os.getuid()}:{os.getgid()}",
            "network_mode": self.network,
            "read_only": True,
            "tmpfs": {"/tmp": f"size={int(self.tmp_gb * 1024)}m,mode=1777"},
            "shm_size": f"{int(self.shm_gb * 1024)}m",
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "init": True,  # reaps zombies and forwards signals to the step
            "labels": {
                LABEL: "docker",
                OWNER_LABEL: owner_label(),
                "executor.step": step.name,
                "executor.output": str(layout.output_dir),  # which run, for people and tests
            },
            "pids_limit": limits.pids or -1,
            # No copy of the output in Docker's own log: ours is the capped one, and the
            # json-file driver slows a chatty step a hundredfold.
            "log_config": docker.types.LogConfig(type="none"),
            "detach": True,
        }
        if limits.disk_bytes is not None:  # one file; sandbox/watch.py bounds the total
            fsize = limits.disk_bytes
            config["ulimits"] = [docker.types.Ulimit(name="fsize", soft=fsize, hard=fsize)]
        if limits.memory_bytes is not None:
            config["mem_limit"] = limits.memory_bytes
            config["memswap_limit"] = limits.memory_bytes  # no swap
        if limits.cpus is not None:
            config["nano_cpus"] = int(limits.cpus * 1e9)
        if step.gpus:
            config["device_requests"] = [
                docker.types.DeviceRequest(
                    device_ids=[str(g) for g in step.gpus], capabilities=[["gpu"]]
                )
            ]
        return config

    async def _exec(self, layout: RunLayout, step: Step) -> StepResult:
        out_path = layout.log_dir / f"{step.name}.stdout"
        err_path = layout.log_dir / f"{step.name}.stderr"
        start = time.monotonic()
        config = self.container_config(layout, step)
        container: Any = None

        def result(status: RunStatus, code: int | None, reason: str | None) -> StepResult:
            return StepResult(
                step.name, status, code, time.monotonic() - start, out_path, err_path, reason
            )

        out = CappedLog(out_path, step.limits.output_bytes)
        err = CappedLog(err_path, step.limits.output_bytes)
        try:
            create = asyncio.ensure_future(asyncio.to_thread(self._create_and_start, config))
            try:
                container, stream = await asyncio.shield(create)
            except asyncio.CancelledError:
                # Cancelled while the engine was creating it: wait for it, then remove it.
                with contextlib.suppress(Exception):
                    made, _ = await create
                    await asyncio.to_thread(_remove, made)
                raise
            except Exception as e:
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                return result(RunStatus.INFRA_ERROR, None, f"could not start {step.name}: {first}")
            self.cpu_meter = ContainerMeter(container)
            pump = asyncio.ensure_future(asyncio.to_thread(_pump, stream, out, err))
            try:
                async with asyncio.timeout(step.timeout_s):
                    state = await asyncio.to_thread(container.wait)
            except TimeoutError:
                await asyncio.to_thread(_kill, container)
                await _drain(pump)
                return result(
                    RunStatus.TIMEOUT,
                    None,
                    f"{step.name} exceeded its {step.timeout_s:g}s limit and was killed",
                )
            await _drain(pump)
            code = int(state.get("StatusCode", -1))
            await asyncio.to_thread(container.reload)
            status, reason = exit_status(step.name, code)
            if container.attrs.get("State", {}).get("OOMKilled"):
                status = RunStatus.KILLED
                reason = f"{step.name} exceeded its {step.limits.memory_gb:g} GB memory limit"
            if status is not RunStatus.SUCCEEDED and (out.truncated or err.truncated):
                reason = f"{reason}; output capped at {step.limits.output_bytes} bytes per stream"
            return result(status, code, reason)
        finally:
            out.close()
            err.close()
            if container is not None:
                if self.cpu_meter is not None:  # a last reading before the group goes
                    await finish_despite_cancel(asyncio.to_thread(self.cpu_meter.freeze))
                await finish_despite_cancel(asyncio.to_thread(_remove, container))

    def cpu_meter_problem(self) -> str | None:
        return None  # the container's cgroup, or the engine's stats

    def _create_and_start(self, config: dict[str, Any]) -> tuple[Any, Any]:
        container = self.client.containers.create(**config)
        try:
            # Attached before start, so not a byte of output is missed.
            stream = container.attach(stdout=True, stderr=True, stream=True, demux=True)
            container.start()
        except Exception:
            container.remove(force=True)
            raise
        return container, stream


class ContainerMeter(CpuMeter):
    """A container's CPU time: its cgroup's counter where this machine's /proc shows the
    container's processes (the engine runs here), else the engine's stats API."""

    def __init__(self, container: Any) -> None:
        super().__init__()
        self.container = container
        self.file: FileMeter | None = None
        self.looked = False

    def sample(self) -> float | None:
        if not self.looked:
            self.container.reload()
            pid = int(self.container.attrs.get("State", {}).get("Pid") or 0)
            path = cgroup_counter(pid) if pid else None
            # The id in the path: a pid of another PID namespace may name another process.
            if path is not None and self.container.id in str(path):
                self.file = FileMeter(path)
            self.looked = True
        if self.file is not None:
            return self.file.sample()
        stats = self.container.stats(stream=False, one_shot=True)
        total = stats.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage")
        return total / 1e9 if total else None


def _eval_only_masks(layout: RunLayout) -> list[Any]:
    """Mounts that replace each eval-only path inside /env with an empty one."""
    import docker.types

    masks = []
    for hidden in layout.eval_only:
        try:
            rel = hidden.relative_to(layout.env_dir)
        except ValueError:
            continue  # not under the environment folder: not mounted at all
        target = str(INSIDE.env_dir / rel)
        if hidden.is_dir():
            masks.append(docker.types.Mount(target, None, type="tmpfs", tmpfs_size=4096))
        elif hidden.exists():
            masks.append(docker.types.Mount(target, "/dev/null", type="bind", read_only=True))
    return masks


def _pump(stream: Any, out: CappedLog, err: CappedLog) -> None:
    with contextlib.suppress(Exception):  # the stream breaks when the container is removed
        for chunk_out, chunk_err in stream:
            if chunk_out:
                out.write(chunk_out)
            if chunk_err:
                err.write(chunk_err)


async def _drain(pump: asyncio.Future[None]) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            await asyncio.shield(pump)


def _kill(container: Any) -> None:
    with contextlib.suppress(Exception):
        container.kill()


def _remove(container: Any) -> None:
    with contextlib.suppress(Exception):
        container.remove(force=True)
