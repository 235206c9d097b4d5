"""Applying half of :mod:`agent.implementer.edits`: a list of Edit -> new file contents.

Hunks are located by content (line numbers only break ties), tolerating the whitespace
drift LLMs introduce; failures quote the nearest lines of the file; writing is atomic.
"""

from __future__ import annotations

import difflib
import heapq
import os
import posixpath
import re
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.implementer.edits_parse import UNIFIED_DIFF, Edit, split_text

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


class EditApplyError(ValueError):
    """One or more edits did not apply; nothing was written.

    ``str(e)`` is a one-line summary; ``failures`` holds one detailed message per failing
    edit (with the nearest lines of the file) and ``details()`` joins them for the LLM.
    """

    def __init__(self, summary: str, failures: list[str]) -> None:
        super().__init__(summary)
        self.failures = failures

    def details(self) -> str:
        return "\n\n".join(self.failures)


@dataclass
class _Doc:
    """A file held in memory: LF-separated lines plus what is needed to write it back."""

    lines: list[str]
    eol: bool  # ends with a newline
    newline: str = "\n"
    bom: bool = False

    @classmethod
    def from_text(cls, text: str) -> _Doc:
        bom = text.startswith("\ufeff")
        text = text[1:] if bom else text
        crlf = text.count("\r\n")
        newline = "\r\n" if crlf > text.count("\n") - crlf else "\n"
        if newline == "\r\n":  # otherwise stray "\r"s stay in the lines, and untouched
            text = text.replace("\r\n", "\n")
        lines, eol = split_text(text)
        return cls(lines, eol, newline, bom)

    def to_text(self) -> str:
        body = self.newline.join(self.lines) + (self.newline if self.eol and self.lines else "")
        return ("\ufeff" if self.bom else "") + body


_DISALLOWED = "may not be edited"
_MISSING = "edits a file that does not exist"


class _Failure(Exception):
    def __init__(self, short: str, detail: str | None = None) -> None:
        super().__init__(short)
        self.short, self.detail = short, detail or short


Match = tuple[int, int, list[str]]  # start, end (exclusive), replacement lines


def _allow_all(path: str) -> bool:
    return True


def plan_edits(
    root: Path, edits: list[Edit], allowed: Callable[[str], bool] = _allow_all
) -> dict[str, str | None]:
    """Apply ``edits`` in memory, in order. Return {relative path: new content, or None for
    a deleted file} for the files whose content changes; raise EditApplyError listing every
    edit that failed."""
    root = Path(root)
    docs: dict[str, _Doc | None] = {}
    originals: dict[str, str | None] = {}
    shifts: dict[str, int] = {}  # lines added by earlier edits, to move diff line hints
    counts: dict[str, int] = {}
    failures: list[tuple[str, _Failure]] = []
    editable: list[str] | None = None  # listed lazily, only to explain a failure
    for edit in edits:
        counts[edit.path] = counts.get(edit.path, 0) + 1
        unit = "hunk" if edit.source == UNIFIED_DIFF else "block"
        label = f"{edit.path} {unit} {counts[edit.path]}"
        try:
            rel = _check_path(root, edit.path, allowed)
            if rel not in docs:
                original = originals[rel] = _read(root, rel)
                docs[rel] = None if original is None else _Doc.from_text(original)
            docs[rel], grown = _apply_one(docs[rel], edit, shifts.get(rel, 0))
            shifts[rel] = shifts.get(rel, 0) + grown
        except _Failure as exc:
            if exc.short in (_DISALLOWED, _MISSING):
                editable = _editable_files(root, allowed) if editable is None else editable
                if exc.short == _DISALLOWED:
                    exc.detail += _describe_editable(allowed, editable[:30])
                else:
                    exc.detail += _did_you_mean(edit.path, editable)
            failures.append((label, exc))
    if failures:
        summary = f"{len(failures)} of {len(edits)} edits did not apply: " + "; ".join(
            f"{label} {exc.short}" for label, exc in failures
        )
        raise EditApplyError(summary, [f"{label}: {exc.detail}" for label, exc in failures])
    plan: dict[str, str | None] = {}
    for rel, doc in docs.items():
        new = None if doc is None else doc.to_text()
        if new != originals[rel]:
            plan[rel] = new
    return plan


