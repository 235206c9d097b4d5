"""How ideas are implemented: tries, parallel samples, the prompt budget and sampling.

Its own light module: the CLI builds its options from these fields at startup, and importing
the implementer itself pulls in git, the sandbox and the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImplementerConfig:
    attempts: int = field(
        default=3, metadata={"help": "LLM tries per sample, revisions included.", "min": 1}
    )
    samples: int = field(
        default=1,
        metadata={"help": "Independent implementations in parallel; first valid wins.", "min": 1},
    )
    context_tokens: int = field(
        default=100_000, metadata={"help": "Prompt budget for task + editable files, in tokens."}
    )
    # "cli": False: set from code only, `executor run-idea` does not offer them.
    max_tokens: int = field(
        default=16_384, metadata={"help": "Longest LLM answer, in tokens.", "cli": False}
    )
    temperature: float = field(
        default=0.7, metadata={"help": "LLM sampling temperature.", "cli": False}
    )
