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


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--focus", "reward"], ["no focus 'reward'", "its focuses: schedule"]),
        (["--ensembles", "2"], ["--ensembles needs --focus"]),
        (["--focus", "schedule", "--ensembles", "1"], ["sizes must be 2 or more"]),
        (["--focus", "schedule", "--ensembles", "two"], ["takes sizes like 2,3,5"]),
    ],
)
def test_bad_focus_flags_fail_before_anything_runs(
    cli, toy_env: Path, tmp_path: Path, flags: list[str], needles: list[str]
) -> None:
    from tests.conftest import assert_one_line_error

    res = cli("search", "--env", add_focus(toy_env), *flags, "--run-dir", tmp_path / "runs")
    assert_one_line_error(res, *needles)
    assert not (tmp_path / "runs" / "executor.db").exists()


def test_ensembles_need_a_focus_that_says_how_to_combine(cli, toy_env: Path, tmp_path) -> None:
    from tests.conftest import assert_one_line_error

    env = add_focus(toy_env)
    toml = env / "env.toml"
    text = toml.read_text()
    toml.write_text(text[: text.index("[focus.schedule.ensemble]")])
    res = cli("search", "--env", env, "--focus", "schedule", "--ensembles", "2",
              "--run-dir", tmp_path / "runs")  # fmt: skip
    assert_one_line_error(res, "declares no [focus.NAME.ensemble]")
