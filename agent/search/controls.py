"""Control arms (`executor search --controls`): arms run like ideas that must not win.

- `null`: the unchanged baseline entered as an idea. It runs through the same screening,
  finalist and confirmation path as any idea, so a win for it measures what the comparison
  itself can manufacture (a drift between the baseline's runs and the arms', a bias in the
  statistics).
- The environment's own (`[[controls]]` in its manifest), each a patch: for posttrain_grpo, a
  training reward that ignores correctness.

Controls are recorded with the search's ideas (role `control`, epoch -1) so a resumed search
knows them, but the ideator never sees them, they are never finalists by rank, and each
always appears on the confirmation table.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.search.archive import Archive
from environments import Environment

NULL = "null"
CONTROL_EPOCH = -1
ROLE = "control"


@dataclass(frozen=True)
class ControlArm:
    name: str
    text: str  # what the table shows
    patch: str | None  # edits, like an idea's patch file; None: the unchanged baseline


def control_arms(env: Environment) -> list[ControlArm]:
    arms = [ControlArm(NULL, "control: the unchanged baseline, entered as an idea", None)]
    for c in env.manifest.controls:
        patch = (env.root / c.patch).read_text()
        arms.append(ControlArm(c.name, f"control: {c.description}", patch))
    return arms


def record_controls(archive: Archive, search_id: str, env: Environment, scale: str) -> None:
    """Write the control arms into the search once (a resume finds them there)."""
    if any(i.role == ROLE for i in archive.ideas(search_id, controls=True)):
        return
    archive.record_ideas(
        search_id,
        CONTROL_EPOCH,
        0,
        [
            (a.text, ROLE, "controls", {"control": a.name, "edits": a.patch})
            for a in control_arms(env)
        ],
        env.name,
        env.repo_hash,
        scale,
    )


def is_null(role: str, payload: dict[str, object]) -> bool:
    """The null control: by its role, which only the harness sets (a replayed idea's payload
    may say anything)."""
    return role == ROLE and payload.get("control") == NULL
