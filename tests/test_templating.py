"""Prompts and pages through jinja2 (agent/templating.py).

Every prompt renders byte for byte as the regex engine it replaced did (the LLM answer caches
key on the request, the scripted-LLM tests compare prompts); a missing slot raises; text from a
model or a log lands in a report escaped.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from agent.ideator_rl.html_report import render_training_report
from agent.ideator_rl.records import Records, SampleRecord
from agent.pages import TEMPLATES, render_page
from agent.pages.svg import bar_chart, line_chart
from agent.search.archive import CONFIRM_SEED, Archive
from agent.search.config import SearchConfig
from agent.search.confirm import TABLE, choose_finalists, load_table
from agent.search.html_report import render_report
from agent.store import Store
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


HOSTILE_IDEA = "<script>alert('pwned')</script> & \"quoted\" <img src=x onerror=alert(1)>"


class _Text(HTMLParser):
    """The page's elements and text as a browser parses them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parsed(html: str) -> _Text:
    page = _Text()
    page.feed(html)
    return page


def _search_store(run_dir: Path) -> Store:
    """A search of one hostile idea: implemented, screened (its log hostile too), and
    confirmed with the baseline on two seeds, its confirmation table stored."""
    store = Store(run_dir)
    archive = Archive(store)
    metric = {"name": "val_mse", "direction": "minimize"}
    settings = {"ideator": "<u>ideator</u>", "rerun_top": 1, "rerun_seeds": 2}
    search_id = archive.start("toy", "hash", "tiny", settings, metric)
    (idea_id,) = archive.record_epoch(
        search_id, 0, [(HOSTILE_IDEA, "fresh", "x", {})], "toy", "hash", "tiny"
    )
    cand = store.add_candidate(idea_id, 0, "patch", "abc")
    store.finish_candidate(cand, "validated", diff="-x = 1 < 2\n+x = 2 > 1 && '<script>'\n")
    base_idea = store.add_idea("baseline", "toy", "hash", "tiny", "baseline")
    base = store.add_candidate(base_idea, 0, "baseline", "abc")
    archive.set_baseline(search_id, base)
    artifacts = run_dir / "artifacts" / "run1"
    (artifacts / "logs").mkdir(parents=True)
    (artifacts / "logs" / "train.stderr").write_text(f"step 1\n{HOSTILE_IDEA}\n")
    runs = [(cand, 0, "screen", 0.5), (cand, CONFIRM_SEED, "confirm", 0.4)]
    runs += [(cand, CONFIRM_SEED + 1, "confirm", 0.3), (base, CONFIRM_SEED, "confirm", 0.9)]
    runs += [(base, CONFIRM_SEED + 1, "confirm", 0.8)]
    for n, (who, seed, split, mse) in enumerate(runs):
        store.start_run(who, "tiny", seed, "local", artifacts, f"run-{n}", split=split)
        store.finish_run(
            f"run-{n}",
            "succeeded",
            reason=None,
            metrics={"val_mse": mse},
            flags=[],
            reward=1 / (1 + mse),
            timings={},
        )
    archive.set_status(idea_id, "succeeded")
    choose_finalists(archive, search_id, SearchConfig(**settings))
    table = load_table(store, search_id)
    store.save_search_table(search_id, TABLE, table.canonical(), table.sha256())
    archive.finish(search_id, "done")
    return store


def test_a_hostile_idea_is_escaped_in_the_search_report(tmp_path: Path) -> None:
    html = render_report(_search_store(tmp_path))
    assert "<script" not in html and "<img" not in html and "<u>" not in html
    page = _parsed(html)
    assert not {"script", "img", "u"} & set(page.tags)
    text = "".join(page.text)
    # The idea, its diff and its log reach the reader as text, whole: in the confirmation
    # table's and the idea table's folded rows.
    assert text.count(HOSTILE_IDEA) == 4
    assert "+x = 2 > 1 && '<script>'" in text and "<u>ideator</u>" in text
    assert html.count("<svg") == 5 and "difference [95% CI]" in html


def test_a_hostile_idea_is_escaped_in_the_training_report(tmp_path: Path) -> None:
    store = Store(tmp_path)
    records = Records(store)
    config = {
        "model": "<u>m</u>",
        "implementer": "hparam",
        "steps": 1,
        "group_size": 1,
        "reward": "execution",
        "diversity_weight": 0,
        "novelty_weight": 0,
        "length_bonus": 0,
    }
    tid = records.start("toy", "hash", "tiny", config)
    sample = SampleRecord(
        0, 0, f"Idea: {HOSTILE_IDEA}", 0, 9, HOSTILE_IDEA, None, "failed", "x", False, 0, 0, {}
    )
    records.record_step(tid, 1, [sample], {"mean_reward": 0.0})
    html = render_training_report(store)
    assert "<script" not in html and "<img" not in html and "<u>" not in html
    page = _parsed(html)
    assert not {"script", "img", "u"} & set(page.tags)
    text = "".join(page.text)
    assert text.count(HOSTILE_IDEA) == 2 and "<u>m</u>" in text


def test_chart_labels_are_escaped() -> None:
    chart = line_chart({"<script>s</script>": [(0, 1.0), (1, 2.0)]}, "<t&>", "x", "y")
    html = render_page(TEMPLATES, "chart.html", chart=chart)
    assert "<script" not in html and "&lt;t&amp;&gt;" in html
    bars = render_page(TEMPLATES, "chart.html", chart=bar_chart({"<i>": 1.0}, "t", "y"))
    assert "<i>" not in bars and "&lt;i&gt;" in bars
