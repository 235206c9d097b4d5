"""Answer grader for math-reasoning completions (GSM8K / MATH style).

Self-contained and standard-library only: the evaluator loads this file by path, and a
completion is untrusted text, so every step here is linear-time and never evaluates code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Grade", "extract_answer", "grade", "is_equivalent", "normalize", "to_number"]


@dataclass(frozen=True)
class Grade:
    """Outcome of grading one completion against a reference answer."""

    answered: bool  # a final answer could be extracted (else the completion abstains)
    correct: bool
    extracted: str | None  # the raw extracted answer text


# --- extraction -------------------------------------------------------------------------

_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_HASHES = re.compile(r"(?<!#)####(?!#)[ \t]*(?P<ans>[^\n]*)")
# Only the lead-in is matched, so a later phrase on the same line is not swallowed by an earlier.
_PHRASE = re.compile(r"\banswer\**\s*(?:is\b(?!')\s*:?|:)\**\s*", re.IGNORECASE)
# A "#### Step 2" line is a markdown heading, not a GSM8K answer marker.
_HEADING = re.compile(r"[*_\s]*[A-Za-z]{2,}")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def _brace_pairs(text: str) -> dict[int, int]:
    """Map each '{' to its matching '}' in one pass (escaped braces such as \\{ are skipped)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2  # \{ and \} are literal braces, not grouping
            continue
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            pairs[stack.pop()] = i
        i += 1
    return pairs


def _last_box(text: str) -> str | None:
    """Contents of the last complete \\boxed{...} (or \\boxed 5); None when there is none."""
    boxes = list(_BOX.finditer(text))
    if not boxes:
        return None
    pairs = _brace_pairs(text)  # one pass, so many unclosed boxes cannot cost quadratic time
    for box in reversed(boxes):
        j = box.end()
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] == "{":
            if j in pairs:
                return text[j + 1 : pairs[j]]
            continue  # truncated box: an earlier complete one still counts
        token = re.match(r"[^\s$]+", text[j:])
        if token:
            return token.group()
    return None


def _clip(text: str) -> str:
    """Cut a phrase answer at the end of its sentence and drop markdown emphasis."""
    return _SENTENCE_END.split(text, maxsplit=1)[0].strip().strip("*").strip()


def extract_answer(completion: str) -> str | None:
    """The final answer: last \\boxed{}, else last '#### x' line, else last 'answer is x'."""
    found = _last_box(completion)
    if found is None:
        marks = [m for m in _HASHES.finditer(completion) if not _HEADING.match(m["ans"])]
        if marks:
            found = _clip(marks[-1]["ans"])
    if found is None:
        phrases = list(_PHRASE.finditer(completion))
        if phrases:
            found = _clip(completion[phrases[-1].end() :].split("\n", 1)[0])
    if found is None or not found.strip():
        return None  # an empty box or marker is an abstention, not an answer
    return found.strip()


# --- normalization ----------------------------------------------------------------------

_WRAPPER = re.compile(r"\\(?:text|textbf|textit|textrm|textup|mathrm|mathbf|mathit|mbox)\s*\{")
_DROP = re.compile(
    r"\\(?:left|right)(?:\.|(?![A-Za-z]))"  # sizing commands (and the null delimiter \left.)
    r"|\\(?:displaystyle|q?quad|degree)(?![A-Za-z])|\\[,;:! ]|~"  # layout and spacing
    r"|\^\s*\{?\s*\\circ\s*\}?|\\circ(?![A-Za-z])|°|\\?%"  # degrees and percent signs
    r"|\\[()\[\]]|\\?\$"  # math delimiters and the currency sign
)
_UNITS = re.compile(
    r"(?<![a-z])(?:dollars?|cents?|percent|degrees?|(?:square\s+|sq\.?\s+)?units?)(?![a-z])",
    re.IGNORECASE,
)
_ASSIGN = re.compile(r"(?:[a-z]|\\[a-z]+)(?:_\{?[a-z0-9]+\}?)?=(?P<rhs>.+)")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _unwrap(s: str) -> str:
    """Drop \\text{...}-style wrappers but keep their contents, nested ones included."""
    pairs = _brace_pairs(s)  # one pass: deep nesting must not cost quadratic time
    drop: set[int] = set()
    for m in _WRAPPER.finditer(s):
        if m.end() - 1 in pairs:
            drop.update(range(m.start(), m.end()))
            drop.add(pairs[m.end() - 1])
    return "".join(ch for i, ch in enumerate(s) if i not in drop)


