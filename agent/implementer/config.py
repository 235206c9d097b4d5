"""How ideas are implemented: tries, parallel samples, the prompt budget and sampling.

Its own light module: the CLI builds its options from these fields at startup, and importing
the implementer itself pulls in git, the sandbox and the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.settings import setting


@dataclass(frozen=True)
class ImplementerConfig:
    attempts: int = setting(3, "LLM tries per sample, revisions included.", min=1)
    samples: int = setting(1, "Independent implementations in parallel; first valid wins.", min=1)
    context_tokens: int = setting(100_000, "Prompt budget for task + editable files, in tokens.")
    # "cli": False: set from code only, `executor run-idea` does not offer them.
    max_tokens: int = setting(16_384, "Longest LLM answer, in tokens.", cli=False)
    temperature: float = setting(0.7, "LLM sampling temperature.", cli=False)
