"""Typer options generated from dataclass fields, so that each setting is declared once.

A field becomes the option `--field-name`, its help text from `metadata["help"]` (every field
must have one, as in TRL's configs). Other metadata keys: "flag" (another option name), "min",
"hidden", "show_default", and "cli": False for a field that code sets but the command line does
not offer. A `Literal[...]` type becomes a choice that typer validates and `--help` lists.

`with_options(config=Options(SearchConfig), ...)` gives a command the options of each bundle:
typer reads the command's `inspect.signature`, so the wrapper's `__signature__` lists every
bundle's fields followed by the command's own parameters, and the command is called with one
constructed object per bundle. A ValueError from a dataclass's own checks is bad input (exit 2).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

from agent.cli.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])
_OPTION_KEYS = ("min", "hidden", "show_default")


@dataclass(frozen=True)
class Options:
    """A dataclass whose fields a command offers as options: all of them, or a selection."""

    cls: type
    only: tuple[str, ...] | None = None
    without: tuple[str, ...] = ()

    def fields(self) -> Iterator[dataclasses.Field[Any]]:
        """The offered fields; a class's own before those it inherits, as `--help` lists them."""
        bases = [b for b in self.cls.__mro__[1:] if dataclasses.is_dataclass(b)]
        inherited = {f.name for b in bases for f in dataclasses.fields(b)}
        for f in sorted(dataclasses.fields(self.cls), key=lambda f: f.name in inherited):
            if f.metadata.get("cli", True) is False or f.name in self.without:
                continue
            if self.only is None or f.name in self.only:
                yield f


def flag(f: dataclasses.Field[Any]) -> str:
    """The option name of a field: `--field-name` unless its metadata names another."""
    return str(f.metadata.get("flag", "--" + f.name.replace("_", "-")))


def option_parameter(owner: type, f: dataclasses.Field[Any]) -> inspect.Parameter:
    """The keyword parameter typer turns into the field's option."""
    if not f.metadata.get("help"):
        raise TypeError(f"{owner.__name__}.{f.name} has no help text in its metadata")
    hint = typing.get_type_hints(owner)[f.name]
    extra = {k: f.metadata[k] for k in _OPTION_KEYS if k in f.metadata}
    option = typer.Option(flag(f), help=f.metadata["help"], **extra)
    default: Any = inspect.Parameter.empty  # no default: a required option
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    return inspect.Parameter(
        f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[hint, option]
    )


def with_options(**bundles: Options) -> Callable[[F], F]:
    """Add each bundle's fields to the command's options; pass it the built objects by name."""

    def wrap(fn: F) -> F:
        hints = typing.get_type_hints(fn, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation), kind=p.KEYWORD_ONLY)
            for p in inspect.signature(fn).parameters.values()
            if p.name not in bundles
        ]
        fields = {name: [f.name for f in b.fields()] for name, b in bundles.items()}
        generated = [option_parameter(b.cls, f) for b in bundles.values() for f in b.fields()]
        params = generated + own
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            clash = sorted({n for n in names if names.count(n) > 1})
            raise TypeError(f"{fn.__name__}: options declared twice: {', '.join(clash)}")

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            built = {}
            for name, bundle in bundles.items():
                values = {field: kwargs.pop(field) for field in fields[name]}
                try:
                    built[name] = bundle.cls(**values)
                except ValueError as e:
                    raise UsageError(str(e)) from None
            return fn(**kwargs, **built)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.bundles = bundles  # type: ignore[attr-defined]  # read by the CLI tests
        return command  # type: ignore[return-value]

    return wrap