def apply_edits(
    root: Path, edits: list[Edit], allowed: Callable[[str], bool] = _allow_all
) -> list[str]:
    """Plan ``edits`` and write the result; return the sorted changed relative paths."""
    root = Path(root)
    plan = plan_edits(root, edits, allowed)
    _write(root, plan)
    return sorted(plan)


def _check_path(root: Path, path: str, allowed: Callable[[str], bool]) -> str:
    if not path:
        raise _Failure("has no path")
    if path.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", path):
        raise _Failure(
            "is absolute",
            "absolute paths are not allowed; use a path relative to the repository root",
        )
    rel = posixpath.normpath(path)
    outside = _Failure("escapes the repository", f"{path!r} is outside the repository")
    if rel == ".." or rel.startswith("../"):
        raise outside
    if rel == "." or ".git" in rel.split("/"):
        raise _Failure(_DISALLOWED, f"{path!r} may not be edited.")
    resolved_root = root.resolve()
    if not (root / rel).resolve().is_relative_to(resolved_root):  # a symlink pointing out
        raise outside
    if not allowed(rel):
        raise _Failure(_DISALLOWED, f"{rel!r} may not be edited.")
    return rel


def _editable_files(root: Path, allowed: Callable[[str], bool], limit: int = 500) -> list[str]:
    """Existing files the predicate accepts, to tell the LLM what it may edit."""
    found: list[str] = []
    for visited, (dirpath, dirnames, filenames) in enumerate(os.walk(root)):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for name in sorted(filenames):
            rel = Path(dirpath, name).relative_to(root).as_posix()
            if allowed(rel):
                found.append(rel)
        if len(found) >= limit or visited > 2000:
            break
    return found[:limit]


def _describe_editable(allowed: Callable[[str], bool], editable: list[str]) -> str:
    description = getattr(allowed, "description", None)  # optional, e.g. the glob list
    text = f" Editable: {description}." if description else ""
    if editable:
        text += " Files that may be edited include: " + ", ".join(editable) + "."
    elif not description:
        text += " No existing file may be edited; only new files at permitted paths."
    return text


def _did_you_mean(path: str, editable: list[str]) -> str:
    name = posixpath.basename(path)
    close = [p for p in editable if posixpath.basename(p) == name]
    close += difflib.get_close_matches(path, editable, n=3, cutoff=0.6)
    close = list(dict.fromkeys(close))[:3]
    return f" Did you mean {' or '.join(close)}?" if close else ""


def _read(root: Path, rel: str) -> str | None:
    path = root / rel
    if not path.exists():
        return None
    if not path.is_file():
        raise _Failure("is not a file", f"{rel!r} exists but is not a regular file")
    # surrogateescape: bytes that are not UTF-8 survive the round trip untouched.
    return path.read_bytes().decode("utf-8", "surrogateescape")


def _apply_one(doc: _Doc | None, edit: Edit, shift: int) -> tuple[_Doc | None, int]:
    """Return the document after ``edit`` and the number of lines it added."""
    if edit.kind == "delete":
        if doc is None:
            raise _Failure("deletes a file that does not exist")
        return None, -len(doc.lines)
    search, search_eol = split_text(edit.search)
    replace, replace_eol = split_text(edit.replace)
    if not search:
        if doc is not None and any(line.strip() for line in doc.lines):
            if edit.kind == "hunk" and edit.line_hint is not None:  # pure insertion, "-l,0"
                at = min(max(edit.line_hint + shift, 0), len(doc.lines))
                lines = doc.lines[:at] + replace + doc.lines[at:]
                return _Doc(lines, doc.eol, doc.newline, doc.bom), len(replace)
            raise _Failure(
                "creates a file that already exists",
                "the SEARCH section is empty, which creates a new file, but the "
                "file already exists and is not empty. Put the lines to change "
                "in the SEARCH section.",
            )
        newline, bom = (doc.newline, doc.bom) if doc else ("\n", False)
        return _Doc(replace, replace_eol, newline, bom), len(replace)
    if doc is None:
        raise _Failure(
            _MISSING, "the file does not exist; to create it use an empty SEARCH section."
        )
    hint = None if edit.line_hint is None else edit.line_hint + shift
    start, end, new_lines = _locate(doc.lines, search, replace, hint)
    lines = doc.lines[:start] + new_lines + doc.lines[end:]
    eol = doc.eol
    at_end = end == len(doc.lines) and new_lines
    if at_end and edit.source == UNIFIED_DIFF and search_eol != replace_eol:
        eol = replace_eol  # the hunk adds or removes "\ No newline at end of file"
    return _Doc(lines, eol and bool(lines), doc.newline, doc.bom), len(new_lines) - (end - start)


