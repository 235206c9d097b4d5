"""The CLI's options are generated from the settings' dataclasses, so they cannot drift:
every field has help text, every offered field is in its command's --help, every setting can
be set from some command, and the README's command lines use only options that exist."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
import typer
from typer.testing import CliRunner

from agent.cli import COMMANDS, app
from agent.cli.common import LLMOptions, OutputOptions, RunOptions, StoreOptions
from agent.cli.errors import one_line_errors
from agent.cli.options import Options, flag, with_options
from agent.ideator_rl.config import TrainIdeatorConfig
from agent.implementer.config import ImplementerConfig
from agent.search.config import SearchConfig
from tests.conftest import CLIResult, assert_one_line_error, assert_usage_error

SETTINGS = [
    SearchConfig,
    TrainIdeatorConfig,
    ImplementerConfig,
    OutputOptions,
    StoreOptions,
    RunOptions,
    LLMOptions,
]
README = Path(__file__).parent.parent / "README.md"


def help_text(*args: str) -> str:
    res = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "240"})
    assert res.exit_code == 0, res.output
    return res.stdout


def options_of(command: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z-]*", help_text(command)))


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_every_setting_has_help(cls: type) -> None:
    for f in dataclasses.fields(cls):
        assert str(f.metadata.get("help", "")).strip(), f"{cls.__name__}.{f.name}: no help"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_generated_option_is_in_the_commands_help(name: str) -> None:
    shown = options_of(name)
    for bundle in getattr(COMMANDS[name], "bundles", {}).values():
        for f in bundle.fields():
            assert flag(f) in shown, f"{name} --help lacks {flag(f)} ({bundle.cls.__name__})"


def test_every_setting_can_be_set_from_some_command() -> None:
    offered: dict[type, set[str]] = {cls: set() for cls in SETTINGS}
    for command in COMMANDS.values():
        for bundle in getattr(command, "bundles", {}).values():
            for cls in bundle.cls.__mro__:
                if cls in offered:
                    offered[cls] |= {f.name for f in bundle.fields()}
    for cls, names in offered.items():
        for f in dataclasses.fields(cls):
            if f.metadata.get("cli", True) is not False:
                assert f.name in names, f"no command offers {cls.__name__}.{f.name}"


def test_choices_are_listed_and_checked_by_the_parser() -> None:
    assert "<epochs|async>" in help_text("search")
    train = help_text("train-ideator")
    assert "<raw|baseline-relative|rank>" in train and "<auto|on|off>" in train
    # --backend stays open: a package may add a backend (tests/test_plugins.py), so its
    # help names the built-ins and the registry refuses an unknown one in one line.
    assert "local (this machine), ray" in help_text("baseline")
    res = CliRunner().invoke(app, ["search", "--env", "toy", "--mode", "sideways"])
    assert_usage_error(CLIResult(res.exit_code, res.stdout, res.stderr), "'--mode'", "'async'")


def test_readme_command_lines_use_existing_options() -> None:
    """Each `executor COMMAND …` of the README (with its continuation lines) uses only options
    that COMMAND offers."""
    lines = README.read_text().splitlines()
    checked = 0
    for i, line in enumerate(lines):
        m = re.search(r"executor ([a-z-]+)\b(.*)", line)
        if not m or m.group(1) not in COMMANDS:
            continue
        text = m.group(2).split("#")[0].split("`")[0]
        j = i
        while lines[j].rstrip().endswith("\\"):
            j += 1
            text += " " + lines[j].split("#")[0]
        flags = set(re.findall(r"(--[a-z][a-z-]*)", text))
        missing = flags - options_of(m.group(1))
        assert not missing, f"README line {i + 1}: executor {m.group(1)} has no {missing}"
        checked += 1
    assert checked >= 10


# -- the generator itself -----------------------------------------------------------------


@dataclass
class _Knobs:
    count: int = field(default=2, metadata={"help": "How many.", "min": 1})
    colour: Literal["red", "blue"] = field(default="red", metadata={"help": "Which colour."})
    secret: str = field(default="s", metadata={"help": "Set from code.", "cli": False})
    label: str = field(default="x", metadata={"help": "A label.", "flag": "--name"})

    def __post_init__(self) -> None:
        if self.count > 5:
            raise ValueError("--count is at most 5")


def _toy_app() -> tuple[typer.Typer, list[Any]]:
    seen: list[Any] = []
    toy = typer.Typer(add_completion=False)

    @toy.command("go")
    @one_line_errors
    @with_options(knobs=Options(_Knobs))
    def go(knobs: _Knobs, loud: bool = False) -> None:
        seen.append((knobs, loud))

    @toy.command("other")
    def other() -> None:  # a second command keeps "go" a subcommand
        pass

    return toy, seen


def test_a_dataclass_becomes_options_and_is_built() -> None:
    toy, seen = _toy_app()
    res = CliRunner().invoke(toy, ["go", "--count", "3", "--colour", "blue", "--name", "n"])
    assert res.exit_code == 0, res.output
    assert seen == [(_Knobs(count=3, colour="blue", label="n"), False)]
    shown = CliRunner().invoke(toy, ["go", "--help"], env={"COLUMNS": "200"}).stdout
    assert "--count" in shown and "How many." in shown and "<red|blue>" in shown
    assert "--secret" not in shown and "--label" not in shown


def test_the_dataclass_checks_are_one_line_bad_input() -> None:
    toy, seen = _toy_app()
    res = CliRunner().invoke(toy, ["go", "--count", "9"])
    assert res.exit_code == 2 and seen == []
    assert_one_line_error(CLIResult(res.exit_code, res.stdout, res.stderr), "--count is at most 5")
    assert CliRunner().invoke(toy, ["go", "--count", "0"]).exit_code == 2  # metadata "min"


def test_missing_help_or_a_clash_is_refused_when_the_command_is_declared() -> None:
    @dataclass
    class NoHelp:
        n: int = 0

    with pytest.raises(TypeError, match=r"NoHelp\.n has no help"):
        with_options(x=Options(NoHelp))(lambda x: None)

    def clash(knobs: _Knobs, count: int = 0) -> None:
        pass

    with pytest.raises(TypeError, match="declared twice: count"):
        with_options(knobs=Options(_Knobs))(clash)


def test_the_console_entry_point(cli_process) -> None:
    """The installed `executor` script: its commands, and exit code 2 with one error line."""
    res = cli_process("--help")
    assert res.rc == 0 and all(name in res.stdout for name in COMMANDS), res
    bad = cli_process("baseline", "--env", "no_such_env")
    assert bad.rc == 2
    assert_one_line_error(bad, "no_such_env")
