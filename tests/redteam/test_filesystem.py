"""Red team, environment-independent attacks on the toy environment, in every sandbox kind.

Each candidate is an informed adversary: it knows every absolute path (the test writes them
into its code), the evaluator, and the harness. It trains normally after its attack, so a
run that succeeds shows the attack bought nothing; the test then checks that nothing was
read or written.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
import uuid
from pathlib import Path

import pytest

from runner.run import RunOutcome
from sandbox import RunStatus
from tests.conftest import TOY_ENV, our_step_processes
from tests.redteam.conftest import ROOT, canary_of, private_env, record, run_attack

# Each attack runs a candidate end to end (train, evaluate) in a sandbox.
pytestmark = pytest.mark.slow

TRAIN = (TOY_ENV / "repo" / "train.py").read_text()

PROBE = """
import glob, json, os
found = {}

def probe(name, path):
    try:
        with open(path, "rb") as f:
            found[name] = f.read(4096).decode(errors="replace")
    except OSError as e:
        found[name] = "refused: " + type(e).__name__

def save_probe():
    with open(os.path.join(os.environ["EXECUTOR_OUTPUT_DIR"], "probe.json"), "w") as f:
        json.dump(found, f)
"""


def hostile(attack: str) -> str:
    """A train.py that runs `attack` first, records what it found, then trains as usual."""
    return PROBE + attack + "\nsave_probe()\n\n" + TRAIN


def _row(name: str, sandbox: str, outcome: RunOutcome) -> None:
    record(name, sandbox, str(outcome.status), outcome.reason or "no effect: run scored normally")


async def test_reading_eval_only_data_by_every_route_finds_nothing(sandbox, tmp_path) -> None:
    env_dir = private_env(TOY_ENV, tmp_path)
    canary = canary_of(env_dir)
    heldout = env_dir / "heldout"
    ws_guess = tmp_path / "runs" / "workspaces" / "x"  # the workspace's depth, for `..` routes
    relative = os.path.relpath(heldout / "canary.txt", ws_guess)
    attack = f"""
env = os.environ["EXECUTOR_ENV_DIR"]
probe("env_folder", os.path.join(env, "heldout", "canary.txt"))
probe("absolute", {str(heldout / "canary.txt")!r})
probe("relative", {relative!r})
try:
    os.symlink({str(heldout)!r}, "heldout_link")
    probe("symlink", "heldout_link/canary.txt")
except OSError as e:
    found["symlink"] = "refused: " + type(e).__name__
probe("proc_self_root", "/proc/self/root" + {str(heldout / "canary.txt")!r})
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    probe("proc_root_" + pid, "/proc/" + pid + "/root" + {str(heldout / "canary.txt")!r})
    probe("proc_cwd_" + pid, "/proc/" + pid + "/cwd/" + {relative!r})
    probe("proc_environ_" + pid, "/proc/" + pid + "/environ")
for root in ({str(tmp_path)!r}, "/tmp", env):
    for path in glob.glob(root + "/**/canary.txt", recursive=True):
        probe("search_" + path, path)
"""
    a = await run_attack(env_dir, {"train.py": hostile(attack)}, tmp_path, sandbox)
    _row(
        "read eval-only data (env folder, absolute, relative, symlink, /proc, search)",
        sandbox,
        a.outcome,
    )
    assert a.outcome.status is RunStatus.SUCCEEDED, a.outcome.reason
    found = a.probe()
    assert {"env_folder", "absolute", "relative", "symlink", "proc_self_root"} <= set(found)
    assert canary.encode() not in a.text_everywhere()
    assert all(canary not in v for v in found.values())
    # The evaluator, and only it, still read the held-out seed: the score is the usual one.
    assert a.outcome.metrics["val_mse"] < 1.0


async def test_reading_the_evaluation_secret_finds_nothing(sandbox, tmp_path) -> None:
    env_dir = private_env(TOY_ENV, tmp_path)
    run_dir = tmp_path / "runs"
    attack = f"""
found["env_var"] = os.environ.get("EXECUTOR_EVAL_SECRET", "absent")
for path in glob.glob({str(run_dir)!r} + "/repos/*/.git/executor-eval-secret"):
    probe("file_" + path, path)
