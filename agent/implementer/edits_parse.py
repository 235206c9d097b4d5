"""Parsing half of :mod:`agent.implementer.edits`: text from an LLM -> a list of Edit.

Accepts SEARCH/REPLACE blocks and unified diffs, mixed, inside prose and ``` fences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from agent.prompts import render

SEARCH_REPLACE = "search_replace"
UNIFIED_DIFF = "unified_diff"
EditKind = Literal["replace", "create", "delete", "hunk"]


@dataclass(frozen=True)
class Edit:
    """One edit. ``search``/``replace`` are "\\n"-separated; a missing final newline is
    significant only for diff hunks (``\\ No newline at end of file``)."""

    path: str  # relative, posix, as written by the author
    kind: EditKind  # replace: SEARCH/REPLACE; hunk: diff hunk; create/delete: whole file
    search: str  # old text ("" for create)
    replace: str  # new text
    source: str  # SEARCH_REPLACE | UNIFIED_DIFF
    line_hint: int | None = None  # old start line of a hunk; only breaks ties


class EditParseError(ValueError):
    """The text holds no recognizable edit, or a malformed one."""


# Shown with every parse error, so the LLM sees the formats again (a prompt, so a template).
FORMAT_HELP = render("edit_format_help").rstrip()

# LLMs miscount marker characters, so 5-9 are accepted.
_SEARCH_RE = re.compile(r"^\s*<{5,9}\s*SEARCH\s*$")
_DIVIDER_RE = re.compile(r"^\s*={5,9}\s*$")
_REPLACE_RE = re.compile(r"^\s*>{5,9}\s*REPLACE\s*$")
_FENCE_RE = re.compile(r"^\s*(`{3,}|~{3,})[\w+.#-]*\s*$")
# Counts are optional: the hunk's extent is read from its lines, never from the header.
_HUNK_RE = re.compile(r"^@@\s*(?:-(\d+)(?:,\d+)?\s+\+\d+(?:,\d+)?)?\s*@@")
_LABEL_RE = re.compile(r"^(?:#+\s+|(?:file|filename|path)\s*:\s*)", re.IGNORECASE)
_BACKTICKED_RE = re.compile(r"`([^`\s]+)`")


class _Malformed(Exception):
    def __init__(self, message: str, resume: int | None = None) -> None:
        super().__init__(message)
        self.resume = resume  # where to go on scanning, so one error is reported once


def parse_edits(text: str) -> list[Edit]:
    """Extract every SEARCH/REPLACE block and unified-diff hunk from ``text``, in order."""
    lines = text.replace("\r\n", "\n").split("\n")
    edits: list[Edit] = []
    problems: list[str] = []
    i = 0
    prev_end = 0  # the path look-back must not reach into the previous edit
    while i < len(lines):
        line = lines[i]
        try:
            if _SEARCH_RE.match(line):
                last_path = edits[-1].path if edits else None
                edit, i = _parse_block(lines, i, prev_end, last_path)
                edits.append(edit)
                prev_end = i
                continue
            if _is_diff_header(lines, i):
                new_edits, i = _parse_diff(lines, i)
                edits.extend(new_edits)
                prev_end = i
                continue
            if _REPLACE_RE.match(line):
                raise _Malformed(
                    f"line {i + 1}: '{line.strip()}' without a SEARCH marker before it"
                )
        except _Malformed as exc:
            problems.append(str(exc))
            if exc.resume is not None:
                i = exc.resume
                continue
        i += 1
    if problems:
        raise EditParseError("Malformed edit: " + "; ".join(problems) + "\n\n" + FORMAT_HELP)
    if not edits:
        raise EditParseError(
            "Found no edit in the text: no SEARCH/REPLACE block and no unified diff.\n\n"
            + FORMAT_HELP
        )
    return edits


def _parse_block(
    lines: list[str], i: int, prev_end: int, last_path: str | None
) -> tuple[Edit, int]:
    """Parse the SEARCH/REPLACE block whose SEARCH marker is ``lines[i]``; return the edit
    and the index of the line after its REPLACE marker."""
    path = _find_path(lines, prev_end, i) or last_path  # consecutive blocks may omit it
    if not path:
        raise _Malformed(f"line {i + 1}: no file path on the line before '<<<<<<< SEARCH'", i + 1)
    sections: list[list[str]] = [[], []]
    section, j = 0, i + 1
    while j < len(lines):
        line = lines[j]
        if _SEARCH_RE.match(line):  # the next block starts: parse it on its own
            break
        if section == 0 and _DIVIDER_RE.match(line):
            section = 1
        elif section == 0 and _REPLACE_RE.match(line):
            j += 1
            break
        elif section == 1 and _REPLACE_RE.match(line):
            search, replace = sections
            kind: EditKind = "replace" if search else "create"
            return Edit(path, kind, _join(search), _join(replace), SEARCH_REPLACE), j + 1
        else:
            sections[section].append(line)
        j += 1
    missing = "'=======' divider" if section == 0 else "'>>>>>>> REPLACE' marker"
    raise _Malformed(f"the block for {path} starting at line {i + 1} has no {missing}", j)


def _find_path(lines: list[str], start: int, end: int) -> str | None:
    """The path is the last non-empty, non-fence line before the SEARCH marker."""
    for k in range(end - 1, start - 1, -1):
        line = lines[k].strip()
        if line and not _FENCE_RE.match(line):
            return _clean_path(line)
    return None


def _clean_path(line: str) -> str | None:
    """Strip the decorations LLMs put around a path: **, backticks, '# ', 'File:'."""
    path, previous = line, None
    while path != previous:
        previous = path
        path = _LABEL_RE.sub("", path.strip().strip("*`'\"").rstrip(":").strip())
    if any(c.isspace() for c in path):  # prose: accept only a `backticked` path in it
        match = _BACKTICKED_RE.findall(line)
        path = match[-1] if match else ""
    while path.startswith("./"):
        path = path[2:]
    return path or None


def _is_diff_header(lines: list[str], i: int) -> bool:
    return lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def _parse_diff(lines: list[str], i: int) -> tuple[list[Edit], int]:
    """Parse one file's part of a unified diff starting at its '---' line."""
    old, new = (_diff_path(lines[k][4:]) for k in (i, i + 1))
    # Strip git's a/ b/ prefixes only when both sides look like git output.
    if old.startswith(("a/", "/dev/null")) and new.startswith(("b/", "/dev/null")):
        old, new = (p if p == "/dev/null" else p[2:] for p in (old, new))
    hunks: list[tuple[int | None, str, str]] = []
    j = i + 2
    while j < len(lines) and (match := _HUNK_RE.match(lines[j])):
        hint = int(match.group(1)) if match.group(1) is not None else None
        search, replace, j = _parse_hunk(lines, j + 1)
        hunks.append((hint, search, replace))
    if new == "/dev/null":
        return [Edit(old, "delete", "".join(h[1] for h in hunks), "", UNIFIED_DIFF)], j
    if old == "/dev/null":
        return [Edit(new, "create", "", "".join(h[2] for h in hunks), UNIFIED_DIFF)], j
    if not hunks:
        raise _Malformed(f"line {i + 1}: the diff for {new} has no '@@ ... @@' hunk")
    return [Edit(new, "hunk", s, r, UNIFIED_DIFF, line_hint=h) for h, s, r in hunks], j


