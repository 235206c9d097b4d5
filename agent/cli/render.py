"""What the CLI shows: rich renderings of the typed results (agent/results.py) and of the
dicts that agent/cli/gather.py gathers from the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

if TYPE_CHECKING:  # the CLI imports these heavy modules inside its commands
    from agent.results import BaselineResult, RunResult, TrainingResult
    from agent.search.loop import SearchResult

_STATUS_STYLE = {
    "succeeded": "green",
    "validated": "green",
    "ok": "green",
    "warn": "yellow",
    "abandoned": "yellow",
    "running": "yellow",
    "implementing": "yellow",
}


def _styled(status: str | None) -> str:
    status = status or "-"
    return f"[{_STATUS_STYLE.get(status, 'red')}]{status}[/]"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def failure_line(r: RunResult) -> str:
    """One line saying why a run-idea did not succeed."""
    reason = (r.reason or "no reason recorded").splitlines()[0]
    if r.run_id is None:
        n = len(r.attempts)
        phase = r.attempts[-1].phase if r.attempts else None
        where = f" ({phase})" if phase else ""
        return f"candidate {r.candidate_id} {r.status} after {n} attempt(s){where}: {reason}"
    return f"run {r.run_id} {r.status}: {reason}"


def print_run_idea(console: Console, r: RunResult) -> None:
    t = Table.grid(padding=(0, 2))
    t.add_row("idea", r.idea_id)
    t.add_row("candidate", f"{r.candidate_id}  {r.commit or ''}")
    t.add_row("status", _styled(r.status))
    if r.reason:
        t.add_row("reason", r.reason.splitlines()[0])
    t.add_row("reward", _num(r.reward) + _versus_baseline(r))
    for k, v in r.metrics.items():
        t.add_row(f"  {k}", _num(v))
    for a in r.attempts:
        verdict = "[green]ok[/]" if a.error is None else f"[red]{a.phase}[/]: "
        first = "" if a.error is None else a.error.splitlines()[0]
        t.add_row(f"attempt {a.n}", f"{verdict}{first}")
    times = ", ".join(f"{k} {v:.1f}s" for k, v in r.timings.items())
    t.add_row("time", times)
    if r.cost_usd:
        t.add_row("llm cost", f"${r.cost_usd:.4f}")
    if r.artifacts:
        t.add_row("artifacts", str(r.artifacts))
    if r.diff:
        console.print(Syntax(r.diff, "diff", theme="ansi_dark", word_wrap=True))
    console.print(t)


def _versus_baseline(r: RunResult) -> str:
    base = r.baseline
    if base is None or r.reward is None:
        return "  (no baseline yet: `executor baseline` measures one)"
    spread = f" ± {base.std:.3g}, n={base.n}" if base.std is not None else ""
    return f"  (baseline {base.mean:.6g}{spread}, {base.source})"


def print_baseline(console: Console, r: BaselineResult) -> None:
    """One column per seed and one for mean ± std; one row per metric, so environments
    that report many metrics stay readable in a terminal."""
    t = Table(title=f"baseline: {r.env} ({r.scale})")
    t.add_column("", style="bold")
    for run in r.runs:
        t.add_column(f"seed {run.seed}", justify="right")
    t.add_column("mean ± std", justify="right")
    summary = r.summary

    def spread(name: str) -> str:
        s = summary.get(name)
        return "" if s is None else f"{s.mean:.4g} ± {s.std:.2g}"

    t.add_row("status", *(_styled(run.status) for run in r.runs), "")
    t.add_row("reward", *(_num(run.reward) for run in r.runs), spread("reward"))
    names = sorted({k for run in r.runs for k in run.metrics})
    for n in names:
        t.add_row(n, *(_num(run.metrics.get(n)) for run in r.runs), spread(n))
    t.add_row("train s", *(f"{run.timings.get('train', 0):.1f}" for run in r.runs), "")
    console.print(t)
    if "reward" in summary:
        s = summary["reward"]
        console.print(f"reward: {s.mean:.6g} ± {s.std:.3g} (n={s.n})")


def print_ideas(console: Console, data: dict[str, Any]) -> None:
    if not data["ideas"]:
        console.print("the store holds no ideas yet")
        return
    t = Table()
    for col in ("idea", "env", "candidate", "runs", "best reward", "text"):
        t.add_column(col, justify="right" if col in ("runs", "best reward") else "left")
    for i in data["ideas"]:
        first = i["text"].strip().splitlines()[0] if i["text"].strip() else ""
        t.add_row(
            i["id"],
            f"{i['env']} ({i['scale']})",
            _styled(i["candidate_status"]),
            str(i["runs"]),
            _num(i["best_reward"]),
            first[:60],
        )
    console.print(t)


def print_envs(console: Console, data: dict[str, Any]) -> None:
    if not data["environments"]:
        console.print("no environments found; pass --env PATH or set EXECUTOR_ENV_PATH")
        return
    t = Table()
    for col in ("name", "scales", "metric", "description / path"):
        t.add_column(col)
    for e in data["environments"]:
        if "error" in e:
            t.add_row(e["name"], "-", "-", f"[red]broken:[/] {e['error']}")
            continue
        unit = {"cpu": " CPU-s"}
        scales = ", ".join(
            f"{n} ({s['gpus']} GPU, {s['timeout']:g}{unit.get(s.get('budget_clock'), 's')})"
            for n, s in e["scales"].items()
        )
        focuses = "".join(
            f"\nfocus {n}: {f['description']} ({', '.join(f['editable'])})"
            for n, f in e.get("focuses", {}).items()
        )
        t.add_row(
            e["name"], scales, e["metric"], f"{e['description']}{focuses}\n[dim]{e['path']}[/]"
        )
    console.print(t)


def print_show(console: Console, data: dict[str, Any]) -> None:
    if data["kind"] == "run":
        _print_run(console, data["run"])
        return
    idea = data["idea"]
    console.print(f"[bold]{idea['id']}[/] ({idea['env']}, {idea['scale']}, {idea['source']})")
    console.print(idea["text"])
    if screening := data.get("screening"):
        console.print(f"screening: {screening['line']}", highlight=False)
    cands = data["candidates"] if data["kind"] == "idea" else [data]
    for c in cands:
        _print_candidate(console, c, full=data["kind"] == "candidate")


def _print_candidate(console: Console, c: dict[str, Any], full: bool) -> None:
    cand = c["candidate"]
    console.print(
        f"\n[bold]{cand['id']}[/] sample {cand['sample']} by {cand['implementer']}: "
        f"{_styled(cand['status'])} {cand['commit_sha'] or ''}"
    )
    for a in c["attempts"]:
        msg = "ok" if a["error"] is None else f"{a['phase']}: {a['error'].splitlines()[0]}"
        console.print(f"  attempt {a['n']}: {msg}", highlight=False)
    for flag in c.get("check_flags", []):
        console.print(f"  [yellow]check flag:[/] {flag}", highlight=False)
    llm = c["llm"]
    if llm["calls"]:
        cost = "-" if llm["cost_usd"] is None else f"${llm['cost_usd']:.4f}"
        console.print(
            f"  llm: {llm['calls']} calls ({llm['cached']} cached), "
            f"{llm['input_tokens']} in / {llm['output_tokens']} out tokens, {cost}"
        )
    for run in c["runs"]:
        share = run.get("fidelity")
        short = "" if share is None else f" at {share:.0%} of the budget"
        console.print(
            f"  {run['id']} seed {run['seed']}{short}: {_styled(run['status'])} "
            f"reward {_num(run['reward'])} {run['metrics'] or ''}",
            highlight=False,
        )
    if full and cand["diff"]:
        console.print(Syntax(cand["diff"], "diff", theme="ansi_dark", word_wrap=True))


def _print_run(console: Console, run: dict[str, Any]) -> None:
    t = Table.grid(padding=(0, 2))
    for key in ("id", "candidate_id", "scale", "seed", "sandbox"):
        t.add_row(key, str(run[key]))
    t.add_row("split", run.get("split") or "- (from before splits)")
    if run.get("fidelity") is not None:
        t.add_row("budget", f"{run['fidelity']:.0%} of the training budget (--screen)")
    items = run.get("items")
    t.add_row("items", f"{items['n']} (sha256 {items['sha256'][:16]})" if items else "-")
    t.add_row("status", _styled(run["status"]))
    if run["reason"]:
        t.add_row("reason", run["reason"])
    t.add_row("reward", _num(run["reward"]))
    for k, v in (run["metrics"] or {}).items():
        t.add_row(f"  {k}", _num(v))
    for f in run["flags"] or []:
        t.add_row("flag", f"[red]{f}[/]")
    for k, v in (run["timings"] or {}).items():
        t.add_row(f"{k} time", f"{v:.2f}s")
    for name, path in run["logs"].items():
        t.add_row(name, path)
    console.print(t)


def print_doctor(console: Console, data: dict[str, Any]) -> None:
    t = Table(show_header=False, box=None)
    for c in data["checks"]:
        t.add_row(c["name"], _styled(c["verdict"]), c["detail"])
    console.print(t)


def print_search(console: Console, r: SearchResult) -> None:
    """The search's ideas by status, then the confirmation table and its warnings."""
    counts: dict[str, int] = {}
    for idea in r.ideas:
        counts[idea.status] = counts.get(idea.status, 0) + 1
    shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    console.print(f"search {r.search_id}: {r.env} ({r.scale}): {shown}")
    console.print(f"baseline reward in screening: {r.baseline}")
    for p in r.promotions:
        promoted = sum(d.promoted for d in p.decisions)
        console.print(
            f"epoch {p.epoch}: {promoted} of {len(p.decisions)} promoted after a look at "
            f"{p.share:.0%} of the budget (baseline there: {_num(p.baseline_reward)})"
        )
    if r.confirmation is None:
        console.print("no idea reached confirmation")
        return
    print_table(console, r.confirmation.to_json())


