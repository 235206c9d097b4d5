"""The HTML report pages' shared parts: the stylesheet, filling a template, writing it whole."""

from __future__ import annotations

import re
from pathlib import Path

STYLESHEET = Path(__file__).parent / "templates" / "report.css"
_SLOT = re.compile(r"\{\{([a-z_]+)\}\}")


def fill(template: Path, values: dict[str, str]) -> str:
    """The template with each {{slot}} replaced, the shared stylesheet as {{style}}."""
    values = {"style": STYLESHEET.read_text(), **values}
    return _SLOT.sub(lambda m: values[m.group(1)], template.read_text())


def write_page(out: Path, html: str) -> Path:
    """Write `html` to `out` whole or not at all (a reader never sees half a report)."""
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html)
    tmp.replace(out)
    return out