probe("guessed_file", {str(run_dir)!r} + "/repos/secret")
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    probe("environ_" + pid, "/proc/" + pid + "/environ")
"""
    a = await run_attack(env_dir, {"train.py": hostile(attack)}, tmp_path, sandbox)
    _row("read the run directory's evaluation secret", sandbox, a.outcome)
    assert a.outcome.status is RunStatus.SUCCEEDED, a.outcome.reason
    assert a.probe()["env_var"] == "absent"
    assert a.secret.encode() not in a.text_everywhere()


async def test_writing_outside_the_step_s_folders_changes_nothing(sandbox, tmp_path) -> None:
    env_dir = private_env(TOY_ENV, tmp_path)
    run_dir = tmp_path / "runs"
    tag = uuid.uuid4().hex
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    targets = {
        "store": run_dir / "executor.db",
        "other_run": run_dir / "artifacts" / "run-other" / "eval" / "result.json",
        "environment": env_dir / "evaluate.py",
        "pins": run_dir / "repos",  # the pinned hashes live under repos/<env>-<hash>/.git
        "venv_pth": site / f"redteam_{tag}.pth",  # a .pth would run code in every Python
        "project": ROOT / f".redteam_{tag}",
        "home": Path.home() / f".redteam_{tag}",
        "host_tmp": Path("/tmp") / f"redteam_{tag}",
    }
    # A store with a row in it, and another run's real result, exist before the attack.
    run_dir.mkdir(parents=True)
    db = sqlite3.connect(targets["store"])
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    db.commit()
    db.close()
    targets["other_run"].parent.mkdir(parents=True)
    targets["other_run"].write_text('{"metrics": {"val_mse": 0.5}}')
    before = {k: _snapshot(p) for k, p in targets.items()}
    attack = f"""
def write(name, path, text="forged"):
    try:
        with open(path, "a") as f:
            f.write(text)
        found[name] = "WROTE"
    except OSError as e:
        found[name] = "refused: " + type(e).__name__
targets = {json.dumps({k: str(v) for k, v in targets.items()})}
for name, path in targets.items():
    write(name, path)
for pin in glob.glob(targets["pins"] + "/*/.git/executor-env-files.json"):
    write("pin_file", pin, "{{}}")
write("pins_new", targets["pins"] + "/forged.json")
"""
    a = await run_attack(env_dir, {"train.py": hostile(attack)}, tmp_path, sandbox)
    _row(
        "write the store, other runs, the environment, the pins, the venv, home, /tmp",
        sandbox,
        a.outcome,
    )
    try:
        assert a.outcome.status is RunStatus.SUCCEEDED, a.outcome.reason
        # The step's own /tmp is private: a write under /tmp (where pytest keeps this run
        # directory) lands in that scratch copy; every other write is refused outright.
        under_tmp = {k for k, p in targets.items() if p.is_relative_to("/tmp")}
        wrote = {k for k, v in a.probe().items() if v == "WROTE"}
        assert wrote <= under_tmp | {"pins_new", "pin_file"}, a.probe()
        after = {k: _snapshot(p) for k, p in targets.items() if k != "pins"}
        assert after == {k: v for k, v in before.items() if k != "pins"}
        pin = next((run_dir / "repos").glob("*/.git/executor-env-files.json"))
        assert json.loads(pin.read_text())["rules"] == 2
    finally:
        for key in ("venv_pth", "project", "home", "host_tmp"):
            targets[key].unlink(missing_ok=True)


def _snapshot(path: Path) -> bytes | None:
    if path.is_dir():
        return b"dir"
    return path.read_bytes() if path.exists() else None


async def test_a_process_that_outlives_its_step_cannot_rewrite_the_result(
    sandbox, tmp_path
) -> None:
    env_dir = private_env(TOY_ENV, tmp_path)
    late = """
import json, os, sys, time
time.sleep(3)
out = os.environ["EXECUTOR_OUTPUT_DIR"]
forged = {"metrics": {"val_mse": 0.0}, "flags": []}
for path in (os.path.join(os.path.dirname(out), "eval", "result.json"),
             os.path.join(out, "late.txt")):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        json.dump(forged, open(path, "w"))
    except OSError:
        pass
"""
    attack = f"""
