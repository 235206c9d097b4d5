"""Named plugins: one `Registry` per kind (sandbox kinds, backends, ideators, LLM providers,
environments), filled by the project's own modules and by installed packages.

A name is found, in this order, among
- entries registered in code: `@REGISTRY.register("name")` on a factory, or
  `REGISTRY.declare("name", "package.module:Object")` for one imported on first use;
- entry points of the registry's group, read once, on the first lookup:
  `[project.entry-points."executor.sandboxes"] mykind = "mypkg.sandbox:MySandbox"`;
- and, without any registration, a direct `package.module:Object` in place of the name.

This package imports nothing of the project: every other layer may use it.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["PluginError", "Registry", "is_object_ref"]

T = TypeVar("T")

# "package.module" or "package.module:Object.attr": what importlib.metadata.EntryPoint loads.
_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_REF = re.compile(rf"{_DOTTED}(?::{_DOTTED})?")


class PluginError(ValueError):
    """An unknown name, or a plugin that does not load; the message is one line."""


def is_object_ref(text: str) -> bool:
    """True for "package.module:Object" (the form of an entry point's value)."""
    return ":" in text and _REF.fullmatch(text) is not None


def _one_line(text: str) -> str:
    return " ".join(text.split())


class Registry(Generic[T]):
    """Name -> factory of one kind of plugin.

    what: the kind in messages ("sandbox kind"); group: the entry-point group of third
    parties; error: the exception a bad name raises (the layer's own user-facing error);
    adapt: turns a loaded object into a T, raising TypeError/ValueError when it is not one.
    """

    def __init__(
        self,
        what: str,
        group: str,
        *,
        error: Callable[[str], Exception] = PluginError,
        adapt: Callable[[Any], T] | None = None,
    ) -> None:
        self.what = what
        self.group = group
        self._error = error
        self._adapt = adapt
        self._loaded: dict[str, T] = {}
        self._declared: dict[str, str] = {}  # name -> "module:Object", imported on first get
        self._installs: dict[str, str] = {}  # name -> what to install when its import fails
        self._entry_points: dict[str, importlib.metadata.EntryPoint] | None = None
        self._from_entry_points: set[str] = set()  # names in _loaded that came from them

    # -- filling -----------------------------------------------------------------------------

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@REGISTRY.register("name")` on a factory (a class or a function)."""

        def deco(factory: T) -> T:
            self._loaded[name] = factory
            return factory

        return deco

    def declare(self, name: str, ref: str, *, install: str | None = None) -> None:
        """`name` is `ref` ("package.module:Object"), imported on first use; `install` is
        what to `pip install` when that import fails for want of a package."""
        self._declared[name] = ref
        if install is not None:
            self._installs[name] = install

    def refresh(self) -> None:
        """Forget what was read from entry points and loaded from them (after installs)."""
        for name in self._from_entry_points:
            self._loaded.pop(name, None)
        self._from_entry_points.clear()
        self._entry_points = None

    # -- lookup ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every known name: registered, declared and from entry points."""
        return sorted({*self._loaded, *self._declared, *self._found()})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def get(self, name: str) -> T:
        """The factory called `name`, or the object a "package.module:Object" names."""
        if name in self._loaded:
            return self._loaded[name]
        if name in self._declared:
            ref, source = self._declared[name], "declared"
        elif name in self._found():
            ref, source = self._found()[name].value, f"entry point of {self.group}"
            self._from_entry_points.add(name)
        elif is_object_ref(name):
            return self.load(name)
        else:
            raise self.unknown(name)
        factory = self._load(name, ref, source)
        self._loaded[name] = factory
        return factory

    def load(self, ref: str) -> T:
        """The object "package.module[:Object]" names, given directly instead of a name."""
        return self._load(ref, ref, "given")

    def unknown(self, name: str, *, more: str = "") -> Exception:
        """The one-line error for a name that is not here, listing the ones that are."""
        known = ", ".join(self.names()) or "none"
        return self._error(
            _one_line(
                f"unknown {self.what} {name!r}; known: {known}{more} (or package.module:Object)"
            )
        )

    def split(self, spec: str) -> tuple[str, str]:
        """ "NAME[:REST]" or "package.module:Object[:REST]" -> (NAME or the reference, REST)."""
        head, _, rest = spec.partition(":")
        head = head.strip()
        if head not in self and ":" in spec:
            obj, _, after = rest.partition(":")
            if is_object_ref(f"{head}:{obj.strip()}"):
                return f"{head}:{obj.strip()}", after
        return head, rest

    # -- internals ---------------------------------------------------------------------------

    def _found(self) -> dict[str, importlib.metadata.EntryPoint]:
        if self._entry_points is None:
            found: dict[str, importlib.metadata.EntryPoint] = {}
            for ep in importlib.metadata.entry_points(group=self.group):
                found.setdefault(ep.name, ep)  # two packages with one name: the first wins
            self._entry_points = found
        return self._entry_points

    def _load(self, name: str, ref: str, source: str) -> T:
        """Import `ref` ("module" or "module:Object") and adapt it; one-line errors. A value
        that is no import reference (an entry point naming a folder) goes to `adapt` as is."""
        if self._adapt is not None and _REF.fullmatch(ref) is None:
            return self._adapted(name, ref, source, ref)
        try:
            obj = importlib.metadata.EntryPoint(name=name, value=ref, group=self.group).load()
        except ModuleNotFoundError as e:
            module = ref.partition(":")[0]
            if name not in self._installs and (module + ".").startswith(f"{e.name}."):
                raise self._error(f"{self.what} {name!r}: no module named {e.name!r}") from None
            install = self._installs.get(name) or e.name
            raise self._error(
                f"{self.what} {name!r} ({source}: {ref}) needs the module {e.name!r}, "
                f"which is not installed: pip install {install}"
            ) from None
        except (ImportError, AttributeError) as e:
            raise self._error(
                _one_line(f"{self.what} {name!r} ({source}) does not load from {ref}: {e}")
            ) from None
        if self._adapt is None:
            return obj  # type: ignore[no-any-return]
        return self._adapted(name, ref, source, obj)

    def _adapted(self, name: str, ref: str, source: str, obj: Any) -> T:
        assert self._adapt is not None
        try:
            return self._adapt(obj)
        except (TypeError, ValueError) as e:
            raise self._error(
                _one_line(f"{self.what} {name!r} ({source}: {ref}) is not one: {e}")
            ) from None