def _locate(lines: list[str], search: list[str], replace: list[str], hint: int | None) -> Match:
    """Find the one place ``search`` matches, trying progressively looser comparisons."""
    n = len(search)
    hits: list[Match] = [
        (i, i + n, replace)
        for i in range(len(lines) - n + 1)
        if lines[i] == search[0] and lines[i : i + n] == search
    ]
    if not hits and not any(line.strip() for line in search):
        raise _Failure(
            "has a blank SEARCH",
            "the SEARCH text has only blank lines and they match nothing; include "
            "the lines to change, copied exactly from the file.",
        )
    if not hits:
        hits = _loose_matches(lines, search, replace)
    if not hits:  # blank lines at the block's edges that the file lacks
        trimmed_s, trimmed_r = _trim_blank_edges(search, replace)
        if trimmed_s and trimmed_s != search:
            hits = _loose_matches(lines, trimmed_s, trimmed_r)
    if not hits:
        raise _Failure("matches nothing", _no_match_message(lines, search))
    if len(hits) > 1 and hint is not None:  # line numbers only break ties
        ranked = sorted(hits, key=lambda h: abs(h[0] + 1 - hint))
        if abs(ranked[0][0] + 1 - hint) < abs(ranked[1][0] + 1 - hint):
            hits = ranked[:1]
    if len(hits) > 1:
        where = ", ".join(str(h[0] + 1) for h in hits)
        raise _Failure(
            f"matches {len(hits)} places (lines {where})",
            f"the SEARCH text matches {len(hits)} places, starting at lines {where}. "
            "Add more surrounding lines so that it matches exactly one place.",
        )
    return hits[0]


def _loose_matches(lines: list[str], search: list[str], replace: list[str]) -> list[Match]:
    """Matches ignoring trailing whitespace and a uniform indentation offset; the
    replacement is re-indented by the same offset. Same-indentation matches win."""
    file_r = [line.rstrip() for line in lines]
    search_r = [line.rstrip() for line in search]
    first = next((k for k, line in enumerate(search_r) if line), None)
    if first is None:
        return []
    anchor = search_r[first].lstrip()
    same: list[Match] = []
    shifted: list[Match] = []
    n = len(search)
    for i in range(len(lines) - n + 1):
        if file_r[i + first].lstrip() != anchor:  # cheap rejection of most windows
            continue
        offset = _indent_offset(file_r[i : i + n], search_r, first)
        if offset is not None:
            target = shifted if any(offset) else same
            target.append((i, i + n, _reindent(replace, offset)))
    return same or shifted


def _indent_offset(window: list[str], search: list[str], first: int) -> tuple[str, str] | None:
    """(prefix to add, prefix to remove) turning every search line into its window line."""
    f_line, s_line = window[first], search[first]
    f_ind = f_line[: len(f_line) - len(f_line.lstrip())]
    s_ind = s_line[: len(s_line) - len(s_line.lstrip())]
    if f_ind.endswith(s_ind):
        add, remove = f_ind[: len(f_ind) - len(s_ind)], ""
    elif s_ind.endswith(f_ind):
        add, remove = "", s_ind[: len(s_ind) - len(f_ind)]
    else:
        return None
    for f, s in zip(window, search, strict=True):
        if not s or not f:  # blank lines must pair with blank lines
            if s or f:
                return None
        elif not s.startswith(remove) or f != add + s[len(remove) :]:
            return None
    return add, remove