import subprocess, sys
# Double fork and a new session: out of the step's process group.
subprocess.Popen([sys.executable, "-c", {late!r}], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
found["spawned"] = "yes"
"""
    a = await run_attack(env_dir, {"train.py": hostile(attack)}, tmp_path, sandbox)
    _row("a process outlives training and rewrites the result after evaluation", sandbox, a.outcome)
    assert a.outcome.status is RunStatus.SUCCEEDED, a.outcome.reason
    await asyncio.sleep(4)  # past the moment the straggler would have written
    assert our_step_processes(tmp_path) == []
    result = json.loads((a.artifacts / "eval" / "result.json").read_text())
    assert result["metrics"]["val_mse"] == a.outcome.metrics["val_mse"] > 0.0
    assert not (a.artifacts / "output" / "late.txt").exists()


async def test_filling_the_disk_is_stopped_at_the_limit(sandbox, tmp_path) -> None:
    env_dir = private_env(TOY_ENV, tmp_path)  # its tiny scale allows 0.25 GB
    fill = """
import os
chunk = os.urandom(1 << 20)
for i in range(10_000):  # 100 GB in 10 MB files (each under the one-file cap) if nothing stops it
    with open(os.path.join(os.environ["EXECUTOR_OUTPUT_DIR"], f"fill{i}.bin"), "wb") as f:
        for _ in range(10):
            f.write(chunk)
"""
    t0 = time.monotonic()
    a = await run_attack(env_dir, {"train.py": fill}, tmp_path, sandbox)
    _row("fill the disk", sandbox, a.outcome)
    assert a.outcome.status is RunStatus.KILLED, a.outcome.reason
    assert "0.25 GB disk limit" in str(a.outcome.reason)
    assert time.monotonic() - t0 < 60
    written = sum(p.stat().st_size for p in a.artifacts.rglob("*") if p.is_file())
    assert written < 1.0 * 1024**3


async def test_a_sparse_file_cannot_claim_more_than_the_limit(sandbox, tmp_path) -> None:
    env_dir = private_env(TOY_ENV, tmp_path)
    attack = """
try:
    with open(os.path.join(os.environ["EXECUTOR_OUTPUT_DIR"], "sparse.bin"), "wb") as f:
        f.seek(50 * 1024**3)
        f.write(b"x")
    found["sparse"] = "WROTE"
except OSError as e:
    found["sparse"] = "refused: " + type(e).__name__ + " " + str(e)
"""
    a = await run_attack(env_dir, {"train.py": hostile(attack)}, tmp_path, sandbox)
    _row("a 50 GB sparse file", sandbox, a.outcome)
    assert a.probe()["sparse"].startswith("refused"), a.probe()
    assert a.outcome.status is RunStatus.SUCCEEDED, a.outcome.reason


async def test_forged_checkpoint_times_are_replaced_by_the_harness_s(sandbox, tmp_path) -> None:
    """The speedrun scale's time to target comes from times the harness saw; this toy copy
    declares timed outputs and an evaluator that reports them, as pretrain_nanogpt's does."""
    env_dir = private_env(TOY_ENV, tmp_path)
    toml = env_dir / "env.toml"
    timed = 'disk_gb = 0.25\ntimed_outputs = ["ckpt_*.npz"]'
    toml.write_text(toml.read_text().replace("disk_gb = 0.25", timed))
    (env_dir / "evaluate.py").write_text(
        (env_dir / "evaluate.py").read_text()
        + """
times = json.load(open(os.environ["EXECUTOR_OUTPUT_TIMES"]))
claimed = float(np.load(os.path.join(os.environ["EXECUTOR_OUTPUT_DIR"], "ckpt_1.npz"))["elapsed"])
with open(os.environ["EXECUTOR_RESULT_PATH"], "w") as f:
    json.dump({"metrics": {"val_mse": mse, "time_to_ckpt_s": times["ckpt_1.npz"],
                           "claimed_s": claimed}, "flags": flags}, f)
"""
    )
    attack = """
import time
import numpy as np
time.sleep(2.5)
path = os.path.join(os.environ["EXECUTOR_OUTPUT_DIR"], "ckpt_1.npz")
np.savez(path, elapsed=0.01)  # "reached the target after 10 ms"
os.utime(path, (0, 0))  # and a modification time from 1970
found["forged"] = "yes"
"""
    a = await run_attack(env_dir, {"train.py": hostile(attack)}, tmp_path, sandbox)
    _row("forge checkpoint timings", sandbox, a.outcome)
    assert a.outcome.status is RunStatus.SUCCEEDED, a.outcome.reason
    assert a.outcome.metrics["claimed_s"] == 0.01
    assert a.outcome.metrics["time_to_ckpt_s"] >= 2.5


async def test_hijacking_the_workspace_git_pointer_runs_nothing(sandbox, tmp_path) -> None:
    """The harness runs git in the workspace after a step: a step that pointed `.git` at a
    repository of its own (with an fsmonitor hook) would run code outside the sandbox."""
    env_dir = private_env(TOY_ENV, tmp_path)
    pwned = Path("/tmp") / f"redteam-pwned-{uuid.uuid4().hex}"
    attack = f"""
evil = os.path.abspath("evil.git")
for d in ("objects", "refs/heads"):
    os.makedirs(os.path.join(evil, d), exist_ok=True)
open(os.path.join(evil, "HEAD"), "w").write("ref: refs/heads/main\\n")
open(os.path.join(evil, "config"), "w").write(
    "[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = \\"touch {pwned}; false\\"\\n")
for how in ("write", "replace"):
    try:
        if how == "write":
            open(".git", "w").write("gitdir: " + evil + "\\n")
        else:
            open("git.tmp", "w").write("gitdir: " + evil + "\\n")
            os.replace("git.tmp", ".git")
        found["hijack_" + how] = "WROTE"
    except OSError as e:
        found["hijack_" + how] = "refused: " + type(e).__name__
"""
    a = await run_attack(env_dir, {"train.py": hostile(attack)}, tmp_path, sandbox)
    _row("rewrite the workspace's .git pointer (fsmonitor hook)", sandbox, a.outcome)
    import git

    git.Repo(a.workspace).git.add(A=True)  # what the harness does after a smoke step
    assert not pwned.exists()
    assert "WROTE" not in a.probe().values(), a.probe()
    assert a.outcome.status is RunStatus.SUCCEEDED, a.outcome.reason


async def test_a_rewritten_git_pointer_is_restored_and_flagged_unisolated(tmp_path) -> None:
    """Without bubblewrap the write lands; the harness restores the pointer and flags the step."""
    env_dir = private_env(TOY_ENV, tmp_path)
    attack = 'open(".git", "w").write("gitdir: /nowhere\\n")\n'
    a = await run_attack(env_dir, {"train.py": hostile(attack)}, tmp_path, "local:isolation=none")
    record(
        "rewrite the workspace's .git pointer",
        "local, unisolated",
        str(a.outcome.status),
        a.outcome.reason,
    )
    assert a.outcome.status is RunStatus.FLAGGED and ".git pointer" in str(a.outcome.reason)
    assert (a.workspace / ".git").read_text().startswith("gitdir: ")
    assert "/nowhere" not in (a.workspace / ".git").read_text()


async def test_training_past_its_budget_is_flagged(sandbox, tmp_path) -> None:
    """The harness kills training only at the timeout, a margin after the time budget; a
    candidate that keeps training into the margin buys compute no other arm gets."""
    env_dir = private_env(TOY_ENV, tmp_path)
    toml = env_dir / "env.toml"
    budget = 'disk_gb = 0.25\ntime_budget = 2\ntimed_outputs = ["model.npz"]'
    toml.write_text(toml.read_text().replace("disk_gb = 0.25", budget))
    attack = """
import time
time.sleep(float(os.environ["EXECUTOR_TIME_BUDGET_S"]) + 3)  # ignore the budget
"""
    a = await run_attack(env_dir, {"train.py": hostile(attack)}, tmp_path, sandbox)
    _row("train past the time budget, inside the kill margin", sandbox, a.outcome)
    assert a.outcome.status is RunStatus.FLAGGED, a.outcome.reason
    assert "past its 2s time budget" in str(a.outcome.reason)
    honest = await run_attack(env_dir, {}, tmp_path, sandbox)
    assert honest.outcome.status is RunStatus.SUCCEEDED, honest.outcome.reason
