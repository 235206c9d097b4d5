"""Sandbox kinds registered by name, with typed options: `--sandbox docker:network=bridge`."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from plugins import Registry
from sandbox.base import Sandbox, SandboxUnavailable


def _sandbox_class(obj: Any) -> type[Sandbox]:
    if not (isinstance(obj, type) and issubclass(obj, Sandbox)):
        raise TypeError(f"{obj!r} is not a subclass of sandbox.base.Sandbox")
    return obj


# Third parties add kinds under the entry-point group "executor.sandboxes".
SANDBOXES: Registry[type[Sandbox]] = Registry(
    "sandbox kind", "executor.sandboxes", error=SandboxUnavailable, adapt=_sandbox_class
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def register(kind: str) -> Any:
    def deco(cls: type[Sandbox]) -> type[Sandbox]:
        cls.kind = kind
        return SANDBOXES.register(kind)(cls)

    return deco


def sandbox_kinds() -> list[str]:
    return SANDBOXES.names()


def sandbox_options(kind: str) -> dict[str, Any]:
    """Option name -> its type, from the kind's constructor."""
    cls = SANDBOXES.get(kind)
    hints = typing.get_type_hints(cls.__init__)
    params = inspect.signature(cls.__init__).parameters
    return {name: hints.get(name, str) for name in params if name != "self"}


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """ "docker:image=x,network=bridge" -> ("docker", {"image": "x", "network": "bridge"});
    a kind may also be a class given as "package.module:Class[:KEY=VALUE,...]"."""
    kind, rest = SANDBOXES.split(spec)
    options: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise SandboxUnavailable(f"sandbox option {item!r} is not KEY=VALUE (in {spec!r})")
        options[key.strip()] = value.strip()
    return kind.strip(), options


def get_sandbox(spec: str, **options: Any) -> Sandbox:
    """A sandbox from "KIND[:KEY=VALUE,...]" plus keyword options (which win)."""
    kind, text_options = parse_spec(spec)
    types = sandbox_options(kind)
    merged: dict[str, Any] = {k: _coerce(kind, k, v, types) for k, v in text_options.items()}
    for key in options:
        if key not in types:
            raise _unknown_option(kind, key, types)
    merged.update(options)
    return SANDBOXES.get(kind)(**merged)


def _unknown_option(kind: str, key: str, types: dict[str, Any]) -> SandboxUnavailable:
    return SandboxUnavailable(
        f"sandbox {kind!r} has no option {key!r}; its options: {', '.join(types)}"
    )


def _coerce(kind: str, key: str, value: str, types: dict[str, Any]) -> Any:
    if key not in types:
        raise _unknown_option(kind, key, types)
    hint = types[key]
    wanted = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    target = wanted[0]
    try:
        if target is bool:
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError(value)
            return value.lower() in _TRUE
        return target(value)
    except (TypeError, ValueError):
        name = getattr(target, "__name__", str(target))
        raise SandboxUnavailable(
            f"sandbox option {key}={value!r} of {kind!r} must be a {name}"
        ) from None
