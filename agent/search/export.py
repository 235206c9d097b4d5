"""`executor export`: a search's trajectories as JSONL, one line per idea.

Each line has the fields published trajectories use (ideator_model, executor_model, env,
epoch, idea, code_diff, result) plus the search's own (search_id, idea_id, role, status,
category), so the file can be replayed (`--ideator replay:FILE`) or used to train ideators.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from agent.search.archive import Archive
from agent.store import Store

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", re.IGNORECASE)


def categorize(diff: str | None) -> str | None:
    """ "hyperparameter" when every changed line differs from its old version only in numbers,
    else "algorithmic"; None without a diff. Read from what the code change did, not from
    how the idea was worded."""
    if not diff:
        return None
    removed = [
        ln[1:] for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")
    ]
    added = [ln[1:] for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    if not added or len(removed) != len(added):
        return "algorithmic"
    same_shape = all(
        _NUMBER.sub("#", a).strip() == _NUMBER.sub("#", r).strip()
        for a, r in zip(added, removed, strict=True)
    )
    return "hyperparameter" if same_shape else "algorithmic"


def trajectories(store: Store, search_id: str | None = None) -> list[dict[str, Any]]:
    archive = Archive(store)
    search = archive.latest() if search_id is None else archive.get(search_id)
    if search is None:
        return []
    config = search["config"]
    out = []
    for idea in archive.ideas(search["id"]):
        cand = store.first_candidate(idea.idea_id)
        run = store.first_uncancelled_run(cand["id"]) if cand is not None else None
        diff = cand["diff"] if cand else None
        out.append(
            {
                "search_id": search["id"],
                "idea_id": idea.idea_id,
                "ideator_model": config.get("ideator"),
                "executor_model": (cand["implementer"] if cand else None)
                or config.get("implementer")
                or None,
                "env": search["env"],
                "scale": search["scale"],
                "epoch": idea.epoch,
                "role": idea.role,
                "idea": idea.text,
                "code_diff": diff,
                "category": categorize(diff),
                "status": idea.status,
                "result": {
                    "status": run["status"] if run else idea.status,
                    "reason": (run["reason"] if run else None) or idea.reason,
                    "reward": run["reward"] if run else None,
                    "metrics": (run["metrics"] if run else None) or {},
                },
            }
        )
    return out


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    """Written to a temporary file and renamed: a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    tmp.replace(path)
