"""The Ray backend: each run is a Ray task holding the scale's GPUs on some node of a cluster.

The worker runs the same sandbox (`local` or `docker`) as a single machine would. What it
needs travels with the task, unless `shared` says the run folder is on a filesystem every
node mounts at the same path:
- the environment folder, as a tar put in Ray's object store once per environment;
- the candidate, as a git bundle of its commit (the worker checks out exactly that sha);
- back: the outcome, plus a tar of the run's logs, result and output (files above
  `ship_max_mb` stay on the worker and are listed in `not_shipped.txt`).
The driver writes everything into its single store. Ray itself must be installed on every
node with this package (`pip install 'executor[ray]'`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.items import ItemOutcomes
from runner.run import RunOutcome
from sandbox.base import RunStatus, SandboxUnavailable

if TYPE_CHECKING:  # runner.backends makes this backend: no import of it at load time
    from runner.backends import RunJob
    from runner.scheduler import Scheduler

# Runs submitted at once: Ray places them on the cluster's nodes and queues what does not fit.
RAY_CAPACITY = 8

NOT_SHIPPED = "not_shipped.txt"


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SandboxUnavailable(
            "--backend ray needs Ray: pip install 'ray>=2.9' (on every node of the cluster)"
        ) from None
    return ray


def tar_dir(root: Path, max_file_bytes: int | None = None) -> tuple[bytes, list[str]]:
    """A gzip tar of `root`'s files (skipping those above `max_file_bytes`) and the skipped."""
    buf = io.BytesIO()
    skipped: list[str] = []
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            rel = path.relative_to(root).as_posix()
            if max_file_bytes is not None and path.stat().st_size > max_file_bytes:
                skipped.append(rel)
                continue
            tar.add(path, arcname=rel, recursive=False)
    return buf.getvalue(), skipped


