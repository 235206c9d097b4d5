"""Reading ideas out of an ideator's answer.

The prompts ask for `<idea>` blocks; models also answer with a JSON list or a numbered
list, and all three are accepted. An answer with no idea in it raises `IdeaParseError`,
which the search records as a failed ideator call rather than an empty epoch.
"""

from __future__ import annotations

import json
import re

_TAGGED = re.compile(r"<idea>(.*?)</idea>", re.DOTALL | re.IGNORECASE)
_NUMBERED = re.compile(r"^\s{0,3}(?:\d+[.)]|[-*])\s+(?=\S)", re.MULTILINE)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
MIN_CHARS = 12  # shorter than this is a heading or a stray token, not an idea


class IdeaParseError(ValueError):
    """The answer held no idea in any accepted format."""


def parse_ideas(text: str) -> list[str]:
    """The ideas in `text`, in order, stripped; IdeaParseError if there are none."""
    for parse in (_tagged, _json_list, _numbered):
        ideas = [i for i in (" ".join(x.split()) for x in parse(text)) if len(i) >= MIN_CHARS]
        if ideas:
            return ideas
    head = " ".join(text.split())[:80]
    raise IdeaParseError(
        f"the ideator's answer holds no parseable idea (expected <idea>…</idea> blocks, a JSON "
        f"list or a numbered list); it began: {head!r}"
    )


def _tagged(text: str) -> list[str]:
    return _TAGGED.findall(text)


def _json_list(text: str) -> list[str]:
    for chunk in [*_FENCE.findall(text), text]:
        try:
            data = json.loads(chunk.strip())
        except ValueError:
            continue
        if isinstance(data, dict):
            data = data.get("ideas", [])
        if not isinstance(data, list):
            continue
        out = []
        for item in data:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict):
                title = str(item.get("title", "")).strip()
                body = str(item.get("idea") or item.get("description") or "").strip()
                out.append(f"{title}: {body}" if title and body else title or body)
        return out
    return []


def _numbered(text: str) -> list[str]:
    marks = list(_NUMBERED.finditer(text))
    if not marks:
        return []
    ends = [m.start() for m in marks[1:]] + [len(text)]
    return [text[m.end() : e] for m, e in zip(marks, ends, strict=True)]
