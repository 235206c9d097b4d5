"""Checks a candidate must pass before it may run: protected files, compilation, the focus's
check (e.g. reward functions on probe completions), smoke."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from environments import Environment
from runner.workspace import Workspace, protected_changes
from sandbox import RunLayout, RunStatus, Sandbox, Step

# The focus check's report: the last stdout line starting with this, then JSON.
CHECK_MARKER = "EXECUTOR_CHECK "


@dataclass(frozen=True)
class ValidationFailure:
    phase: str  # "protected" | "compile" | "check" | "smoke"
    message: str


def check_protected(
    ws: Workspace, env: Environment, expected: dict[str, str], changed: list[str]
) -> ValidationFailure | None:
    outside = [f for f in changed if not env.is_editable(f)]
    tampered = sorted(set(outside) | set(protected_changes(ws, expected)))
    if tampered:
        allowed = ", ".join(env.manifest.editable)
        return ValidationFailure(
            "protected",
            f"protected files were changed: {', '.join(tampered)}; only {allowed} may be edited",
        )
    return None


def check_compiles(ws: Workspace, changed: list[str]) -> ValidationFailure | None:
    errors = []
    for rel in changed:
        path = ws.path / rel
        if rel.endswith(".py") and path.is_file():
            source = path.read_text(errors="replace")
            try:
                compile(source, rel, "exec", dont_inherit=True)
            except SyntaxError as e:
                line = (e.text or "").rstrip()
                errors.append(f"{rel}, line {e.lineno}: {e.msg}\n    {line}")
    if errors:
        return ValidationFailure(
            "compile", "the changed code does not compile:\n" + "\n".join(errors)
        )
    return None


def _layout(ws: Workspace, env: Environment, scratch: Path) -> RunLayout:
    shutil.rmtree(scratch, ignore_errors=True)
    return RunLayout(
        workspace=ws.path,
        env_dir=env.root,
        output_dir=scratch / "output",
        result_dir=scratch / "eval",
        log_dir=scratch / "logs",
        eval_only=tuple(env.eval_only_paths()),
    )


async def check_focus(
    ws: Workspace,
    env: Environment,
    make_sandbox: Callable[[], Sandbox],
    scratch: Path,
    flags: list[str],
) -> ValidationFailure | None:
    """Run the focus's protected check (environments/manifest.py `Focus.check`): a rejection
    fails validation with its reasons; flags are appended to `flags` and kept."""
    focus = env.focus
    if focus is None or focus.check is None:
        return None
    check = focus.check
    sandbox = make_sandbox()
    async with sandbox.session(_layout(ws, env, scratch / "check")):
        res = await sandbox.exec(Step("check", check.command, check.timeout))
    report = _check_report(res.stdout_path)
    if report is None:
        tail = res.stderr_tail() or "(no output on stderr)"
        why = res.reason or "it wrote no report"
        return ValidationFailure(
            "check", f"the focus check `{check.command}` failed: {why}\n{tail}"
        )
    rejected, found = report
    if res.status is RunStatus.SUCCEEDED and not rejected:
        flags.extend(found)
        return None
    reasons = rejected or [res.reason or "the check failed without a reason"]
    listed = "\n".join(f"- {r}" for r in reasons)
    return ValidationFailure("check", f"the focus check rejected the change:\n{listed}")


def _check_report(stdout: Path) -> tuple[list[str], list[str]] | None:
    """(rejected, flags) from the check's last report line; None when there is none or it is
    malformed (which rejects: only the protected checker writes a well-formed one)."""
    try:
        lines = stdout.read_text(errors="replace").splitlines()
    except OSError:
        return None
    line = next((x for x in reversed(lines) if x.startswith(CHECK_MARKER)), None)
    if line is None:
        return None
    try:
        body = json.loads(line[len(CHECK_MARKER) :])
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    out = []
    for key in ("rejected", "flags"):
        items = body.get(key, [])
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            return None
        out.append([x[:500] for x in items[:50]])
    return out[0], out[1]


async def check_smoke(
    ws: Workspace, env: Environment, make_sandbox: Callable[[], Sandbox], scratch: Path
) -> ValidationFailure | None:
    smoke = env.manifest.smoke
    sandbox = make_sandbox()
    async with sandbox.session(_layout(ws, env, scratch)):
        res = await sandbox.exec(Step("smoke", smoke.command, smoke.timeout))
    if res.status is RunStatus.SUCCEEDED:
        return None
    tail = res.stderr_tail() or "(no output on stderr)"
    return ValidationFailure(
        "smoke", f"the smoke test `{smoke.command}` failed: {res.reason}\n{tail}"
    )


async def validate(
    ws: Workspace,
    env: Environment,
    expected_hashes: dict[str, str],
    make_sandbox: Callable[[], Sandbox],
    scratch: Path,
    flags: list[str] | None = None,
) -> ValidationFailure | None:
    """The first failing check, or None when the candidate may run. The focus check's flags
    (kept, not failing) are appended to `flags`."""
    changed = ws.changed_files()
    if failure := check_protected(ws, env, expected_hashes, changed):
        return failure
    if failure := check_compiles(ws, changed):
        return failure
    if failure := await check_focus(ws, env, make_sandbox, scratch, [] if flags is None else flags):
        return failure
    # The check ran candidate code with the workspace writable: look again before smoke.
    if failure := check_protected(ws, env, expected_hashes, ws.changed_files()):
        return ValidationFailure(failure.phase, "the check step wrote files: " + failure.message)
    if failure := await check_smoke(ws, env, make_sandbox, scratch):
        return failure
    # Smoke ran candidate code with the workspace writable, and the commit takes whatever is
    # there now: check again, so smoke cannot slip a protected or broken file into the commit.
    after = ws.changed_files()
    if failure := check_protected(ws, env, expected_hashes, after):
        return ValidationFailure(failure.phase, "the smoke step wrote files: " + failure.message)
    return check_compiles(ws, after)
