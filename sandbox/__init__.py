"""Isolation: run one step of a candidate in a sandbox kind chosen by name: local, docker, or
one a package adds (entry-point group executor.sandboxes; see docs/architecture.md).

Public surface: `get_sandbox`, `sandbox_kinds`, `Sandbox`, `Step`, `StepResult`, `Limits`,
`RunLayout`, `RunStatus`, `SandboxUnavailable`.
"""

from sandbox import docker_sandbox as _docker  # noqa: F401  (registers "docker")
from sandbox import local as _local  # noqa: F401  (registers "local")
from sandbox.base import Limits, RunLayout, RunStatus, Sandbox, SandboxUnavailable, Step, StepResult
from sandbox.registry import get_sandbox, sandbox_kinds

__all__ = [
    "Limits",
    "RunLayout",
    "RunStatus",
    "Sandbox",
    "SandboxUnavailable",
    "Step",
    "StepResult",
    "get_sandbox",
    "sandbox_kinds",
]
