"""The jinja2 environments every prompt and page goes through.

Prompts are plain text: nothing is escaped, a missing slot raises (StrictUndefined), and the
final newline is kept, so a rendered prompt is exactly the template with its slots filled (the
LLM answer caches key on it). Pages are HTML: every value is escaped unless it is marked safe,
so text from a model or a log cannot inject markup.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, meta


@cache
def text_environment(folder: Path) -> Environment:
    """The templates of `folder` as plain text."""
    return Environment(
        loader=FileSystemLoader(folder),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


@cache
def html_environment(*folders: Path) -> Environment:
    """The templates of `folders` (first match wins) as HTML, every value escaped."""
    return Environment(
        loader=FileSystemLoader(list(folders)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=True,
        # A block tag alone on its line leaves no blank line behind (templates stay readable).
        trim_blocks=True,
        lstrip_blocks=True,
    )


class Prompts:
    """The prompt templates `NAME.md` of one folder."""

    def __init__(self, folder: Path) -> None:
        self.env = text_environment(folder)
        self._slots: dict[str, frozenset[str]] = {}

    def slots(self, name: str) -> frozenset[str]:
        """The names template `name` reads."""
        if name not in self._slots:
            assert self.env.loader is not None
            source = self.env.loader.get_source(self.env, f"{name}.md")[0]
            self._slots[name] = frozenset(meta.find_undeclared_variables(self.env.parse(source)))
        return self._slots[name]

    def render(self, name: str, **values: Any) -> str:
        """Template `name` filled; a missing or unused value is a bug, so it raises."""
        if extra := values.keys() - self.slots(name):
            raise KeyError(f"prompt {name!r} has no slot for {sorted(extra)}")
        return self.env.get_template(f"{name}.md").render(values)
