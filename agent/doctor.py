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
        "python", "ok" if ok else "fail",
        f"{v.major}.{v.minor}.{v.micro}" + ("" if ok else ": executor needs Python 3.11 or newer"),
    )  # fmt: skip


def check_torch() -> Check:
    try:
        import torch
    except ImportError:
        return _check("torch", "fail", "not installed: run `make demo` or pip install torch")
    cuda = torch.version.cuda or "none"
    return _check("torch", "ok", f"{torch.__version__} (CUDA build: {cuda})")


def check_gpus() -> Check:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return _check("gpus", "warn", "no nvidia-smi: only CPU (tiny) scales can run here")
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout.strip()  # fmt: skip
    except (subprocess.SubprocessError, OSError) as e:
        return _check("gpus", "warn", f"nvidia-smi failed ({e}): is the driver loaded?")
    gpus = [line for line in out.splitlines() if line.strip()]
    if not gpus:
        return _check("gpus", "warn", "nvidia-smi lists no GPU: only CPU scales can run")
    return _check("gpus", "ok", f"{len(gpus)}: " + "; ".join(gpus))


def check_docker() -> Check:
    try:
        import docker
    except ImportError:
        return _check("docker", "warn", "python package `docker` missing: pip install docker")
    try:
        client = docker.from_env(timeout=5)
        version = client.version().get("Version", "?")
        client.close()
    except Exception as e:  # the SDK raises many kinds; any means "no usable engine"
        first = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        return _check(
            "docker", "warn",
            f"no engine reachable ({first}): start dockerd to use --sandbox docker; "
            "--sandbox local works without it",
        )  # fmt: skip
    return _check("docker", "ok", f"engine {version}")


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


CHECKS: list[Callable[[], Check]] = [check_python, check_torch, check_gpus, check_docker, check_git]


def run_checks() -> list[dict[str, Any]]:
    return [c() for c in CHECKS] + check_keys()
