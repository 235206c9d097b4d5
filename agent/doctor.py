"""`executor doctor`: what this machine can run, each check with a verdict and what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

Check = dict[str, str]  # name, verdict (ok | warn | fail), detail


def _check(name: str, verdict: str, detail: str) -> Check:
    return {"name": name, "verdict": verdict, "detail": detail}


def check_python() -> Check:
    v = sys.version_info
    ok = v >= (3, 11)
    return _check(
        "python",
        "ok" if ok else "fail",
        f"{v.major}.{v.minor}.{v.micro}" + ("" if ok else ": executor needs Python 3.11 or newer"),
    )


def check_torch() -> Check:
    try:
        import torch
    except ImportError:
        return _check("torch", "fail", "not installed: run `make demo` or pip install torch")
    cuda = torch.version.cuda or "none"
    return _check("torch", "ok", f"{torch.__version__} (CUDA build: {cuda})")


def check_gpus() -> Check:
    from runner.scheduler import detect_gpus

    smi = shutil.which("nvidia-smi")
    ids = detect_gpus()
    if not ids:
        why = "no nvidia-smi" if smi is None else "no GPU listed by NVML/nvidia-smi"
        return _check("gpus", "warn", f"0 ({why}): only CPU (tiny) scales can run here")
    names = ""
    if smi is not None:
        try:
            names = (
                subprocess.run(
                    [smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader"],
                    capture_output=True,
                    text=True,
                    timeout=20,
                    check=True,
                )
                .stdout.strip()
                .replace("\n", "; ")
            )
        except (subprocess.SubprocessError, OSError):
            names = ""
    return _check("gpus", "ok", f"{len(ids)}" + (f": {names}" if names else ""))


def check_local_sandbox() -> Check:
    from sandbox.local import isolation_problem

    why = isolation_problem()
    if why is None:
        return _check(
            "local sandbox",
            "ok",
            "bubblewrap isolates steps: read-only system, eval-only data hidden, private /tmp "
            "and PID namespace, no network",
        )
    return _check(
        "local sandbox",
        "warn",
        f"not isolated ({why}): steps run as you with your files, eval-only data and network",
    )


def check_docker() -> Check:
    from sandbox import SandboxUnavailable
    from sandbox.docker_sandbox import docker_client, our_containers
    from sandbox.images import BASE_IMAGE

    try:
        client = docker_client()
        version = client.version().get("Version", "?")
    except SandboxUnavailable as e:
        return _check("docker", "warn", str(e))
    try:
        client.images.get(BASE_IMAGE)
        base = f"base image {BASE_IMAGE} present"
    except Exception:
        base = f"no {BASE_IMAGE} (scripts/docker_engine.sh builds it)"
    ours = len(our_containers(client))
    return _check("docker", "ok", f"engine {version}; {base}; {ours} executor containers running")


def check_ray() -> Check:
    try:
        import ray
    except ImportError:
        return _check("ray", "warn", "not installed: pip install 'ray>=2.9' for --backend ray")
    address = os.environ.get("RAY_ADDRESS")
    where = f"RAY_ADDRESS={address}" if address else "pass --ray-address, or a local Ray starts"
    return _check("ray", "ok", f"{ray.__version__}: --backend ray available ({where})")


def check_ideator_rl() -> Check:
    """train-ideator needs TRL and PEFT; vLLM only speeds up generation on a GPU."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for package in ("trl", "peft", "vllm"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    missing = [p for p in ("trl", "peft") if found[p] is None]
    if missing:
        return _check("ideator-rl", "fail", f"pip install {' '.join(missing)} for train-ideator")
    vllm = (
        f"vLLM {found['vllm']}: generation on a GPU uses it"
        if found["vllm"]
        else "no vLLM: generation uses HF generate (pip install vllm on a GPU machine for speed)"
    )
    return _check("ideator-rl", "ok", f"TRL {found['trl']}, PEFT {found['peft']}; {vllm}")


def check_cgroups() -> Check:
    from sandbox.cgroups import StepCgroup

    group = StepCgroup.create(memory_bytes=1 << 30, pids=64)
    if group is None:
        return _check(
            "cgroups",
            "warn",
            "not writable here: the local sandbox limits memory and processes with rlimits "
            "(which root ignores) and cannot catch a step that leaves its process group",
        )
    group.remove()
    kind = "v2" if group.v2 else "v1"
    return _check("cgroups", "ok", f"{kind}: local steps get memory and process limits")


def check_git() -> Check:
    git = shutil.which("git")
    if git is None:
        return _check("git", "fail", "git not found: install git (candidates are git commits)")
    out = subprocess.run([git, "--version"], capture_output=True, text=True).stdout.strip()
    return _check("git", "ok", out)


def check_keys() -> list[Check]:
    checks = []
    for var, use in (("ANTHROPIC_API_KEY", "anthropic:MODEL"), ("OPENAI_API_KEY", "openai:MODEL")):
        if os.environ.get(var):
            checks.append(_check(var, "ok", f"set: {use} can be used"))
        else:
            checks.append(_check(var, "warn", f"not set: export it to use --llm {use}"))
    for var in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
        if os.environ.get(var):
            checks.append(_check(var, "ok", os.environ[var]))
    return checks


CHECKS: list[Callable[[], Check]] = [
    check_python,
    check_torch,
    check_gpus,
    check_local_sandbox,
    check_docker,
    check_ray,
    check_ideator_rl,
    check_cgroups,
    check_git,
]


def run_checks() -> list[dict[str, Any]]:
    return [c() for c in CHECKS] + check_keys()
