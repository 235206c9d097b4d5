"""Idea -> validated candidate: ask for edits, apply them, validate, revise on failure.

Each of `samples` independent implementations runs its own conversation in its own
worktree; the first that validates wins and the rest are abandoned. Within a sample, every
failure goes back to the LLM with the error (and the nearest lines, for edits that did not
match), up to `attempts` times. Every attempt is written to the store before the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.implementer.config import ImplementerConfig
from agent.implementer.context import editable_context, render_files
from agent.implementer.edits import EditApplyError, EditParseError, apply_edits, parse_edits
from agent.implementer.validate import ValidationFailure, validate
from agent.llm import LLMClient, LLMError, Message
from agent.prompts import render
from agent.store import Store
from environments import Environment
from runner.workspace import BaselineRepo, Workspace
from sandbox import Sandbox

# The candidate the running sample works on: LLM call records are booked to it.
CURRENT_CANDIDATE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_candidate", default=None
)

# Answers an attempt: the LLM's (or a patch file's) text for the conversation so far.
Responder = Callable[[list[Message], int], Awaitable[str]]


@dataclass
class AttemptResult:
    n: int
    phase: str | None  # where it failed; None when it validated
    error: str | None


@dataclass
class Implementation:
    candidate_id: str
    sample: int
    status: str  # validated | rejected | error | abandoned
    attempts: list[AttemptResult]
    workspace: Workspace | None = None  # kept only for a validated candidate
    commit: str | None = None
    diff: str = ""
    error: str | None = None
    flags: list[str] = field(default_factory=list)  # the focus check's, when it validated


@dataclass
class _Job:
    """What every sample shares."""

    idea_id: str
    idea: str
    env: Environment
    baseline: BaselineRepo
    store: Store
    run_dir: Path
    make_sandbox: Callable[[], Sandbox]
    implementer: str
    attempts: int
    progress: Callable[[str], None]


async def implement(
    *,
    idea_id: str,
    idea: str,
    env: Environment,
    baseline: BaselineRepo,
    store: Store,
    run_dir: Path,
    make_sandbox: Callable[[], Sandbox],
    config: ImplementerConfig,
    client: LLMClient | None = None,
    patch_text: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Implementation:
    """Implement `idea` with `client`, or apply `patch_text` as the single attempt."""
    if (client is None) == (patch_text is None):
        raise ValueError("give exactly one of client or patch_text")
    if patch_text is not None:
        job = _Job(idea_id, idea, env, baseline, store, run_dir, make_sandbox, "patch", 1, progress)

        async def from_patch(_messages: list[Message], _sample: int) -> str:
            return patch_text

        return await _sample(job, 0, [Message("user", idea)], from_patch)

    assert client is not None
    files = editable_context(env, config.context_tokens)
    first = render("implement", task=env.task_text, files=files, idea=idea)
    name = f"{client.provider}:{client.model}"
    job = _Job(
        idea_id, idea, env, baseline, store, run_dir, make_sandbox, name, config.attempts, progress
    )

    async def ask(messages: list[Message], sample: int) -> str:
        c = await client.complete(
            messages,
            system=render("implement_system"),
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            nonce=f"sample-{sample}",
        )
        return c.text

    coros = [_sample(job, k, [Message("user", first)], ask) for k in range(config.samples)]
    return await _first_validated(coros)


async def _first_validated(coros: Sequence[Awaitable[Implementation]]) -> Implementation:
    """Run the samples together; the first validated one wins, the others are cancelled."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    done_results: list[Implementation] = []
    errors: list[BaseException] = []
    try:
        for fut in asyncio.as_completed(tasks):
            try:
                impl = await fut
            except LLMError as e:
                errors.append(e)
                continue
            if impl.status == "validated":
                return impl
            done_results.append(impl)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if not done_results and errors:
        raise errors[0]
    return min(done_results, key=lambda i: i.sample)


