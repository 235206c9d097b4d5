"""A manifest's focuses: what `--focus NAME` narrows, and the one-line errors of a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from environments import ManifestError, load_environment
from tests.search.focus_toy import add_focus


def test_a_focus_narrows_the_editable_files_the_knobs_and_the_task(toy_env: Path) -> None:
    env = load_environment(add_focus(toy_env))
    assert env.editable_files() == ["schedule.py", "train.py"]
    assert [k.name for k in env.manifest.knobs] == ["lr", "steps"]
    focused = env.focused("schedule")
    assert focused.editable_files() == ["schedule.py"]
    assert not focused.is_editable("train.py")
    assert not focused.is_editable("schedule_member_1.py")
    assert [k.name for k in focused.manifest.knobs] == ["lr"]
    assert "# Focus: schedule" in focused.task_text and "lr_scale" in focused.task_text
    assert focused.repo_hash == env.repo_hash  # the same baseline
    assert focused.focus is not None and focused.focus.rank_by == "val_mse"
    # Ensembles may also write their member modules, and nothing else.
    combined = focused.focused("schedule", ensembles=True)
    assert combined.is_editable("schedule_member_3.py") and not combined.is_editable("data.py")
    assert env.focused(None) is env and env.focused("") is env


def test_an_unknown_focus_is_one_line_naming_the_known(toy_env: Path) -> None:
    env = load_environment(add_focus(toy_env))
    with pytest.raises(ManifestError, match="no focus 'reward'; its focuses: schedule"):
        env.focused("reward")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('editable = ["schedule.py"]', 'editable = ["nope.py"]', "focus.schedule.editable"),
        ('editable = ["schedule.py"]', 'editable = ["data.py"]', "not editable in the env"),
        ('knobs = ["lr"]', 'knobs = ["momentum"]', "no knob 'momentum'"),
        ('brief = "focus_schedule.md"', 'brief = "gone.md"', "focus.schedule.brief"),
        ('file = "schedule.py"', 'file = "train.py"', "not one of the focus's files"),
        ('member = "schedule_member_{i}.py"', 'member = "member.py"', "member"),
        ('rank_by = "val_mse"', "rank_by = 3", "rank_by"),
    ],
)
def test_a_bad_focus_is_one_line_naming_the_field(
    toy_env: Path, old: str, new: str, message: str
) -> None:
    env = add_focus(toy_env)
    toml = env / "env.toml"
    assert old in toml.read_text()
    toml.write_text(toml.read_text().replace(old, new))
    with pytest.raises(ManifestError) as e:
        load_environment(env)
    assert message in str(e.value) and "\n" not in str(e.value)
