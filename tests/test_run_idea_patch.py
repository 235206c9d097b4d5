"""End to end without an LLM: `run-idea --patch`, validation verdicts, bad input, show, baseline."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import (
    EXECUTOR,
    TOY_ENV,
    CLIResult,
    assert_one_line_error,
    assert_store_consistent,
    clean_environ,
    our_step_processes,
    store_rows,
)


def write_patch(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "idea.patch"
    p.write_text(text)
    return p


def sr(search: str, replace: str, path: str = "train.py") -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


# The toy's shipped idea: it applies, validates and beats the baseline.
SHIPPED_PATCH = TOY_ENV / "ideas" / "more_steps.patch"


def run_idea(
    cli: Callable[..., CLIResult],
    patch: Path,
    env: Path | str,
    run_dir: Path,
    *flags: str,
    title: str | None = None,
) -> CLIResult:
    """`executor run-idea [TITLE] --patch PATCH --env ENV --run-dir RUN_DIR FLAGS...`."""
    named = [] if title is None else [title]
    return cli("run-idea", *named, "--patch", patch, "--env", env, "--run-dir", run_dir, *flags)


@pytest.mark.slow
def test_shipped_patch_beats_baseline(cli, toy_env, run_dir) -> None:
    res = run_idea(cli, SHIPPED_PATCH, toy_env, run_dir, "--json")
    assert res.rc == 0, res
    out = res.json
    assert out["status"] == "succeeded" and out["reward"] > 0.9
    assert out["idea_id"].startswith("idea-") and out["candidate_id"].startswith("cand-")
    # The idea text came from the patch's prose.
    (idea,) = store_rows(run_dir, "ideas")
    assert idea["text"].startswith("Raise the learning rate") and idea["source"] == "patch"
    base = cli("baseline", "--env", toy_env, "--seeds", "2", "--run-dir", run_dir, "--json")
    assert base.rc == 0, base
    summary = base.json["summary"]
    assert summary["reward"]["n"] == 2 and summary["reward"]["mean"] < out["reward"]
    assert summary["val_mse"]["std"] > 0  # seeds differ
    assert out["baseline"] is None  # nothing measured yet when the idea ran
    again = run_idea(cli, SHIPPED_PATCH, toy_env, run_dir, "--json")
    seed0 = next(r["reward"] for r in base.json["runs"] if r["seed"] == 0)
    assert again.json["baseline"] == {
        **summary["reward"],
        "source": "measured",
        "seed_reward": seed0,  # the idea ran seed 0: the baseline's seed 0 is its match
        "measured_by": base.json["candidate_id"],
        "other_conditions": 0,
    }
    # A later baseline under other conditions (another training limit) is not pooled in, and
    # a later one under the same conditions replaces the first rather than joining it.
    other = cli("baseline", "--env", toy_env, "--seeds", "2", "--timeout", "30",
                "--run-dir", run_dir, "--json")  # fmt: skip
    assert other.rc == 0, other
    third = run_idea(cli, SHIPPED_PATCH, toy_env, run_dir, "--json").json["baseline"]
    assert third["measured_by"] == base.json["candidate_id"] and third["n"] == 2
    assert third["other_conditions"] == 2
    latest = cli("baseline", "--env", toy_env, "--seeds", "3", "--run-dir", run_dir, "--json")
    fourth = run_idea(cli, SHIPPED_PATCH, toy_env, run_dir, "--json").json["baseline"]
    assert fourth["measured_by"] == latest.json["candidate_id"] and fourth["n"] == 3
    assert_store_consistent(run_dir)


@pytest.mark.slow
def test_relative_paths_and_default_run_dir(cli, toy_env, tmp_path) -> None:
    res = cli("run-idea", "--patch", SHIPPED_PATCH, "--env", "toy_env", "--json", cwd=tmp_path)
    assert res.rc == 0, res
    assert Path(res.json["artifacts"]).is_relative_to(tmp_path / "runs")
    assert_store_consistent(tmp_path / "runs")


@pytest.mark.slow
def test_unified_diff_patch(cli, toy_env, run_dir, tmp_path) -> None:
    diff = (
        "--- a/train.py\n+++ b/train.py\n@@ -10,3 +10,3 @@\n"
        " \n-LR = 0.01\n+LR = 0.05\n STEPS = 100\n"
    )
    res = run_idea(cli, write_patch(tmp_path, diff), toy_env, run_dir, "--json", title="lr 0.05")
    assert res.rc == 0, res
    assert "+LR = 0.05" in res.json["diff"]


@pytest.mark.parametrize(
    ("patch", "phase", "needle"),
    [
        (sr("", "x = 1", path="data.py"), "apply", "data.py"),
        (sr("STEPS = 100", "STEPS = 100 +"), "compile", "train.py, line"),
        (
            sr("STEPS = 100", "STEPS = 100\nif '--smoke' in sys.argv:\n    raise SystemExit(3)"),
            "smoke",
            "exited with code 3",
        ),
        (
            sr(
                "STEPS = 100",
                "STEPS = 100\nif '--smoke' in sys.argv:\n    open('data.py', 'a').write('#')",
            ),
            "protected",
            "the smoke step wrote files: protected files were changed: data.py",
        ),
        (
            sr(
                "STEPS = 100",
                "STEPS = 100\nif '--smoke' in sys.argv:\n    open('evil.py', 'w').write('')",
            ),
            "protected",
            "evil.py",
        ),
    ],
    ids=["protected", "compile", "smoke", "smoke-writes-protected", "smoke-adds-a-file"],
)
def test_invalid_candidates_are_rejected(cli, toy_env, run_dir, tmp_path, patch, phase, needle):
    res = run_idea(cli, write_patch(tmp_path, patch), toy_env, run_dir, "--json", title="bad idea")
    assert res.rc == 1, res
    out = res.json
    assert out["status"] == "rejected" and out["run_id"] is None
    (attempt,) = out["attempts"]
    assert attempt["phase"] == phase and needle in attempt["error"], attempt
    (cand,) = store_rows(run_dir, "candidates")
    assert cand["status"] == "rejected" and needle in cand["error"]
    assert store_rows(run_dir, "runs") == []
    assert_store_consistent(run_dir)


def test_patch_that_does_not_apply(cli, toy_env, run_dir, tmp_path) -> None:
    patch = write_patch(tmp_path, sr("LR = 0.5", "LR = 0.1"))
    res = run_idea(cli, patch, toy_env, run_dir, title="x")
    assert_one_line_error(res, "rejected", "apply")
    (attempt,) = store_rows(run_dir, "attempts")
    assert "LR = 0.01" in attempt["error"]  # nearest lines recorded for the reader
    assert_store_consistent(run_dir)


def test_patch_without_edits_writes_nothing(cli, toy_env, run_dir, tmp_path) -> None:
    res = run_idea(cli, write_patch(tmp_path, "just prose\n"), toy_env, run_dir)
    assert_one_line_error(res)
    assert not (run_dir / "executor.db").exists()


def test_missing_patch_file(cli, toy_env, run_dir, tmp_path) -> None:
    res = run_idea(cli, tmp_path / "nope.patch", toy_env, run_dir)
    assert_one_line_error(res, "nope.patch")
    assert not (run_dir / "executor.db").exists()


def test_unknown_environment(cli, run_dir) -> None:
    res = run_idea(cli, SHIPPED_PATCH, "no_such_env", run_dir, title="x")
    assert_one_line_error(res, "unknown environment 'no_such_env'")
    assert not run_dir.exists()


def test_unknown_scale(cli, toy_env, run_dir) -> None:
    res = cli("baseline", "--env", toy_env, "--scale", "huge", "--run-dir", run_dir)
    assert_one_line_error(res, "no scale 'huge'", "tiny")


@pytest.mark.slow
def test_broken_manifest(cli, toy_env, run_dir) -> None:
    manifest = toy_env / "env.toml"
    manifest.write_text(
        manifest.read_text().replace('direction = "minimize"', 'direction = "down"')
    )
    res = cli("baseline", "--env", toy_env, "--run-dir", run_dir)
    assert_one_line_error(res, "env.toml", "metric.direction")
    manifest.write_text("name = [unclosed")
    res = cli("baseline", "--env", toy_env, "--run-dir", run_dir)
    assert_one_line_error(res, "env.toml", "invalid TOML")
    assert not run_dir.exists()


def test_unknown_sandbox_kind(cli, toy_env, run_dir) -> None:
    res = cli("baseline", "--env", toy_env, "--sandbox", "vm", "--run-dir", run_dir)
    assert_one_line_error(res, "unknown sandbox kind 'vm'", "local")


@pytest.mark.slow
def test_timeout_kills_the_run(cli, toy_env, run_dir, tmp_path) -> None:
    patch = sr(
        "x, y = train_split(seed)", "x, y = train_split(seed)\nif steps > 2:\n    time.sleep(60)"
    )
    res = run_idea(
        cli,
        write_patch(tmp_path, patch),
        toy_env,
        run_dir,
        "--timeout",
        "1",
        "--json",
        title="sleep",
    )
    assert res.rc == 1, res
    assert res.json["status"] == "timeout" and "1s limit" in res.json["reason"]
    assert res.json["timings"]["train"] < 10
    (run,) = store_rows(run_dir, "runs")
    assert run["status"] == "timeout"
    assert_store_consistent(run_dir)


@pytest.mark.slow
def test_show_idea_candidate_and_run(cli, toy_env, run_dir) -> None:
    out = run_idea(cli, SHIPPED_PATCH, toy_env, run_dir, "--json").json
    idea = cli("show", out["idea_id"], "--run-dir", run_dir, "--json").json
    assert (
        idea["kind"] == "idea" and idea["candidates"][0]["candidate"]["id"] == out["candidate_id"]
    )
    cand = cli("show", out["candidate_id"][:9], "--run-dir", run_dir, "--json").json
    assert cand["kind"] == "candidate" and cand["candidate"]["diff"] == out["diff"]
    assert cand["runs"][0]["reward"] == out["reward"]
    run = cli("show", out["run_id"], "--run-dir", run_dir, "--json").json["run"]
    assert run["status"] == "succeeded" and "train.stderr" in run["logs"]
    human = cli("show", out["candidate_id"], "--run-dir", run_dir)
    assert human.rc == 0 and "+LR = 0.1" in human.stdout
    missing = cli("show", "idea-nothere", "--run-dir", run_dir)
    assert_one_line_error(missing, "idea-nothere")
    (listed,) = cli("show", "--run-dir", run_dir, "--json").json["ideas"]
    assert listed["id"] == out["idea_id"] and listed["best_reward"] == out["reward"]
    assert listed["candidate_status"] == "validated" and listed["runs"] == 1
    assert out["idea_id"] in cli("show", "--run-dir", run_dir).stdout


@pytest.mark.slow
def test_envs_lists_path_environments(cli, toy_env) -> None:
    res = cli("envs", "--json", EXECUTOR_ENV_PATH=str(toy_env.parent))
    assert res.rc == 0, res
    (env,) = [e for e in res.json["environments"] if e["name"] == "toy"]
    assert "tiny" in env["scales"]
    runs = toy_env.parent / "runs"
    by_name = cli(
        "baseline",
        "--env",
        "toy",
        "--seeds",
        "1",
        "--json",
        "--run-dir",
        runs,
        EXECUTOR_ENV_PATH=str(toy_env.parent),
    )
    assert by_name.rc == 0, by_name


@pytest.mark.slow
def test_doctor_reports_each_check(cli) -> None:
    res = cli("doctor", "--json")
    names = {c["name"]: c["verdict"] for c in res.json["checks"]}
    assert names["python"] == "ok" and names["torch"] == "ok" and names["git"] == "ok"
    assert names["OPENAI_API_KEY"] == "warn"  # the test environment has no keys
    assert {"gpus", "docker", "ray", "cgroups", "ANTHROPIC_API_KEY"} <= names.keys()
    assert names["ideator-rl"] == "ok"  # TRL and PEFT are dependencies
    details = {c["name"]: c["detail"] for c in res.json["checks"]}
    assert details["gpus"].startswith("0 ")  # no GPU on the test machines
    from sandbox.local import isolation_problem

    # make test installs bubblewrap: the doctor says which case applies, and why.
    why = isolation_problem()
    assert names["local sandbox"] == ("ok" if why is None else "warn")
    assert ("bubblewrap isolates" in details["local sandbox"]) == (why is None)
    assert res.rc == 0


@pytest.mark.slow
def test_unisolated_local_sandbox_warns_in_one_line(cli, toy_env, run_dir) -> None:
    res = run_idea(cli, SHIPPED_PATCH, toy_env, run_dir, "--sandbox", "local:isolation=none")
    assert res.rc == 0, res
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "cannot isolate" in warnings[0] and "eval-only" in warnings[0]
    quiet = run_idea(cli, SHIPPED_PATCH, toy_env, run_dir)
    assert "warning:" not in quiet.stderr, quiet


@pytest.mark.slow
def test_human_output(cli, toy_env, run_dir) -> None:
    res = run_idea(cli, SHIPPED_PATCH, toy_env, run_dir)
    assert res.rc == 0, res
    assert "succeeded" in res.stdout and "reward" in res.stdout


@pytest.mark.slow
@pytest.mark.parametrize("inherited_ignore", [False, True], ids=["default", "sigint-ignored"])
def test_ctrl_c_cancels_cleanly(toy_env, run_dir, tmp_path, inherited_ignore: bool) -> None:
    """Ctrl-C cancels the run, also when the executor was started with SIGINT ignored (a
    background job; some earlier test in a long pytest session left it so)."""
    # Training may write only its output folder (and sees its own PID namespace): the marker
    # goes there, and what survives is found by environment, not by pid.
    patch = sr(
        "x, y = train_split(seed)",
        "x, y = train_split(seed)\nif steps > 2:\n    open(os.path.join(out_dir, 'train.pid'), "
        "'w').write(str(os.getpid()))\n    time.sleep(60)",
    )
    cmd = [
        str(EXECUTOR),
        "run-idea",
        "sleepy",
        "--patch",
        str(write_patch(tmp_path, patch)),
        "--env",
        str(toy_env),
        "--run-dir",
        str(run_dir),
    ]
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if inherited_ignore else None
    proc = subprocess.Popen(
        cmd, env=clean_environ(), stderr=subprocess.PIPE, text=True, preexec_fn=ignore
    )
    deadline = time.monotonic() + 60
    while not list(run_dir.glob("artifacts/*/output/train.pid")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(run_dir.glob("artifacts/*/output/train.pid")), "training never started"
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        # Say which process hung, so a rare failure here can be diagnosed from the CI log.
        executor_alive = proc.poll() is None
        training_alive = our_step_processes(run_dir) != []
        proc.kill()
        _, stderr = proc.communicate()
        pytest.fail(
            f"no exit 30 s after Ctrl-C (executor alive: {executor_alive}, training alive: "
            f"{training_alive}); stderr: {stderr[-1500:]}"
        )
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    (run,) = store_rows(run_dir, "runs")
    assert run["status"] == "cancelled"
    time.sleep(0.2)
    assert our_step_processes(run_dir) == [], "training outlived Ctrl-C"
    assert_store_consistent(run_dir)


@pytest.mark.slow
def test_a_run_dir_pinned_under_older_rules_is_refused(cli, toy_env, run_dir) -> None:
    """Results scored before eval-only data and the evaluation secret do not mix with new ones."""
    assert run_idea(cli, SHIPPED_PATCH, toy_env, run_dir).rc == 0
    (pin,) = run_dir.glob("repos/*/.git/executor-env-files.json")
    pin.write_text(json.dumps(json.loads(pin.read_text())["files"]))  # the old, flat format
    res = run_idea(cli, SHIPPED_PATCH, toy_env, run_dir)
    assert_one_line_error(res, "older reward-integrity rules", "--run-dir")
    assert res.rc == 2
    assert len(store_rows(run_dir, "runs")) == 1  # nothing new was run
