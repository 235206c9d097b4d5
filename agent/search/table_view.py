"""The confirmation table (agent/search/verdicts.py) as text cells: what the terminal
(agent/cli/render.py), Markdown (`executor stats --markdown`) and the HTML report show.

Reads the table's JSON, so a table stored by an older executor (without pairs, say) still
displays.
"""

from __future__ import annotations

from typing import Any

COLUMNS = (
    "arm",
    "screen reward",
    "metric [95% CI]",
    "difference [95% CI]",
    "seeds x items",
    "b / c",
    "p",
    "Holm p",
    "verdict",
)


def _num(x: float | None, sign: bool = False) -> str:
    return "-" if x is None else (f"{x:+.4g}" if sign else f"{x:.4g}")


def _p(p: float | None, samples: int) -> str:
    """A p-value; a bootstrap p of 0 means below its resolution, 1 / samples."""
    if p is None:
        return "-"
    return f"<{1 / samples:.0e}" if p == 0 else f"{p:.3g}"


def _ci(mid: float | None, low: float | None, high: float | None, sign: bool = False) -> str:
    if mid is None:
        return "-"
    return f"{_num(mid, sign)} [{_num(low, sign)}, {_num(high, sign)}]"


def _labels(table: dict[str, Any]) -> dict[str, str]:
    """Each row's short label by idea id, numbered by kind in table order: "idea 1", ..."""
    counts = {"idea": 0, "control": 0}
    out = {}
    for r in table["rows"]:
        counts[r["kind"]] += 1
        out[r["idea_id"]] = f"{r['kind']} {counts[r['kind']]}"
    return out


def display_rows(table: dict[str, Any]) -> list[dict[str, str]]:
    """The table (as its JSON) as text cells under COLUMNS (an arm is a short label: "idea
    1", "control 1"), plus each row's full `text` and its verdict's `reason`: the baseline
    first, then each arm; what the terminal, Markdown and the HTML report show."""
    b = table["baseline"]
    samples = table["bootstrap_samples"]
    rows = [
        {
            "arm": "baseline",
            "screen reward": "-",
            "metric [95% CI]": _ci(b["metric"], b["metric_low"], b["metric_high"]),
            "difference [95% CI]": "-",
            "seeds x items": f"{len(b['seeds'])} x {b['items']}",
            "b / c": "-",
            "p": "-",
            "Holm p": "-",
            "verdict": "-",
            "text": "the unchanged baseline",
            "reason": "",
        }
    ]
    labels = _labels(table)
    for r in table["rows"]:
        tested = r["b"] is not None and r["c"] is not None
        rows.append(
            {
                "arm": labels[r["idea_id"]],
                "text": r["text"],
                "screen reward": _num(r["screen_reward"]),
                "metric [95% CI]": _ci(r["metric"], r["metric_low"], r["metric_high"]),
                "difference [95% CI]": _ci(r["diff"], r["diff_low"], r["diff_high"], sign=True),
                "seeds x items": f"{len(r['seeds'])} x {r['items']}",
                "b / c": f"{r['b']} / {r['c']}" if tested else "-",
                "p": _p(r["p"], samples),
                "Holm p": _p(r["p_holm"], samples),
                "verdict": "WIN" if r["wins"] else "no win",
                "reason": r["reason"],
            }
        )
    return rows


PAIR_COLUMNS = (
    "pair",
    "difference A - B [95% CI]",
    "seeds x items",
    "A only / B only",
    "p",
    "Holm p",
    "verdict",
)
# Under every rendering of the pairs: what their verdicts do not say.
PAIRS_NOTE = (
    "Pairs of finalists, A listed first: the difference A - B with the same tests as the "
    'baseline rows, Holm-adjusted across the pairs. "no difference shown" is a failure to '
    "reject, not evidence that the two are equivalent."
)


def display_pairs(table: dict[str, Any]) -> list[dict[str, str]]:
    """The table's pairs (absent from tables stored before them: none) as text cells under
    PAIR_COLUMNS, arms named as in display_rows ("idea 1"), plus each pair's `reason`."""
    by_id = _labels(table)
    samples = table["bootstrap_samples"]
    out = []
    for p in table.get("pairs", []):
        a, b = by_id.get(p["a"], p["a"]), by_id.get(p["b"], p["b"])
        tested = p["a_only"] is not None and p["b_only"] is not None
        shown = {"A better": f"{a} better", "B better": f"{b} better"}.get(
            p["verdict"], p["verdict"]
        )
        out.append(
            {
                "pair": f"{a} vs {b}",
                "difference A - B [95% CI]": _ci(
                    p["diff"], p["diff_low"], p["diff_high"], sign=True
                ),
                "seeds x items": f"{len(p['seeds'])} x {p['items']}",
                "A only / B only": f"{p['a_only']} / {p['b_only']}" if tested else "-",
                "p": _p(p["p"], samples),
                "Holm p": _p(p["p_holm"], samples),
                "verdict": shown,
                "reason": p["reason"],
            }
        )
    return out


def markdown(table: dict[str, Any]) -> str:
    """The table as Markdown: for notes and papers, with each arm's text and verdict below."""
    rows = display_rows(table)
    lines = [
        f"{table['metric']} ({table['direction']}d), confirm split, seeds "
        f"{', '.join(map(str, table['baseline']['seeds'])) or '-'}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(r[c] for c in COLUMNS) + " |" for r in rows]
    lines.append("")
    lines += [f"- {r['arm']}: {r['text']}: {r['verdict']}, {r['reason']}" for r in rows[1:]]
    if pairs := display_pairs(table):
        lines += ["", PAIRS_NOTE, "", "| " + " | ".join(PAIR_COLUMNS) + " |"]
        lines.append("|" + "---|" * len(PAIR_COLUMNS))
        lines += ["| " + " | ".join(p[c] for c in PAIR_COLUMNS) + " |" for p in pairs]
        lines.append("")
        lines += [f"- {p['pair']}: {p['verdict']}, {p['reason']}" for p in pairs]
    lines += [f"- warning: {w}" for w in table["warnings"]]
    return "\n".join(lines) + "\n"
