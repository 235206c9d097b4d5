"""Shared fixtures: a private copy of the toy environment, a run dir, and the CLI (in this
process, or the installed entry point in its own)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.llm_server import llm_server_fixture  # noqa: F401  (the `llm_server` fixture)

TESTS = Path(__file__).parent
TOY_ENV = TESTS / "toy_env"
EXECUTOR = Path(sys.executable).parent / "executor"

# What an edit of the toy's train.py looks like when it works (and raises reward).
GOOD_EDIT = """I raise the learning rate and train longer.

train.py
<<<<<<< SEARCH
LR = 0.01
STEPS = 100
=======
LR = 0.1
STEPS = 300
>>>>>>> REPLACE
"""


# The tiers of pyproject's markers, for what a test needs through its fixtures: the trained
# smoke outputs of the environments' conftests, a local Ray cluster (tests/test_ray_backend.py),
# and a sandbox kind parametrized as Docker.
FIXTURE_MARKS = {
    "smoke_output": "training",
    "output_copy": "training",
    "smoke_export": "training",
    "local_ray": "slow",
}
SANDBOX_KIND_FIXTURES = ("kind", "sandbox", "evaluator_sandbox")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        for fixture, mark in FIXTURE_MARKS.items():
            if fixture in names:
                item.add_marker(mark)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(params.get(f) == "docker" for f in SANDBOX_KIND_FIXTURES):
            item.add_marker("docker")


@pytest.fixture
def toy_env(tmp_path: Path) -> Path:
    """A private copy, so a test may break or tamper with it."""
    dst = tmp_path / "toy_env"
    shutil.copytree(TOY_ENV, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


@pytest.fixture
def output_copy(smoke_output: Path, tmp_path: Path) -> Path:
    """A private copy of an environment's smoke output (its conftest's `smoke_output`) that a
    test may alter."""
    dst = tmp_path / "output"
    shutil.copytree(smoke_output, dst)
    return dst


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without LLM keys or base URLs, plus `extra`."""
    drop = ("OPENAI_", "ANTHROPIC_", "EXECUTOR_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


class CLIResult:
    def __init__(self, rc: int, stdout: str, stderr: str) -> None:
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"rc={self.rc}\nstdout={self.stdout}\nstderr={self.stderr}"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., CLIResult]:
    """Run the `executor` app in this process, as `clean_environ` and `cwd` would start it.

    In-process (typer's CliRunner) saves an interpreter start per call; `cli_process` runs
    the installed entry point where a real process matters (signals, the console script).
    `timeout` is accepted for symmetry with `cli_process` and not enforced here."""
    from typer.testing import CliRunner

    from agent.cli import app

    def run(
        *args: str | Path, timeout: float = 120, cwd: Path | None = None, **env: str
    ) -> CLIResult:
        with monkeypatch.context() as m:
            for key in os.environ.keys() - clean_environ().keys():
                m.delenv(key)
            for key, value in env.items():
                m.setenv(key, value)
            if cwd is not None:
                m.chdir(cwd)
            res = CliRunner().invoke(app, [str(a) for a in args])
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception  # a traceback the user would see: fail with it
        return CLIResult(res.exit_code, res.stdout, res.stderr)

    return run


@pytest.fixture
def cli_process() -> Callable[..., CLIResult]:
    """Run the installed `executor` entry point in its own process, as a user would."""

    def run(
        *args: str | Path, timeout: float = 120, cwd: Path | None = None, **env: str
    ) -> CLIResult:
        proc = subprocess.run(
            [str(EXECUTOR), *map(str, args)],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_environ(**env),
        )
        return CLIResult(proc.returncode, proc.stdout, proc.stderr)

    return run


def assert_one_line_error(res: CLIResult, *needles: str) -> None:
    """Non-zero exit, one `error:` line on stderr naming the problem, no traceback."""
    assert res.rc != 0, res
    assert "Traceback" not in res.stderr + res.stdout, res
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res
    for needle in needles:
        assert needle in lines[0], res


def assert_usage_error(res: CLIResult, *needles: str) -> None:
    """Refused by the parser (typer): exit 2, a usage hint and the needles, no traceback."""
    assert res.rc == 2, res
    assert "Traceback" not in res.stderr + res.stdout and "Usage:" in res.stderr, res
    boxed = [line.strip(" │╭╮╰╯─") for line in res.stderr.splitlines()]
    text = " ".join(part for part in boxed if part)  # the message may wrap inside its box
    for needle in needles:
        assert needle in text, res


def store_rows(run_dir: Path, table: str) -> list[dict[str, Any]]:
    db_path = run_dir / "executor.db"
    if not db_path.exists():
        return []
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute(f"SELECT * FROM {table}")]
    db.close()
    return rows


