r"""The probes check_rewards.py calls each reward function on: (completion, reference) pairs.

Problems come from the environment's public generator (problems.py, a fixed public seed, not
the held-out draw), plus two with other answer notations; if the generator cannot be loaded,
fixed problems stand in. Each problem gives five completions:

- right:       its worked solution, ending `The answer is \boxed{A}.`;
- wrong:       the same with another answer boxed;
- unformatted: the right answer in free form, no box;
- empty:       "";
- long:        ~50k characters of junk full of `\boxed{`, braces and runs that make
               backtracking regexes explode, then the right solution.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROBE_SEED = 20_170  # public: any fixed seed will do
PROBLEMS = 6
KINDS = ("right", "wrong", "unformatted", "empty", "long")
LONG_CHARS = 50_000
# (question's answer, a wrong answer, the worked solution) in notations beyond integers.
EXTRA = (
    ("1234", "1243", "1000 + 234 = 1234. The answer is \\boxed{1,234}."),
    ("\\frac{3}{4}", "\\frac{4}{3}", "3 / 4 = 0.75. The answer is \\boxed{\\frac{3}{4}}."),
)
FALLBACK = (
    ("19", "21", "12 + 7 = 19. The answer is \\boxed{19}."),
    ("15", "14", "73 - 58 = 15. The answer is \\boxed{15}."),
    ("42", "48", "6 * 7 = 42. The answer is \\boxed{42}."),
    ("85", "86", "59 + 26 = 85. The answer is \\boxed{85}."),
    ("69", "96", "53 + 16 = 69. The answer is \\boxed{69}."),
    ("40", "4", "8 * 5 = 40. The answer is \\boxed{40}."),
)


def _generated() -> list[tuple[str, str, str]]:
    """PROBLEMS problems of the tiny generator: (answer, a wrong answer, solution)."""
    spec = importlib.util.spec_from_file_location("check_rewards_problems", HERE / "problems.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look the module up
    spec.loader.exec_module(module)
    out = []
    for p in module.make_problems(PROBLEMS, PROBE_SEED):
        answer = p["answer"]
        out.append((answer, str(int(answer) + 1 + len(answer)), p["solution"]))
    return out


def _junk(n: int) -> str:
    chunk = (
        "Let \\boxed{x} be {y}. Then {{\\boxed{ {1} + {2 }} and \\boxed{\\frac{a}{b}} "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa! {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{x "
        "}}}}}}}}}}}}}}}}}}}}}}}}}} \\boxed{ 1,234 } \\boxed{ $5 } \\boxed{ 10\\% } "
    )
    return (chunk * (n // len(chunk) + 1))[:n]


def make_probes() -> list[dict]:
    """Every probe: {label, problem, kind, completion, reference}."""
    try:
        problems = _generated()
    except Exception:  # the generator is gone or broken: the checker still works
        problems = list(FALLBACK)
    probes = []
    for k, (answer, wrong, solution) in enumerate([*problems, *EXTRA]):
        boxed = solution[solution.rindex("\\boxed{") :]  # "\boxed{A}."
        shown = boxed[len("\\boxed{") : -len("}.")]
        texts = {
            "right": solution,
            "wrong": solution.replace(boxed, f"\\boxed{{{wrong}}}."),
            "unformatted": solution.replace(boxed, f"{shown}."),
            "empty": "",
            "long": _junk(LONG_CHARS) + solution,
        }
        for kind in KINDS:
            probes.append(
                {
                    "label": f"p{k}:{kind}",
                    "problem": k,
                    "kind": kind,
                    "completion": texts[kind],
                    "reference": answer,
                }
            )
    return probes
