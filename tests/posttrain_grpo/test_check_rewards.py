"""check_rewards.py, the rewards focus's check step: the baseline, the controls and an ensemble
pass; each hostile reward (hostile_rewards.toml) is rejected for its own reason; and the
report line the checker prints is the only one the harness can read."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from jinja2 import Environment, StrictUndefined

from agent.implementer.edits import apply_edits, parse_edits
from tests.env_modules import import_repo
from tests.posttrain_grpo.conftest import ENV, REPO

CHECK = ENV / "check_rewards.py"
REPORT = "EXECUTOR_CHECK "
CASES = tomllib.loads((Path(__file__).parent / "hostile_rewards.toml").read_text())
HOSTILE, LEGIT = CASES["case"], CASES["legit"]
TAIL = """

def reward_functions(format_weight: float, answer_weight: float):
    return [(reward, 1.0)]
"""


@dataclass
class Report:
    rc: int
    rejected: list[str]
    flags: list[str]
    stdout: str

    def classes(self, reasons: list[str]) -> set[str]:
        return {m.group(1) for r in reasons if (m := re.search(r"\[([\w-]+)\]$", r))}


def workspace(tmp_path: Path, rewards: str | None = None) -> Path:
    """A copy of the baseline repo's code, with `rewards` as its rewards.py if given."""
    ws = tmp_path / "ws"
    ws.mkdir()
    for f in REPO.glob("*.py"):
        shutil.copy(f, ws / f.name)
    if rewards is not None:
        (ws / "rewards.py").write_text(rewards)
    return ws


def check(ws: Path, *args: str) -> Report:
    """The checker as the harness runs it: cwd the workspace, EXECUTOR_ENV_DIR set."""
    env = {**os.environ, "EXECUTOR_ENV_DIR": str(ENV)}
    proc = subprocess.run(
        [sys.executable, str(CHECK), *args], cwd=ws, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    lines = proc.stdout.splitlines()
    assert lines and lines[-1].startswith(REPORT), proc.stdout + proc.stderr
    report = json.loads(lines[-1][len(REPORT) :])
    assert all("\n" not in r for r in report["rejected"] + report["flags"])
    return Report(proc.returncode, report["rejected"], report["flags"], proc.stdout)


def apply_patch(ws: Path, patch: Path) -> None:
    """A control's patch, applied as the focus allows: rewards.py alone."""
    changed = apply_edits(ws, parse_edits(patch.read_text()), lambda p: p == "rewards.py")
    assert changed == ["rewards.py"]


def test_the_baseline_passes_without_flags(tmp_path: Path) -> None:
    out = check(workspace(tmp_path))
    assert (out.rc, out.rejected, out.flags) == (0, [], [])


def test_a_control_that_ignores_correctness_passes_but_is_flagged(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    apply_patch(ws, ENV / "controls" / "ignore_correctness.patch")
    out = check(ws)
    assert out.rc == 0 and out.rejected == [], out.stdout
    assert out.classes(out.flags) == {"wrong-over-right"}  # a hash pays wrong answers too


def test_the_format_only_control_passes_flagged_as_blind_to_correctness(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    apply_patch(ws, ENV / "controls" / "format_only.patch")
    out = check(ws)
    assert out.rc == 0 and out.rejected == [], out.stdout
    assert out.classes(out.flags) == {"ignores-correctness"}


def render_ensemble(ws: Path, members: list[str]) -> None:
    """The focus's ensemble: each member's rewards.py as reward_member_i.py, then the
    template's rewards.py over them."""
    modules = []
    for i, text in enumerate(members, 1):
        (ws / f"reward_member_{i}.py").write_text(text)
        modules.append(f"reward_member_{i}")
    template = (ENV / "focus" / "rewards_ensemble.py.j2").read_text()
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True)
    (ws / "rewards.py").write_text(env.from_string(template).render(modules=modules))


def test_an_ensemble_passes_and_weighs_its_members_alike(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    baseline = (ws / "rewards.py").read_text()
    apply_patch(ws, ENV / "controls" / "format_only.patch")
    format_only = (ws / "rewards.py").read_text()
    zero = baseline.replace(
        "return [(format_reward, format_weight), (answer_reward, answer_weight)]",
        "return [(format_reward, 0.0)]",
    )
    render_ensemble(ws, [baseline, format_only, zero])
    out = check(ws)
    assert (out.rc, out.rejected, out.flags) == (0, [], []), out.stdout
    names = ("answers", "reward_member_1", "reward_member_2", "reward_member_3", "rewards")
    rewards = import_repo(ws, names).rewards
    pairs = rewards.reward_functions(0.0, 1.0)
    # Same-named functions from two members stay two pairs; each member sums to 1/3.
    assert [(fn.__name__, w) for fn, w in pairs] == [
        ("format_reward", 0.0),
        ("answer_reward", pytest.approx(1 / 3)),
        ("format_reward", pytest.approx(1 / 3)),
        ("format_reward", 0.0),
    ]


def test_a_hostile_ensemble_member_is_rejected(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    render_ensemble(ws, [(ws / "rewards.py").read_text(), "import os\n" + HOSTILE[0]["code"]])
    out = check(ws)
    assert out.rc == 1 and any(r.startswith("reward_member_2.py:1:") for r in out.rejected)


@pytest.mark.parametrize("case", HOSTILE, ids=[c["id"] for c in HOSTILE])
def test_hostile_rewards_are_rejected_for_their_reason(tmp_path: Path, case: dict) -> None:
    code = case["code"]
    if "def reward_functions" not in code:
        code += TAIL
    out = check(workspace(tmp_path, code), *case.get("args", []))
    if case.get("flag"):
        assert out.rc == 0 and out.rejected == [], out.stdout
        assert case["cls"] in out.classes(out.flags), out.flags
    else:
        assert out.rc == 1 and out.flags == [], out.stdout
        assert case["cls"] in out.classes(out.rejected), out.rejected
    # What the reward printed never reaches the checker's stdout.
    assert "EXECUTOR_CHECK" not in out.stdout.removesuffix("\n").rsplit("\n", 1)[0]
    assert not (tmp_path / "ws" / "planted.txt").exists()


@pytest.mark.parametrize("case", LEGIT, ids=[c["id"] for c in LEGIT])
def test_legitimate_rewards_pass(tmp_path: Path, case: dict) -> None:
    out = check(workspace(tmp_path, case["code"]))
    assert out.rc == 0 and out.rejected == [], out.stdout


def test_static_reasons_name_file_and_line(tmp_path: Path) -> None:
    out = check(workspace(tmp_path, "import os\n\n\ndef f():\n    return eval('1')\n"))
    assert out.rc == 1
    assert any(r.startswith("rewards.py:1:") and r.endswith("[import]") for r in out.rejected)
    assert any(r.startswith("rewards.py:5:") and r.endswith("[call]") for r in out.rejected)


def test_a_missing_rewards_file_is_rejected(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    (ws / "rewards.py").unlink()
    out = check(ws)
    assert out.rc == 1 and out.classes(out.rejected) == {"import"}
