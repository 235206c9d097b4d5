"""The Ray backend against a real local Ray (`ray.init(num_cpus=2)`): shipping and results."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import pytest

from agent.executor import RunRequest, run_baseline
from agent.store import Store
from environments import load_environment
from runner.ray_backend import NOT_SHIPPED, checkout_bundle, git_bundle, tar_dir, untar

ray = pytest.importorskip("ray", reason="Ray is a dev dependency: pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def local_ray():
    # Started as a background job would start it: with SIGINT ignored, which Ray's workers
    # inherit. Cancelling a run must work all the same (the worker takes SIGINT back).
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    finally:
        signal.signal(signal.SIGINT, previous)
    yield
    ray.shutdown()


def test_tar_roundtrip_skips_files_above_the_limit(tmp_path) -> None:
    src = tmp_path / "src"
    (src / "logs").mkdir(parents=True)
    (src / "logs" / "train.stdout").write_text("hello\n")
    (src / "ckpt.bin").write_bytes(b"x" * 5000)
    data, skipped = tar_dir(src, max_file_bytes=1000)
    assert skipped == ["ckpt.bin"]
    untar(data, tmp_path / "dst")
    assert (tmp_path / "dst" / "logs" / "train.stdout").read_text() == "hello\n"
    assert not (tmp_path / "dst" / "ckpt.bin").exists()


def test_bundle_ships_exactly_the_commit(tmp_path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "train.py").write_text("print('candidate')\n")
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "c"], cwd=repo, check=True)
    data, sha = git_bundle(repo)
    checkout_bundle(data, sha, tmp_path / "worker" / "ws")
    ws = tmp_path / "worker" / "ws"
    assert (ws / "train.py").read_text() == "print('candidate')\n"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ws, capture_output=True, text=True)
    assert head.stdout.strip() == sha
    # The temporary ref is gone from the driver's repo.
    refs = subprocess.run(["git", "for-each-ref"], cwd=repo, capture_output=True, text=True)
    assert "executor-ship" not in refs.stdout


@pytest.mark.parametrize("shared", [False, True], ids=["shipped", "shared-path"])
def test_baseline_through_ray_matches_local(local_ray, toy_env, tmp_path, shared) -> None:
    env = load_environment(toy_env)
    results, items = {}, {}
    for backend in ("local", "ray"):
        run_dir = tmp_path / backend
        req = RunRequest(env, "tiny", run_dir=run_dir, backend=backend, ray_shared=shared)
        store = Store(run_dir)
        try:
            results[backend] = asyncio.run(run_baseline(req, store, seeds=2))
            runs = store.runs(results[backend].candidate_id)
            items[backend] = [store.run_items(r["id"]) for r in runs]
        finally:
            store.close()
        assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    local, remote = results["local"], results["ray"]
    assert remote.status == "succeeded"
    # Same code, same seeds, same data: the same rewards, wherever they ran.
    assert [r.reward for r in remote.runs] == pytest.approx([r.reward for r in local.runs])
    # The per-item outcomes travel back from the worker with the outcome, intact.
    assert items["ray"] == items["local"] and all(i is not None for i in items["ray"])
    for run in remote.runs:
        artifacts = run.artifacts
        assert (artifacts / "logs" / "train.stdout").read_text().startswith("trained")
        assert (artifacts / "eval" / "result.json").is_file()
        assert (artifacts / "output" / "metrics.jsonl").is_file()
        assert not (artifacts / NOT_SHIPPED).exists()
        assert run.timings["train"] > 0


def test_cancelling_a_ray_run_kills_its_step_on_the_worker(local_ray, toy_env, tmp_path) -> None:
    from runner.backends import RunJob, RunSpec
    from runner.ray_backend import RayBackend
    from runner.workspace import BaselineRepo
    from tests.conftest import our_step_processes

    (toy_env / "repo" / "train.py").write_text(
        "import os, pathlib, time\n"
        "LR = 0.01\nSTEPS = 100\n"  # the manifest's knobs point here
        "pathlib.Path(os.environ['EXECUTOR_OUTPUT_DIR'], 'started').write_text('1')\n"
        "time.sleep(120)\n"
    )
    env = load_environment(toy_env)
    baseline = BaselineRepo(tmp_path / "runs", env)
    ws = baseline.new_workspace(tmp_path / "runs" / "workspaces" / "w")
    backend = RayBackend(shared=True)  # shared: the worker's step writes under tmp_path
    job = RunJob(
        RunSpec(env, "tiny", seed=0),
        ws.path,
        tmp_path / "artifacts",
        expected_env=baseline.pinned_env_hashes,
    )
    forced: list[bool] = []  # each ray.cancel's `force`, recorded around the real call

    class RecordCancels:
        def __getattr__(self, name: str) -> object:
            return getattr(ray, name)

        def cancel(self, ref: object, force: bool = False) -> None:
            forced.append(force)
            ray.cancel(ref, force=force)

    backend.ray = RecordCancels()

    async def go() -> None:
        task = asyncio.create_task(backend.run(job))
        started = tmp_path / "artifacts" / "output" / "started"
        for _ in range(300):
            if started.exists():
                break
            await asyncio.sleep(0.1)
        assert started.exists(), "the step never started on the worker"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    # The worker took the interrupt (no forced kill), and its sandbox killed the step before
    # the cancelled run returned.
    assert forced == [False]
    assert our_step_processes(tmp_path) == []
    ws.remove()