def _reindent(lines: list[str], offset: tuple[str, str]) -> list[str]:
    add, remove = offset
    if not add and not remove:
        return lines
    out = []
    for line in lines:
        if line.strip():
            indent = len(line) - len(line.lstrip())
            line = add + line[min(indent, len(remove)) :] if remove else add + line
        out.append(line)
    return out


def _trim_blank_edges(search: list[str], replace: list[str]) -> tuple[list[str], list[str]]:
    """Drop blank lines at the edges of the search, and as many at the replacement's."""

    def count(lines: list[str], from_end: bool) -> int:
        seq = reversed(lines) if from_end else iter(lines)
        return next((k for k, line in enumerate(seq) if line.strip()), len(lines))

    head, tail = count(search, False), count(search, True)
    r_head, r_tail = min(head, count(replace, False)), min(tail, count(replace, True))
    trimmed_s = search[head : len(search) - tail] if head < len(search) else []
    return trimmed_s, replace[r_head : max(r_head, len(replace) - r_tail)]


def _no_match_message(lines: list[str], search: list[str]) -> str:
    """Say that nothing matched and quote the most similar window of the file."""
    head = "the SEARCH text matches nothing in the file, even ignoring whitespace."
    if not lines:
        return head + " The file is empty."
    n = max(1, len(search))
    stripped = [line.strip() for line in lines]
    wanted = [line.strip() for line in search] or [""]
    best_ratio, best = -1.0, 0
    for i in sorted(_candidate_windows(stripped, wanted, n)):
        # Line by line: difflib on whole windows is quadratic and slow on long blocks.
        pairs = zip(stripped[i : i + n], wanted, strict=False)
        ratio = sum(difflib.SequenceMatcher(None, a, b).ratio() for a, b in pairs) / n
        if ratio > best_ratio:
            best_ratio, best = ratio, i
    window = lines[best : best + n][:40]
    width = len(str(best + len(window)))
    quoted = "\n".join(
        f"{best + k + 1:>{width}} | {line.rstrip()}" for k, line in enumerate(window)
    )
    return (
        f"{head} The most similar lines of the file ({best_ratio:.0%} similar) are "
        f"lines {best + 1}-{best + len(window)}:\n{quoted}\n"
        "Copy the lines to change exactly from the file, including indentation."
    )


def _candidate_windows(lines: list[str], search: list[str], n: int, keep: int = 10) -> list[int]:
    """Starts of the ``keep`` windows sharing the most tokens with ``search``. A sliding
    bag-of-tokens count costs one pass over the file, where difflib on every window would
    take seconds on a large file."""
    tokens = [_TOKEN_RE.findall(line) for line in lines]
    want: dict[str, int] = {}
    for line in search:
        for token in _TOKEN_RE.findall(line):
            want[token] = want.get(token, 0) + 1
    have: dict[str, int] = {}
    shared = 0  # sum over tokens of min(have, want)

    def move(line_tokens: list[str], step: int) -> None:
        nonlocal shared
        for token in line_tokens:
            count = have.get(token, 0)
            if step > 0 and count < want.get(token, 0):
                shared += 1
            elif step < 0 and 0 < count <= want.get(token, 0):
                shared -= 1
            have[token] = count + step

    scored: list[tuple[int, int]] = []
    for i in range(len(lines)):
        move(tokens[i], 1)
        if i >= n:
            move(tokens[i - n], -1)
        if i >= n - 1 or i == len(lines) - 1:
            scored.append((shared, -max(0, i - n + 1)))  # ties: the earliest window
    return [-start for _, start in heapq.nlargest(keep, set(scored))]


def _write(root: Path, plan: dict[str, str | None]) -> None:
    """Write every new content to a temp file first, then swap them all in with os.replace,
    so that a failing write leaves every file as it was."""
    staged: list[tuple[str, Path]] = []
    try:
        for rel, content in plan.items():
            if content is None:
                continue
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            staged.append((tmp, target))
            with os.fdopen(fd, "wb") as handle:
                handle.write(content.encode("utf-8", "surrogateescape"))
            mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
            os.chmod(tmp, mode)  # mkstemp creates 0600 files
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, target in staged:
        os.replace(tmp, target)
    for rel, content in plan.items():
        if content is None:
            (root / rel).unlink(missing_ok=True)
