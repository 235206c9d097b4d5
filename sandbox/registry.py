"""Sandbox kinds registered by name, so `--sandbox NAME` and later kinds plug in uniformly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.base import Sandbox, SandboxUnavailable

_KINDS: dict[str, Callable[..., Sandbox]] = {}


def register(kind: str) -> Callable[[type[Sandbox]], type[Sandbox]]:
    def deco(cls: type[Sandbox]) -> type[Sandbox]:
        cls.kind = kind
        _KINDS[kind] = cls
        return cls

    return deco


def sandbox_kinds() -> list[str]:
    return sorted(_KINDS)


def get_sandbox(kind: str, **options: Any) -> Sandbox:
    if kind not in _KINDS:
        raise SandboxUnavailable(
            f"unknown sandbox kind {kind!r}; available here: {', '.join(sandbox_kinds())}"
        )
    return _KINDS[kind](**options)