def untar(data: bytes, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")  # "data": no absolute paths, links out, devices


def git_bundle(workspace: Path) -> tuple[bytes, str]:
    """A bundle holding the workspace's HEAD commit, and that commit's sha."""
    sha = _git(workspace, "rev-parse", "HEAD").strip()
    ref = f"refs/executor-ship/{sha}"
    _git(workspace, "update-ref", ref, sha)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candidate.bundle"
        _git(workspace, "bundle", "create", str(path), ref)
        data = path.read_bytes()
    _git(workspace, "update-ref", "-d", ref)
    return data, sha


def checkout_bundle(data: bytes, sha: str, dest: Path) -> None:
    dest.mkdir(parents=True)
    bundle = dest.parent / "candidate.bundle"
    bundle.write_bytes(data)
    _git(dest, "init", "-q")
    _git(dest, "fetch", "-q", str(bundle), f"refs/executor-ship/{sha}")
    _git(dest, "checkout", "-q", "--detach", sha)
    bundle.unlink()


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


async def _interruptible(aw: Any) -> Any:
    """Await `aw` while waking the loop 5 times a second.

    `ray.cancel` interrupts the task with `_thread.interrupt_main()`, which Python only acts
    on while the main thread runs bytecode; an event loop idle in epoll would never notice,
    and the step would outlive its cancelled task. Woken, the interrupt cancels the run and
    its sandbox kills the step.
    """

    async def beat() -> None:
        while True:
            await asyncio.sleep(0.2)

    heartbeat = asyncio.ensure_future(beat())
    try:
        return await aw
    finally:
        heartbeat.cancel()


CANCEL_GRACE_S = 30.0


def _take_sigint_back() -> None:
    """`ray.cancel` interrupts a task with `_thread.interrupt_main()`, which does nothing while
    SIGINT is ignored — and a worker inherits that from whoever started Ray (a background job,
    a long pytest session). The run would then never stop; handle SIGINT as Python does."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(
        signal.SIGINT
    ) in (signal.SIG_IGN, signal.SIG_DFL, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)


async def _settled(ref: Any) -> None:
    """Wait for a (cancelled) task to end, however it ends."""
    with contextlib.suppress(BaseException):
        await ref


def run_on_worker(payload: dict[str, Any]) -> dict[str, Any]:
    """The Ray task: materialize the run, execute it in the sandbox, ship the results back."""
    import ray

    from environments import load_environment
    from runner.backends import RunSpec, run_spec

    _take_sigint_back()
    gpus = tuple(int(g) for g in ray.get_gpu_ids())
    with tempfile.TemporaryDirectory(prefix="executor-ray-") as tmp_name:
        tmp = Path(tmp_name)
        if payload["shared"]:
            env_dir, workspace = Path(payload["env_dir"]), Path(payload["workspace"])
            artifacts = Path(payload["artifacts"])
        else:
            env_dir, workspace, artifacts = tmp / "env", tmp / "ws" / "repo", tmp / "artifacts"
            untar(
                ray.get(payload["env_tar"]) if payload["env_tar_is_ref"] else payload["env_tar"],
                env_dir,
            )
            checkout_bundle(payload["bundle"], payload["sha"], workspace)
        run = run_spec(
            RunSpec(load_environment(env_dir), **payload["spec"]),
            workspace,
            artifacts,
            gpus=gpus,
            expected_env=payload["expected_env"],
            eval_secret=payload["eval_secret"],
        )
        outcome = asyncio.run(_interruptible(run))
        shipped = b""
        if not payload["shared"]:
            shipped, skipped = tar_dir(artifacts, payload["ship_max_bytes"])
            if skipped:
                (artifacts / NOT_SHIPPED).write_text("\n".join(skipped) + "\n")
                shipped, _ = tar_dir(artifacts, payload["ship_max_bytes"])
    return {
        "status": str(outcome.status),
        "reason": outcome.reason,
        "metrics": outcome.metrics,
        "flags": outcome.flags,
        "reward": outcome.reward,
        "timings": outcome.timings,
        "items": None if outcome.items is None else (outcome.items.pack(), outcome.items.sha256()),
        "artifacts_tar": shipped,
        "node": socket.gethostname(),
        "gpus": list(gpus),
    }


class RayBackend:
    """Submits runs to a Ray cluster (`address`), or to a local Ray started on first use."""

    scheduler: Scheduler | None = None  # Ray's own scheduler places the runs
    capacity = RAY_CAPACITY

    def __init__(
        self,
        address: str | None = None,
        shared: bool = False,
        ship_max_mb: float = 256,
        num_cpus: int | None = None,
    ) -> None:
        self.ray = _ray()
        if not self.ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                kw["num_cpus"] = num_cpus  # a local cluster of this machine
            self.ray.init(address=address, **kw)
        self.shared = shared
        self.ship_max_bytes = int(ship_max_mb * 1024 * 1024)
        self._remote = self.ray.remote(run_on_worker)
        self._env_refs: dict[tuple[str, str], Any] = {}

    def _env_tar(self, env: Any) -> Any:
        key = (str(env.root), env.repo_hash + str(sorted(env.protected_hashes().items())))
        if key not in self._env_refs:
            data, _ = tar_dir(env.root)
            self._env_refs[key] = self.ray.put(data)
        return self._env_refs[key]

    def _payload(self, job: RunJob) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "shared": self.shared,
            "spec": job.spec.portable(),
            "expected_env": job.expected_env,
            "eval_secret": job.eval_secret,
            "ship_max_bytes": self.ship_max_bytes,
        }
        if self.shared:
            payload.update(
                env_dir=str(job.spec.env.root),
                workspace=str(job.workspace),
                artifacts=str(job.artifacts),
            )
        else:
            bundle, sha = git_bundle(job.workspace)
            payload.update(
                env_tar=self._env_tar(job.spec.env), env_tar_is_ref=True, bundle=bundle, sha=sha
            )
        return payload

    async def run(self, job: RunJob) -> RunOutcome:
        scale = job.spec.env.scale(job.spec.scale)
        ref = self._remote.options(
            num_gpus=scale.gpus, num_cpus=scale.cpus, name=job.name or "executor-run"
        ).remote(self._payload(job))
        job.on_start()
        try:
            result = await ref
        except asyncio.CancelledError:
            # Not force: the task gets KeyboardInterrupt, so its sandbox kills the step. Wait
            # for that (bounded), so the step is dead when this run returns; a task that does
            # not stop in time is killed with its worker.
            self.ray.cancel(ref)
            try:
                await asyncio.wait_for(asyncio.shield(_settled(ref)), CANCEL_GRACE_S)
            except TimeoutError:
                self.ray.cancel(ref, force=True)
            except BaseException:  # a second Ctrl-C: stop waiting
                pass
            raise
        except self.ray.exceptions.RayError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return RunOutcome(RunStatus.INFRA_ERROR, f"ray: {first}", job.artifacts)
        if result["artifacts_tar"]:
            untar(result["artifacts_tar"], job.artifacts)
        timings = dict(result["timings"])
        timings["gpu_seconds"] = sum(timings.get(k, 0.0) for k in ("train", "evaluate")) * len(
            result["gpus"]
        )
        return RunOutcome(
            RunStatus(result["status"]),
            result["reason"],
            job.artifacts,
            metrics=result["metrics"],
            flags=result["flags"],
            reward=result["reward"],
            timings=timings,
            items=None if result.get("items") is None else ItemOutcomes.unpack(*result["items"]),
        )

    def close(self) -> None:
        return None
