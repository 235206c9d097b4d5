"""Multi-fidelity screening (`search --screen`): short looks, promotion, and what counts."""

from __future__ import annotations

import difflib
import json
import shutil
import sqlite3
import subprocess
from html import escape as html_escape
from pathlib import Path

import pytest

from agent.executor import RunRequest
from agent.search.config import SearchConfig
from agent.search.fidelity import short_request
from environments import load_environment
from tests.conftest import (
    EXECUTOR,
    TOY_ENV,
    assert_store_consistent,
    clean_environ,
    executor_argv,
    sigkill_when,
    slowed_toy,
)

BUDGET = 40  # the budgeted toy's time budget (seconds); its steps scale with the budget given


def budgeted_toy(toy_env: Path) -> Path:
    """The toy with a time budget: training takes STEPS x (budget given / BUDGET) steps, so a
    short look trains less and scores worse, as a real short budget does."""
    manifest = toy_env / "env.toml"
    text = manifest.read_text().replace(
        "[scales.tiny]\n", f"[scales.tiny]\ntime_budget = {BUDGET}\n", 1
    )
    manifest.write_text(text)
    train = toy_env / "repo" / "train.py"
    train.write_text(
        train.read_text().replace(
            'steps = 2 if "--smoke" in sys.argv else STEPS',
            'share = float(os.environ.get("EXECUTOR_TIME_BUDGET_S", "40")) / 40\n'
            'steps = 2 if "--smoke" in sys.argv else max(2, int(STEPS * share))',
        )
    )
    return toy_env


