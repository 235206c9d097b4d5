"""The idea in a completion: its thinking kept out, so only the idea is executed and judged.

Reasoning models write `<think>…</think>` before answering (or only `…</think>`, when the chat
template opens the thinking in the prompt); our prompt asks for the idea after an `Idea:` line.
A completion whose thinking never closes has no idea (it was cut off while thinking) and earns
the failure reward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)
_OPEN_THINK = re.compile(r"<think>", re.IGNORECASE)
_CLOSE_THINK = re.compile(r"</think>", re.IGNORECASE)
_IDEA_LABEL = re.compile(r"^[\s*#_]*idea[*_]*\s*:[*_]*\s*", re.IGNORECASE | re.MULTILINE)
MAX_IDEA_CHARS = 4000  # an idea, not an essay: longer answers are cut here


@dataclass(frozen=True)
class Extracted:
    idea: str  # "" when the completion holds none
    thinking: str
    problem: str | None  # why there is no idea, else None


def completion_text(completion: Any) -> str:
    """TRL passes plain strings, or for chat models a list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


def extract_idea(completion: Any) -> Extracted:
    text = completion_text(completion)
    thinking = "\n".join(m.strip() for m in _THINK.findall(text))
    answer = _THINK.sub("", text)
    # A closing tag with no opening one: the chat template opened the thinking in the prompt
    # (as R1-style templates do), so everything before the last close was thinking.
    closes = list(_CLOSE_THINK.finditer(answer))
    if closes and not _OPEN_THINK.search(answer[: closes[-1].start()]):
        thinking = "\n".join(p for p in (thinking, answer[: closes[-1].start()].strip()) if p)
        answer = answer[closes[-1].end() :]
    if start := _OPEN_THINK.search(answer):  # opened, never closed: cut off while thinking
        thinking = (thinking + "\n" + answer[start.end() :]).strip()
        return Extracted("", thinking, "the completion ended inside its thinking")
    label = _IDEA_LABEL.search(answer)
    if label is not None:
        answer = answer[label.end() :]
    idea = answer.strip()[:MAX_IDEA_CHARS].strip()
    if not idea:
        return Extracted("", thinking, "the completion holds no idea")
    return Extracted(idea, thinking, None)
