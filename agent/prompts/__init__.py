"""Prompt templates live here as markdown files; `render` fills their {{placeholders}}."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_DIR = Path(__file__).parent
_SLOT = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


@cache
def template(name: str) -> str:
    return (_DIR / f"{name}.md").read_text()


def render(name: str, **values: str) -> str:
    """Fill every {{slot}} of template `name`; a missing or unused value is a bug, so it raises."""
    text = template(name)
    slots = set(_SLOT.findall(text))
    if missing := slots - values.keys():
        raise KeyError(f"prompt {name!r} needs {sorted(missing)}")
    if extra := values.keys() - slots:
        raise KeyError(f"prompt {name!r} has no slot for {sorted(extra)}")
    # One pass, so a value that itself contains {{...}} (code can) is never re-expanded.
    return _SLOT.sub(lambda m: values[m.group(1)], text)
