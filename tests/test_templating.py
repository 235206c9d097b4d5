"""Prompts and pages through jinja2 (agent/templating.py).

Every prompt renders byte for byte as the regex engine it replaced did (the LLM answer caches
key on the request, the scripted-LLM tests compare prompts); a missing slot raises; text from a
model or a log lands in a report escaped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from agent.templating import Prompts

AGENT = Path(__file__).parent.parent / "agent"
PROMPT_FOLDERS = [AGENT / "prompts", AGENT / "search" / "prompts", AGENT / "ideator_rl" / "prompts"]
PROMPT_FILES = sorted(p for folder in PROMPT_FOLDERS for p in folder.glob("*.md"))

# The engine the prompts went through before jinja2 (agent/prompts/__init__.py at 113a96b),
# kept as the reference the jinja2 rendering must equal.
_SLOT = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def old_render(text: str, values: dict[str, str]) -> str:
    return _SLOT.sub(lambda m: values[m.group(1)], text)


# Values that a template engine could mangle: its own syntax, markup, backslashes, blank and
# trailing lines, CRLF, non-ASCII. Each slot gets its own (suffixed by the slot's name).
HOSTILE = (
    "def f(x):\n    return {{ x }} + {% raw %} {# c #}\\n\r\n"
    "<script>alert('&')</script> — naïve ✓\n\n"
)


def test_every_prompt_file_is_found() -> None:
    names = {p.stem for p in PROMPT_FILES}
    assert {"implement", "implement_system", "revise_applied", "edit_format_help"} <= names
    assert {"ideate_fresh", "ideate_exploit", "ideate_explore", "ideate_system"} <= names
    assert {"ideator_rl", "ideator_rl_tiny"} <= names
    assert not any((AGENT / "prompts").glob("ideat*.md"))  # the ideators' prompts moved out


@pytest.mark.parametrize("path", PROMPT_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
@pytest.mark.parametrize("style", ["plain", "hostile", "empty"])
def test_prompt_renders_as_the_old_engine_did(path: Path, style: str) -> None:
    text = path.read_text()
    # The reference only holds for slot-only templates: a jinja2 statement or comment would
    # mean this comparison no longer covers the file.
    assert "{%" not in text and "{#" not in text
    slots = set(_SLOT.findall(text))
    values = {
        s: {"plain": f"the {s}", "hostile": f"{HOSTILE}{s}\n", "empty": ""}[style] for s in slots
    }
    new = Prompts(path.parent).render(path.stem, **values)
    assert new == old_render(text, values)
    assert new.endswith("\n") == text.endswith("\n")


def test_the_callers_render_the_same_prompts() -> None:
    from agent.ideator_rl.tiny_ideator import PROMPTS as rl_prompts
    from agent.prompts import render
    from agent.search.ideators import PROMPTS as search_prompts

    assert render("state_original") == (AGENT / "prompts" / "state_original.md").read_text()
    values = {"error": "E", "state": "S", "phase": "train"}
    expected = old_render((AGENT / "prompts" / "revise_applied.md").read_text(), values)
    assert render("revise_applied", **values) == expected
    system = (AGENT / "search" / "prompts" / "ideate_system.md").read_text()
    assert search_prompts.render("ideate_system") == system
    tiny = rl_prompts.render("ideator_rl_tiny", env="toy", metric="min loss", knobs="lr, steps")
    assert tiny == "Idea for toy (min loss). Knobs: lr, steps.\n"


def test_a_missing_slot_raises() -> None:
    from agent.prompts import render

    with pytest.raises(UndefinedError, match="idea"):
        render("implement", task="t", files="f")


def test_an_unused_value_raises() -> None:
    from agent.prompts import render

    with pytest.raises(KeyError, match="colour"):
        render("implement", task="t", files="f", idea="i", colour="red")