def rows(runs: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(runs / "executor.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


SEARCH = dict(epochs=1, ideas_per_epoch=4, baseline_seeds=2, rerun_top=1, rerun_seeds=2)


def test_short_request_cuts_the_budget_and_keeps_the_margin(toy_env) -> None:
    env = load_environment(budgeted_toy(toy_env))
    req = RunRequest(env, "tiny", run_dir=toy_env)
    short = short_request(req, 0.25)
    assert short.fidelity == 0.25
    margin = 60 - BUDGET  # the scale's timeout minus its budget
    assert short.timeout_s == pytest.approx(0.25 * BUDGET + margin)
    # A --timeout shortens the full budget first; the share is of what it leaves.
    cut = short_request(RunRequest(env, "tiny", run_dir=toy_env, timeout_s=40), 0.5)
    assert cut.timeout_s == pytest.approx(0.5 * (40 - margin) + margin)


def test_screen_needs_a_budget_epochs_and_sane_shares(toy_env, tmp_path) -> None:
    with pytest.raises(ValueError, match="--screen is a share"):
        SearchConfig(screen=1.0)
    with pytest.raises(ValueError, match="--promote is a share"):
        SearchConfig(screen=0.3, promote=0.0)
    with pytest.raises(ValueError, match="--mode epochs"):
        SearchConfig(screen=0.3, mode="async")
    env = load_environment(toy_env)  # no time_budget in its tiny scale
    with pytest.raises(ValueError, match="needs a training time budget"):
        short_request(RunRequest(env, "tiny", run_dir=tmp_path), 0.3)
    proc = subprocess.run(
        executor_argv("search", toy_env, tmp_path / "runs", screen=0.3, **SEARCH),
        capture_output=True,
        text=True,
        env=clean_environ(),
        timeout=120,
    )
    assert proc.returncode != 0
    assert "needs a training time budget" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "runs" / "executor.db").exists() or not rows(
        tmp_path / "runs", "SELECT id FROM runs"
    )


@pytest.fixture(scope="module")
def screened(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One screened search (4 ideas, the best quarter promoted), shared by the tests below:
    its run directory and its JSON."""
    root = tmp_path_factory.mktemp("screened")
    env = budgeted_toy(Path(shutil.copytree(TOY_ENV, root / "toy_env")))
    runs = root / "runs"
    proc = subprocess.run(
        executor_argv("search", env, runs, screen=0.5, promote=0.25, slots=2, **SEARCH),
        capture_output=True,
        text=True,
        env=clean_environ(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return runs, json.loads(proc.stdout)


def promotion(runs: Path) -> dict:
    return json.loads(rows(runs, "SELECT body FROM search_tables WHERE name = 'promotion:0'")[0][0])


@pytest.mark.slow
def test_a_screened_search_promotes_the_top_share_and_counts_full_runs_only(screened) -> None:
    runs, out = screened
    assert_store_consistent(runs)
    # The baseline ran at both budgets, on the same seeds.
    base = rows(
        runs,
        "SELECT r.seed, r.fidelity FROM runs r JOIN searches s ON r.candidate_id ="
        " s.baseline_candidate WHERE r.split = 'screen'",
    )
    assert sorted(base, key=lambda r: (r[1] or 1, r[0])) == [
        (0, 0.5),
        (1, 0.5),
        (0, None),
        (1, None),
    ]
    table = promotion(runs)
    decisions = table["decisions"]
    assert len(decisions) == 4 and table["slots"] == 1 and table["share"] == 0.5
    promoted = {d["idea_id"] for d in decisions if d["promoted"]}
    assert len(promoted) == 1
    # Every idea had its short look; only the promoted trained at the full budget.
    for d in decisions:
        fids = rows(
            runs,
            "SELECT r.fidelity FROM runs r JOIN candidates c ON r.candidate_id = c.id"
            f" WHERE c.idea_id = '{d['idea_id']}' AND r.seed < 1000",
        )
        assert (0.5,) in fids
        assert ((None,) in fids) == (d["idea_id"] in promoted), (d, fids)
    status = dict(rows(runs, "SELECT idea_id, status FROM search_ideas"))
    for d in decisions:
        want = "succeeded" if d["promoted"] else "screened_out"
        assert status[d["idea_id"]] == want or d["status"] != "succeeded", d
    # The promoted is the best-ranked at the short budget that is not shown worse than the
    # short baseline, and an idea's reward is its full-budget one.
    ranked = sorted((d for d in decisions if d["rank"] is not None), key=lambda d: d["rank"])
    assert promoted == {next(d["idea_id"] for d in ranked if not d["worse"])}
    by_id = {i["idea_id"]: i for i in out["ideas"]}
    for d in decisions:
        if d["promoted"]:
            assert by_id[d["idea_id"]]["reward"] != pytest.approx(d["reward"])
        else:
            assert by_id[d["idea_id"]]["reward"] is None
    assert out["confirmation"]["rows"][0]["idea_id"] in promoted
    assert [p["epoch"] for p in out["promotions"]] == [0]
    assert out["promotions"][0]["decisions"] == decisions  # the stored decisions, as JSON


@pytest.mark.slow
def test_show_and_the_report_give_each_promotion(screened) -> None:
    runs, _ = screened
    out_of = next(d for d in promotion(runs)["decisions"] if not d["promoted"] and d["rank"])
    shown = subprocess.run(
        [str(EXECUTOR), "show", out_of["idea_id"], "--run-dir", str(runs)],
        capture_output=True,
        text=True,
        env=clean_environ(),
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "screening: not promoted at 50% of the budget" in shown.stdout
    assert "at 50% of the budget: succeeded" in shown.stdout  # its short run, labelled
    as_json = subprocess.run(
        [str(EXECUTOR), "show", out_of["idea_id"], "--run-dir", str(runs), "--json"],
        capture_output=True,
        text=True,
        env=clean_environ(),
        timeout=60,
    )
    assert json.loads(as_json.stdout)["screening"]["promoted"] is False
    report = subprocess.run(
        [str(EXECUTOR), "report", str(runs)],
        capture_output=True,
        text=True,
        env=clean_environ(),
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    html = Path(report.stdout.strip().splitlines()[-1]).read_text()
    assert "Screening (--screen)" in html and "1 of 4 promoted" in html
    assert html_escape(out_of["reason"], quote=False) in html.replace("&#39;", "'")


@pytest.mark.slow
def test_an_idea_shown_worse_than_the_short_baseline_is_not_promoted(toy_env, tmp_path) -> None:
    env = budgeted_toy(toy_env)
    runs = tmp_path / "runs"
    ideas = tmp_path / "ideas.jsonl"
    train = env / "repo" / "train.py"
    diff_ok = _diff(train, "LR = 0.01", "LR = 0.02")
    # Learns almost nothing: worse than the baseline at any budget.
    diff_bad = _diff(train, "LR = 0.01", "LR = 0.0001")
    ideas.write_text(
        json.dumps({"idea": "slightly higher lr", "code_diff": diff_ok})
        + "\n"
        + json.dumps({"idea": "tiny lr", "code_diff": diff_bad})
        + "\n"
    )
    proc = subprocess.run(
        executor_argv(
            "search",
            env,
            runs,
            screen=0.5,
            promote=1.0,
            ideator=f"replay:{ideas}",
            epochs=1,
            ideas_per_epoch=2,
            baseline_seeds=2,
            rerun_top=1,
            rerun_seeds=2,
        ),
        capture_output=True,
        text=True,
        env=clean_environ(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    table = json.loads(
        rows(runs, "SELECT body FROM search_tables WHERE name = 'promotion:0'")[0][0]
    )
    by_text = {d["text"]: d for d in table["decisions"]}
    assert table["slots"] == 2  # --promote 1.0: every idea could be promoted ...
    assert by_text["tiny lr"]["worse"] and not by_text["tiny lr"]["promoted"]  # ... but this
    assert "shown worse than the baseline" in by_text["tiny lr"]["reason"]
    assert by_text["slightly higher lr"]["promoted"]


def _diff(path: Path, old: str, new: str) -> str:
    before = path.read_text()
    after = before.replace(old, new, 1)
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        "a/train.py",
        "b/train.py",
    )
    return "".join(lines)


@pytest.mark.slow
def test_a_search_killed_after_its_short_looks_resumes_to_the_same_promotions(
    toy_env, tmp_path
) -> None:
    env = slowed_toy(budgeted_toy(toy_env), 0.5)
    runs = tmp_path / "runs"
    cmd = executor_argv("search", env, runs, screen=0.5, promote=0.5, slots=2, **SEARCH)

    def promoted_running() -> bool:
        try:
            return bool(
                rows(
                    runs,
                    "SELECT 1 FROM runs r JOIN search_tables t ON t.name = 'promotion:0'"
                    " WHERE r.fidelity IS NULL AND r.status = 'running' AND r.seed < 1000"
                    " AND r.candidate_id NOT IN (SELECT baseline_candidate FROM searches)",
                )
            )
        except sqlite3.OperationalError:
            return False

    sigkill_when(cmd, promoted_running, 300, 0.1, lambda: "no promoted run started")
    before = rows(runs, "SELECT body FROM search_tables WHERE name = 'promotion:0'")
    proc = subprocess.run(
        [*cmd, "--resume"], capture_output=True, text=True, env=clean_environ(), timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert rows(runs, "SELECT body FROM search_tables WHERE name = 'promotion:0'") == before
    assert_store_consistent(runs)
    # No idea had a second short look: the short runs that finished were kept.
    short = rows(
        runs,
        "SELECT c.idea_id, r.seed, COUNT(*) FROM runs r JOIN candidates c ON r.candidate_id"
        " = c.id WHERE r.fidelity = 0.5 AND r.status != 'cancelled' GROUP BY c.idea_id, r.seed",
    )
    assert all(n == 1 for _, _, n in short), short
