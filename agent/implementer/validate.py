"""Checks a candidate must pass before it may run: protected files, compilation, smoke."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from environments import Environment
from runner.workspace import Workspace, protected_changes
from sandbox import RunLayout, RunStatus, Sandbox, Step


@dataclass(frozen=True)
class ValidationFailure:
    phase: str  # "protected" | "compile" | "smoke"
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


async def check_smoke(
    ws: Workspace, env: Environment, make_sandbox: Callable[[], Sandbox], scratch: Path
) -> ValidationFailure | None:
    smoke = env.manifest.smoke
    shutil.rmtree(scratch, ignore_errors=True)
    layout = RunLayout(
        workspace=ws.path,
        env_dir=env.root,
        output_dir=scratch / "output",
        result_dir=scratch / "eval",
        log_dir=scratch / "logs",
        eval_only=tuple(env.eval_only_paths()),
    )
    sandbox = make_sandbox()
    async with sandbox.session(layout):
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
) -> ValidationFailure | None:
    """The first failing check, or None when the candidate may run."""
    changed = ws.changed_files()
    if failure := check_protected(ws, env, expected_hashes, changed):
        return failure
    if failure := check_compiles(ws, changed):
        return failure
    if failure := await check_smoke(ws, env, make_sandbox, scratch):
        return failure
    # Smoke ran candidate code with the workspace writable, and the commit takes whatever is
    # there now: check again, so smoke cannot slip a protected or broken file into the commit.
    after = ws.changed_files()
    if failure := check_protected(ws, env, expected_hashes, after):
        return ValidationFailure(failure.phase, "the smoke step wrote files: " + failure.message)
    return check_compiles(ws, after)