def _squeeze(match: re.Match[str]) -> str:
    """Whitespace vanishes except a single space between digits (a mixed number '1 1/2')."""
    s, i, j = match.string, match.start(), match.end()
    return " " if i > 0 and j < len(s) and s[i - 1].isdigit() and s[j].isdigit() else ""


def normalize(answer: str) -> str:
    """Canonical form of an answer string, for comparison and number parsing."""
    s = answer.strip().replace("\u2212", "-").replace("{,}", ",")
    s = _DROP.sub("", s)
    s = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", s)
    s = _unwrap(s)
    s = _UNITS.sub("", s)
    s = re.sub(r"\s+", _squeeze, s.strip())
    s = re.sub(r"\.+$", "", s).lower()
    if s.count("=") == 1 and (assign := _ASSIGN.fullmatch(s)):
        s = assign["rhs"]
    if _THOUSANDS.fullmatch(s):  # only a lone number: "(1,234)" stays an ordered pair
        s = s.replace(",", "")
    if choice := re.fullmatch(r"\(([a-z])\)", s):  # multiple choice "(B)" is just "b"
        s = choice[1]
    return s


# --- numbers ----------------------------------------------------------------------------

_MAX_EXP = 1000  # "1e999999999" must not build a gigantic integer
_DECIMAL = re.compile(
    r"(?P<base>\d+(?:\.\d*)?|\.\d+)(?:e(?P<e>[-+]?\d+)|\\times10\^\{?(?P<t>[-+]?\d+)\}?)?"
)
_SLASH = re.compile(r"(?:(?P<whole>\d+) )?(?P<num>\d+)/(?P<den>\d+)")
_TEX_FRAC = re.compile(
    r"(?P<whole>\d+)?\\frac(?:\{(?P<num>[-+]?\d+)\}|(?P<n1>\d))(?:\{(?P<den>\d+)\}|(?P<d1>\d))"
)


def _unsigned(body: str) -> Fraction | None:
    """Value of a sign-free numeric body, or None when it is not a plain rational."""
    if m := _DECIMAL.fullmatch(body):
        exp = int(m["e"] or m["t"] or 0)
        if abs(exp) > _MAX_EXP:
            return None
        return Fraction(m["base"]) * Fraction(10) ** exp
    m = _SLASH.fullmatch(body) or _TEX_FRAC.fullmatch(body)
    if not m:
        return None
    groups = m.groupdict()
    num = int(groups.get("num") or groups.get("n1") or 0)
    den = int(groups.get("den") or groups.get("d1") or 0)
    if den == 0:
        return None
    whole = int(m["whole"] or 0)
    frac = Fraction(num, den)
    # A mixed number's sign belongs to the whole: 1 1/2 is 3/2, never 1/2 - 1.
    return whole + frac if frac >= 0 or not whole else None


def to_number(answer: str) -> Fraction | None:
    """Exact rational value of an answer (int, decimal, fraction, mixed, 1e3), else None."""
    s = normalize(answer)
    sign = -1 if s.startswith("-") else 1
    body = s[1:] if s[:1] in "+-" else s
    try:
        value = _unsigned(body) if body else None
    except (ValueError, ZeroDivisionError):  # e.g. int() digit limit on absurdly long input
        return None
    return None if value is None else sign * value


def is_equivalent(pred: str, gold: str) -> bool:
    """Exact rational equality when both are numbers, else equality of normalized strings."""
    p, g = normalize(pred), normalize(gold)
    if not p or not g:
        return False
    a, b = to_number(p), to_number(g)
    if a is not None and b is not None:
        return a == b
    return p == g


def grade(completion: str, gold: str) -> Grade:
    """Extract the completion's final answer and compare it with the reference answer."""
    extracted = extract_answer(completion)
    if extracted is None or not normalize(extracted):
        return Grade(answered=False, correct=False, extracted=extracted)
    return Grade(answered=True, correct=is_equivalent(extracted, gold), extracted=extracted)