def rows_while_running(run_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """`sql` on the store of a run another process is writing: no rows until the store exists,
    nor while it is busy."""
    try:
        db = sqlite3.connect(run_dir / "executor.db", timeout=5)
        rows = db.execute(sql).fetchall()
        db.close()
        return rows
    except sqlite3.Error:
        return []


def confirmation_rows(runs: Path, strip: tuple[str, ...] = ("idea_id",)) -> list[dict[str, object]]:
    """The stored confirmation table's rows and baseline without the `strip` keys (ids
    differ between searches)."""
    db = sqlite3.connect(runs / "executor.db")
    (body,) = db.execute("SELECT body FROM search_tables WHERE name='confirmation'").fetchone()
    db.close()
    table = json.loads(body)
    return [{k: v for k, v in r.items() if k not in strip} for r in table["rows"]] + [
        table["baseline"]
    ]


def slowed_toy(toy_env: Path, seconds: float) -> Path:
    """The toy environment with a pause before each training, so a test can kill a run mid-way."""
    train = toy_env / "repo" / "train.py"
    train.write_text(f"import time as _t\n_t.sleep({seconds})\n" + train.read_text())
    return toy_env


def sigkill_when(
    argv: list[str], ready: Callable[[], bool], within: float, every: float, late: Callable[[], str]
) -> None:
    """Start `argv` in its own process and SIGKILL it once `ready()` holds, polled `every`
    seconds. A process that ends first, or no `ready()` within `within` seconds, fails the test
    (the latter with `late()`)."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_environ()
    )
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if ready():
            break
        assert proc.poll() is None, f"{argv[1]} ended before it could be killed"
        time.sleep(every)
    else:
        proc.kill()
        raise AssertionError(late())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def as_flags(**values: object) -> list[str]:
    """`--name value` for each keyword, its underscores written as dashes."""
    return [
        part
        for name, value in values.items()
        for part in (f"--{name.replace('_', '-')}", str(value))
    ]


def executor_argv(command: str, env: Path, runs: Path, *extra: str, **flags: object) -> list[str]:
    """`executor COMMAND --env ENV --FLAG VALUE ... --run-dir RUNS --json EXTRA...`, for a run
    in its own process."""
    named = as_flags(**flags)
    return [
        str(EXECUTOR),
        command,
        "--env",
        str(env),
        *named,
        "--run-dir",
        str(runs),
        "--json",
        *extra,
    ]


def assert_store_consistent(run_dir: Path) -> None:
    """Nothing half-written: no candidate still implementing, no run still running."""
    for c in store_rows(run_dir, "candidates"):
        assert c["status"] in {"validated", "rejected", "error", "abandoned"}, c
    for r in store_rows(run_dir, "runs"):
        assert r["status"] != "running", r
    leftovers = (
        list((run_dir / "workspaces").glob("*")) if (run_dir / "workspaces").exists() else []
    )
    assert leftovers == [], f"workspaces left behind: {leftovers}"


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def docker_unavailable_reason() -> str | None:
    """None when a Docker engine and the base image are usable, else why not."""
    from sandbox import SandboxUnavailable
    from sandbox.docker_sandbox import docker_client
    from sandbox.images import BASE_IMAGE

    try:
        client = docker_client()
    except SandboxUnavailable as e:
        return f"{e} (make test runs scripts/docker_engine.sh, which needs root and apt-get)"
    try:
        client.images.get(BASE_IMAGE)
    except Exception:
        return f"image {BASE_IMAGE} missing: scripts/docker_engine.sh builds it"
    return None


def our_step_processes(root: Path) -> list[int]:
    """Processes started by a sandbox step whose output folder lies under `root`."""
    needle = f"EXECUTOR_OUTPUT_DIR={root}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle in (proc / "environ").read_bytes() and process_alive(int(proc.name)):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """After the whole suite: no step process, container or step cgroup of ours remains."""
    root = tmp_path_factory.getbasetemp()
    before: set[str] = set()
    if docker_unavailable_reason() is None:
        from sandbox.docker_sandbox import docker_client, our_containers

        # Another executor on this machine may have its own running: only the suite's count.
        before = {c.id for c in our_containers(docker_client())}
    yield
    assert our_step_processes(root) == [], "sandbox step processes outlived the suite"
    from sandbox.cgroups import PARENT, ROOT

    groups = [p for p in ROOT.glob(f"*/{PARENT}/step-*")] + list(ROOT.glob(f"{PARENT}/step-*"))

    def ours(group: Path) -> bool:  # another executor running on this machine is not ours
        owner = group.name.split("-")[1]
        return owner == str(os.getpid()) or not Path(f"/proc/{owner}").exists()

    left = [g for g in groups if ours(g)]
    assert left == [], f"step cgroups left behind: {left}"
    if docker_unavailable_reason() is None:
        from sandbox.docker_sandbox import docker_client, our_containers

        left = [c for c in our_containers(docker_client()) if c.id not in before]
        assert left == [], f"containers left behind: {[c.name for c in left]}"