def print_table(console: Console, table: dict[str, Any]) -> None:
    """A confirmation table (its JSON, agent/search/verdicts.py), its pairs of finalists and
    its warnings."""
    from agent.search.table_view import (
        COLUMNS,
        PAIR_COLUMNS,
        PAIRS_NOTE,
        display_pairs,
        display_rows,
    )

    t = Table(
        title=f"confirmation: {table['metric']} ({table['direction']}d) on the confirm split, "
        f"seeds {', '.join(map(str, table['baseline']['seeds'])) or '-'}"
    )
    for col in COLUMNS:
        t.add_column(col, overflow="fold")
    rows = display_rows(table)
    for row in rows:
        t.add_row(*(row[c] for c in COLUMNS))
    console.print(t)
    for row in rows[1:]:
        console.print(
            f"{row['arm']}: {row['text']}: {row['verdict']}, {row['reason']}", highlight=False
        )
    if pairs := display_pairs(table):  # tables stored before pairs have none
        t = Table(title="pairs of finalists", caption=PAIRS_NOTE)
        for col in PAIR_COLUMNS:
            t.add_column(col, overflow="fold")
        for pair in pairs:
            t.add_row(*(pair[c] for c in PAIR_COLUMNS))
        console.print(t)
        for pair in pairs:
            console.print(f"{pair['pair']}: {pair['verdict']}, {pair['reason']}", highlight=False)
    for warning in table["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def print_training(console: Console, r: TrainingResult) -> None:
    """The training's collapse instruments, one row per step."""
    console.print(
        f"training {r.training_id}: {r.env} ({r.scale}), model {r.model}, "
        f"baseline reward {_num(r.baseline)}"
    )
    t = Table(title="collapse instruments per step")
    cols = (
        "step",
        "mean reward",
        "max",
        "ran",
        "top-2 clusters",
        "similarity",
        "tokens",
        "thinking",
        "executed",
        "cached",
    )
    for col in cols:
        t.add_column(col)
    for s in r.steps:
        t.add_row(
            str(s["step"]),
            _num(s["mean_reward"]),
            _num(s["max_reward"]),
            f"{s['execution_rate']:.0%}",
            f"{s['top2_cluster_share']:.0%}",
            f"{s['mean_pairwise_similarity']:.2f}",
            f"{s['completion_tokens']:.0f}",
            f"{s['thinking_tokens']:.0f}",
            f"{s['executed']:.0f}",
            f"{s['cache_hits']:.0f}",
        )
    console.print(t)
    console.print(f"adapter: {r.adapter}")
