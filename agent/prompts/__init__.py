"""The implementer's prompt templates: markdown files in jinja2 syntax, rendered as plain text."""

from __future__ import annotations

from pathlib import Path

from agent.templating import Prompts

PROMPTS = Prompts(Path(__file__).parent)
render = PROMPTS.render
