"""What the implementer shows the LLM: the task statement and every editable file."""

from __future__ import annotations

from pathlib import Path

from environments import Environment

# Characters per token for code and English: close enough to budget with, no tokenizer needed.
CHARS_PER_TOKEN = 4
_FENCE_LANG = {".py": "python", ".toml": "toml", ".md": "markdown", ".sh": "bash", ".json": "json"}


class ContextTooLarge(ValueError):
    pass


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def render_files(root: Path, rels: list[str]) -> str:
    """Files as `### path` + a fenced block each; a deleted file is said to be deleted."""
    parts = []
    for rel in rels:
        path = root / rel
        if not path.is_file():
            parts.append(f"### {rel}\n(deleted)")
            continue
        lang = _FENCE_LANG.get(path.suffix, "")
        text = path.read_text(errors="replace")
        fence = "````" if "```" in text else "```"
        parts.append(f"### {rel}\n{fence}{lang}\n{text.rstrip()}\n{fence}")
    return "\n\n".join(parts)


def editable_context(env: Environment, budget_tokens: int) -> str:
    """All editable files, or ContextTooLarge with what to do when they exceed the budget.

    A file that resolves outside the repo (a symlink) is left out: the LLM must never be shown
    eval-only data, and the repo is the only place its edits may land anyway.
    """
    repo = env.repo.resolve()
    rels = [r for r in env.editable_files() if (env.repo / r).resolve().is_relative_to(repo)]
    files = render_files(env.repo, rels)
    tokens = estimate_tokens(files) + estimate_tokens(env.task_text)
    if tokens > budget_tokens:
        raise ContextTooLarge(
            f"environment {env.name!r}: the task and editable files take ~{tokens} tokens, over "
            f"the {budget_tokens}-token context budget; narrow `editable` in env.toml or raise "
            "--context-tokens"
        )
    return files
