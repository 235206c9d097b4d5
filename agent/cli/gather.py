"""What `executor show` and `envs` gather for printing: store rows and
environments made into plain dicts (rendered by agent/cli/render.py, or emitted as JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.search.fidelity import decision_of, describe
from agent.store import Store


def collect(store: Store, kind: str, row: dict[str, Any]) -> dict[str, Any]:
    """Everything `executor show` prints for one idea, candidate or run."""
    if kind == "idea":
        cands = [_candidate(store, c) for c in store.candidates(row["id"])]
        return {"kind": "idea", "idea": row, "candidates": cands, **_screening(store, row["id"])}
    if kind == "candidate":
        return {"kind": "candidate", "idea": store.idea(row["idea_id"]), **_candidate(store, row)}
    run = dict(row)
    run["logs"] = _logs(Path(run["artifacts"]))
    items = store.run_items(run["id"])  # checked against its hash
    run["items"] = None if items is None else {"n": len(items), "sha256": items.sha256()}
    return {"kind": "run", "run": run}


def _screening(store: Store, idea_id: str) -> dict[str, Any]:
    """A --screen search's promotion decision on the idea, when it took one."""
    found = decision_of(store, idea_id)
    if found is None:
        return {}
    promotion, decision = found
    return {"screening": {**decision.to_json(), "share": promotion.share,
                          "line": describe(promotion, decision)}}  # fmt: skip


def _candidate(store: Store, cand: dict[str, Any]) -> dict[str, Any]:
    calls = store.llm_calls(cand["id"])
    costs = [c["cost_usd"] for c in calls if c["cost_usd"] is not None]
    return {
        "candidate": cand,
        # what the focus's check flagged and let through (the store decodes its JSON list)
        "check_flags": list(cand.get("flags") or []),
        "attempts": [
            {k: a[k] for k in ("n", "phase", "error", "response")}
            for a in store.attempts(cand["id"])
        ],
        "runs": store.runs(cand["id"]),
        "llm": {
            "calls": len(calls),
            "cached": sum(c["cached"] for c in calls),
            "input_tokens": sum(c["input_tokens"] for c in calls),
            "output_tokens": sum(c["output_tokens"] for c in calls),
            "cost_usd": sum(costs) if costs else None,
        },
    }


def _logs(artifacts: Path) -> dict[str, str]:
    logs = artifacts / "logs"
    return {p.name: str(p) for p in sorted(logs.glob("*"))} if logs.is_dir() else {}


def envs_table(found: list[Any]) -> dict[str, Any]:
    envs = []
    for item in found:
        if isinstance(item, tuple):
            path, error = item
            envs.append({"name": path.name, "path": str(path), "error": str(error)})
            continue
        envs.append(
            {
                "name": item.name,
                "path": str(item.root),
                "description": item.manifest.description,
                "metric": item.manifest.metric.name,
                "scales": {
                    name: {
                        "gpus": s.gpus,
                        "timeout": s.timeout,
                        "budget_clock": s.budget_clock,
                        "description": s.description,
                    }
                    for name, s in item.manifest.scales.items()
                },
                "focuses": {
                    name: {"description": f.description, "editable": f.editable}
                    for name, f in item.manifest.focus.items()
                },
            }
        )
    return {"environments": envs}
