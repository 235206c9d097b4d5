"""The HTML report pages' shared parts: the base template and stylesheet, rendering a page
through jinja2 (every value escaped), writing it whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.templating import html_environment

# base.html (head, inlined report.css, title and settings table) and chart.html live here.
TEMPLATES = Path(__file__).parent / "templates"


def render_page(folder: Path, name: str, **values: Any) -> str:
    """Template `name` from `folder`, which may extend or include the shared templates."""
    return html_environment(folder, TEMPLATES).get_template(name).render(values)


def write_page(out: Path, html: str) -> Path:
    """Write `html` to `out` whole or not at all (a reader never sees half a report)."""
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html)
    tmp.replace(out)
    return out