async def _sample(
    job: _Job,
    sample: int,
    messages: list[Message],
    respond: Responder,
) -> Implementation:
    store, env = job.store, job.env
    cand_id = store.add_candidate(job.idea_id, sample, job.implementer, job.baseline.baseline_sha)
    CURRENT_CANDIDATE.set(cand_id)  # task-local: LLM calls of this sample are booked to it
    ws = job.baseline.new_workspace(job.run_dir / "workspaces" / cand_id)
    scratch = job.run_dir / "artifacts" / cand_id / "validation"
    expected = job.baseline.protected_hashes
    results: list[AttemptResult] = []
    flags: list[str] = []  # what the focus's check flagged on the attempt that validated
    status: str = "error"
    error: str | None = "interrupted"
    try:
        for n in range(1, job.attempts + 1):
            where = f"sample {sample + 1}, attempt {n}/{job.attempts}"
            job.progress(f"{where}: asking {job.implementer}")
            text = await respond(messages, sample)
            messages = [*messages, Message("assistant", text)]
            job.progress(f"{where}: applying and validating (compile, smoke)")
            flags = []
            failure, applied = await _apply_and_validate(
                ws, env, text, expected, job, scratch, flags
            )
            phase, message = (failure.phase, failure.message) if failure else (None, None)
            store.add_attempt(cand_id, n, text, phase, message)
            results.append(AttemptResult(n, phase, message))
            if failure is None:
                commit = ws.commit(_commit_message(job.idea, job.idea_id, cand_id), cand_id)
                diff = ws.diff()
                store.finish_candidate(
                    cand_id, "validated", commit_sha=commit, diff=diff, flags=flags
                )
                status = "validated"
                return Implementation(
                    cand_id, sample, status, results, ws, commit, diff, flags=flags
                )
            messages = [*messages, Message("user", _revision_prompt(failure, applied, ws))]
        status, error = "rejected", results[-1].error
        diff = ws.diff()
        store.finish_candidate(cand_id, status, diff=diff, error=error)
        return Implementation(cand_id, sample, status, results, diff=diff, error=error)
    except LLMError as e:
        status, error = "error", str(e)
        store.finish_candidate(cand_id, status, error=error)
        raise
    except asyncio.CancelledError:
        status, error = "abandoned", "another sample validated first"
        store.finish_candidate(cand_id, status, error=error)
        raise
    except BaseException as e:
        status, error = "error", f"{type(e).__name__}: {e}"
        with contextlib.suppress(Exception):
            store.finish_candidate(cand_id, status, error=error)
        raise
    finally:
        if status != "validated":
            ws.remove()


async def _apply_and_validate(
    ws: Workspace,
    env: Environment,
    text: str,
    expected: dict[str, str],
    job: _Job,
    scratch: Path,
    flags: list[str],
) -> tuple[ValidationFailure | None, bool]:
    """(failure or None, whether the edits are now in the workspace)."""
    try:
        edits = parse_edits(text)
        await asyncio.to_thread(apply_edits, ws.path, edits, env.is_editable)
    except EditParseError as e:
        return ValidationFailure("parse", str(e)), False
    except EditApplyError as e:
        return ValidationFailure("apply", "\n\n".join(e.failures) or str(e)), False
    failure = await validate(ws, env, expected, job.make_sandbox, scratch, flags)
    if failure is not None and failure.phase == "protected":
        ws.reset()  # never keep tampered state; the next prompt says the files are original
        return failure, False
    return failure, True


def _revision_prompt(failure: ValidationFailure, applied: bool, ws: Workspace) -> str:
    """The error, and the files as they now are, so the next answer edits the real state."""
    changed = ws.changed_files()
    state = (
        render("state_current", files=render_files(ws.path, changed))
        if changed
        else render("state_original").strip()
    )
    if not applied:
        return render("revise_unapplied", error=failure.message, state=state)
    return render("revise_applied", phase=failure.phase, error=failure.message, state=state)


def _commit_message(idea: str, idea_id: str, cand_id: str) -> str:
    title = idea.strip().splitlines()[0][:72] if idea.strip() else "candidate"
    return f"{title}\n\n{idea.strip()}\n\nidea: {idea_id}\ncandidate: {cand_id}\n"