def _diff_path(raw: str) -> str:
    path = raw.split("\t")[0].strip().strip('"')  # diff -u appends "\t<timestamp>"
    while path.startswith("./"):
        path = path[2:]
    return path


def _parse_hunk(lines: list[str], j: int) -> tuple[str, str, int]:
    """Read hunk lines from ``lines[j]`` on; return (old text, new text, next index)."""
    entries: list[tuple[str, str]] = []  # (tag, text); tag "" marks a bare empty line
    old_eol = new_eol = True
    while j < len(lines):
        line = lines[j]
        if line.startswith("\\"):  # "\ No newline at end of file" qualifies the line above
            tag = entries[-1][0] if entries else ""
            old_eol = old_eol and tag not in (" ", "-", "")
            new_eol = new_eol and tag not in (" ", "+", "")
        elif line == "" or line[0] in " -+":
            if _is_diff_header(lines, j):
                break
            entries.append((line[:1], line[1:]))
        else:  # @@, a fence, 'diff --git', prose: the hunk is over
            break
        j += 1
    # LLMs drop the space of empty context lines, so a bare empty line counts as context,
    # except at the end of the hunk, where it is the gap before whatever follows.
    while entries and entries[-1][0] == "":
        entries.pop()
    old_lines = [text for tag, text in entries if tag != "+"]
    new_lines = [text for tag, text in entries if tag != "-"]
    return _join(old_lines, old_eol), _join(new_lines, new_eol), j


def _join(lines: list[str], eol: bool = True) -> str:
    return "\n".join(lines) + ("\n" if lines and eol else "")


def split_text(text: str) -> tuple[list[str], bool]:
    """Text -> (lines, ends with newline); the inverse of :func:`_join`."""
    if not text:
        return [], False
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
        return lines, True
    return lines, False
