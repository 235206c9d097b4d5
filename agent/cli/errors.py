"""How the CLI fails: one `error: …` line on stderr and an exit code, never a traceback.

Exit codes: 1 the work did not succeed (or an LLM call failed); 2 bad input; 3 an internal
error (EXECUTOR_DEBUG=1 shows its traceback); 130 interrupted.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

F = TypeVar("F", bound=Callable[..., Any])
err = Console(stderr=True)


class UsageError(Exception):
    """Bad input: exit 2 with the message."""


def _bad_input_errors() -> tuple[type[BaseException], ...]:
    from agent.implementer.context import ContextTooLarge
    from agent.implementer.edits import EditParseError
    from agent.llm import MissingKeyError
    from agent.store import StoreError
    from environments import ManifestError
    from runner.workspace import StaleRunDir
    from sandbox import SandboxUnavailable

    return (
        UsageError,
        ManifestError,
        MissingKeyError,
        EditParseError,
        StoreError,
        SandboxUnavailable,
        ContextTooLarge,
        StaleRunDir,
    )


def one_line_errors(fn: F) -> F:
    """Known errors become `error: …` on stderr and an exit code; nothing else leaks."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from agent.llm import LLMError

        bad_input = _bad_input_errors()
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except bad_input as e:
            error(first_line(e))
            raise typer.Exit(2) from None
        except LLMError as e:
            error(first_line(e))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]: the store records what finished")
            raise typer.Exit(130) from None
        except Exception as e:
            if os.environ.get("EXECUTOR_DEBUG"):
                raise
            err.print(
                f"[red]internal error:[/red] {type(e).__name__}: {first_line(e)} "
                "(set EXECUTOR_DEBUG=1 for the traceback, and please report it)",
                highlight=False,
            )
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]


def error(message: str) -> None:
    """One `error: …` line on stderr, never wrapped (scripts grep it)."""
    err.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)


def warning(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)


def first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]
