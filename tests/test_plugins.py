"""Plugins: a third party's sandbox kind, backend, ideator, LLM provider and environment,
found through an installed package's entry points (a dist-info folder on sys.path, as pip
leaves one) and through a direct "package.module:Object"; unknown names get one line listing
the known ones."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.llm import PROVIDERS, LLMError, Message, make_client
from agent.search.ideators import (
    IDEATORS,
    HparamIdeator,
    IdeatorSetup,
    LLMIdeator,
    ReplayIdeator,
    make_ideator,
)
from environments import ENVIRONMENTS, ManifestError, list_environments, resolve_environment
from plugins import PluginError, Registry, is_object_ref
from runner.backends import BACKENDS, make_backend
from sandbox import SandboxUnavailable, get_sandbox, sandbox_kinds
from sandbox.registry import SANDBOXES, sandbox_options
from tests.conftest import TOY_ENV
from tests.llm_server import ScriptedLLMServer

PACKAGE = "executor_thirdparty"
MODULE = '''
from agent.llm.openai_client import OpenAIClient
from sandbox.local import LocalSandbox


class ThirdSandbox(LocalSandbox):
    """A sandbox kind of its own, with the local one's options."""


class ThirdIdeator:
    name = "third"

    def __init__(self, setup):
        self.setup = setup

    async def propose(self, ctx, n):
        return []


def third_client(provider, model, **options):
    """Speaks the OpenAI protocol; `provider` is the name it was registered under."""
    client = OpenAIClient("vllm", model, **options)
    client.provider = provider
    return client


def third_backend(env, scale, *, slots, **_):
    return ("third backend", env.name, scale, slots)


NOT_A_SANDBOX = 42
'''
ENTRY_POINTS = f"""
[executor.sandboxes]
third = {PACKAGE}:ThirdSandbox
notone = {PACKAGE}:NOT_A_SANDBOX
local = {PACKAGE}:ThirdSandbox
[executor.backends]
third = {PACKAGE}:third_backend
[executor.ideators]
third = {PACKAGE}:ThirdIdeator
[executor.llm_providers]
third = {PACKAGE}:third_client
[executor.environments]
third_env = {PACKAGE}.cartpole
third_dir = {{folder}}
broken = executor_not_installed.envs
"""
REGISTRIES = [SANDBOXES, BACKENDS, IDEATORS, PROVIDERS, ENVIRONMENTS]


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed package `executor_thirdparty` with entry points in every group; its
    `cartpole` sub-folder is an environment (a copy of the toy one)."""
    site = tmp_path / "site"
    package = site / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(MODULE)
    shutil.copytree(TOY_ENV, package / "cartpole", ignore=shutil.ignore_patterns("__pycache__"))
    folder_env = tmp_path / "folder_env"
    shutil.copytree(TOY_ENV, folder_env, ignore=shutil.ignore_patterns("__pycache__"))
    dist = site / "executor_thirdparty-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: executor-thirdparty\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(ENTRY_POINTS.format(folder=folder_env))
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    for registry in REGISTRIES:
        registry.refresh()
    yield package
    for registry in REGISTRIES:
        registry.refresh()  # read again, without this package, on the next lookup
    sys.modules.pop(PACKAGE, None)


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


# -- the registry itself ---------------------------------------------------------------------


def test_registry_names_declared_entries_and_direct_references() -> None:
    registry: Registry[object] = Registry("widget", "executor.test_widgets")

    @registry.register("made")
    def made() -> str:
        return "made"

    registry.declare("lazy", "pathlib:PurePosixPath")
    assert registry.names() == ["lazy", "made"]
    assert registry.get("made") is made
    assert registry.get("lazy") is __import__("pathlib").PurePosixPath
    assert registry.get("os.path:join") is __import__("os").path.join
    assert registry.split("made:rest:more") == ("made", "rest:more")
    assert registry.split("os.path:join:rest") == ("os.path:join", "rest")
    with pytest.raises(PluginError) as info:
        registry.get("nope")
    assert "unknown widget 'nope'; known: lazy, made" in one_line(info.value)
    assert isinstance(info.value, ValueError)  # callers that map ValueError to usage errors


def test_missing_module_says_what_to_install() -> None:
    registry: Registry[object] = Registry("widget", "executor.test_widgets")
    registry.declare("fancy", "executor_fancy_missing.widget:Widget", install="'executor[fancy]'")
    with pytest.raises(PluginError) as info:
        registry.get("fancy")
    assert "pip install 'executor[fancy]'" in one_line(info.value)
    with pytest.raises(PluginError, match="no module named 'executor_typo'"):
        registry.get("executor_typo.widgets:Widget")
    with pytest.raises(PluginError, match="does not load"):
        registry.get("os.path:no_such_function")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a.b:C", True), ("a:C.d", True), ("a", False), ("docker:network=bridge", False)],
)
def test_is_object_ref(text: str, expected: bool) -> None:
    assert is_object_ref(text) is expected


# -- sandbox kinds ---------------------------------------------------------------------------


def test_third_party_sandbox_kind(third_party: Path) -> None:
    assert {"docker", "local", "third"} <= set(sandbox_kinds())
    sb = get_sandbox("third:kill_grace_s=0.5,cgroups=false")
    assert type(sb).__name__ == "ThirdSandbox"
    assert "kill_grace_s" in sandbox_options("third")
    direct = get_sandbox(f"{PACKAGE}:ThirdSandbox:kill_grace_s=0.5")
    assert type(direct) is type(sb)
    assert type(get_sandbox("local")).__name__ == "LocalSandbox"  # the project's own name wins
    with pytest.raises(SandboxUnavailable, match="not a subclass of"):
        get_sandbox("notone")


def test_unknown_sandbox_kind_lists_the_known_ones(third_party: Path) -> None:
    with pytest.raises(SandboxUnavailable) as info:
        get_sandbox("vm")
    message = one_line(info.value)
    assert "unknown sandbox kind 'vm'" in message and "docker, local" in message
    assert "third" in message


# -- backends --------------------------------------------------------------------------------


def test_third_party_backend(third_party: Path) -> None:
    env = resolve_environment(str(TOY_ENV))
    assert make_backend("third", env, "tiny", slots=3) == ("third backend", "toy", "tiny", 3)
    direct = make_backend(f"{PACKAGE}:third_backend", env, "tiny")
    assert direct == ("third backend", "toy", "tiny", 1)
    with pytest.raises(ValueError) as info:
        make_backend("slurm", env, "tiny")
    assert "unknown backend 'slurm'; known: local, ray, third" in one_line(info.value)


# -- ideators --------------------------------------------------------------------------------


def test_builtin_ideators(toy_env: Path, tmp_path: Path) -> None:
    env = resolve_environment(str(toy_env))
    asked: list[str] = []

    def client_for(spec: str) -> object:
        asked.append(spec)
        return make_client(spec, base_url="http://127.0.0.1:1/v1")

    kw = {"env": env, "scale": "tiny", "make_client": client_for}
    assert isinstance(make_ideator("hparam", **kw), HparamIdeator)
    replay = tmp_path / "ideas.jsonl"
    replay.write_text('{"idea": "more steps"}\n')
    assert isinstance(make_ideator(f"replay:{replay}", **kw), ReplayIdeator)
    llm = make_ideator("vllm:qwen2.5:7b", **kw)
    assert isinstance(llm, LLMIdeator) and asked == ["vllm:qwen2.5:7b"]
    for bad, needle in [
        ("hparam:x", "takes no argument"),
        ("replay", "needs a file"),
        (f"replay:{tmp_path / 'none.jsonl'}", "none.jsonl"),
        ("nope", "unknown ideator 'nope'; known: hparam, replay"),
        ("nope:x-y", "PROVIDER one of anthropic"),
    ]:
        with pytest.raises(ValueError) as info:
            make_ideator(bad, **kw)
        assert needle in one_line(info.value)
    with pytest.raises(LLMError):  # a provider's spec: make_client's own error
        make_ideator("anthropic:", **kw)


def test_third_party_ideator(third_party: Path, toy_env: Path) -> None:
    env = resolve_environment(str(toy_env))
    kw = {"env": env, "scale": "tiny", "make_client": make_client}
    ideator = make_ideator("third:some argument", **kw)
    assert type(ideator).__name__ == "ThirdIdeator"
    setup = ideator.setup
    assert isinstance(setup, IdeatorSetup)
    assert (setup.arg, setup.env.name, setup.scale) == ("some argument", "toy", "tiny")
    direct = make_ideator(f"{PACKAGE}:ThirdIdeator:x", **kw)
    assert type(direct) is type(ideator) and direct.setup.arg == "x"
    with pytest.raises(ValueError) as info:
        make_ideator("nope", **kw)
    assert "known: hparam, replay, third" in one_line(info.value)


# -- LLM providers ---------------------------------------------------------------------------


async def test_third_party_llm_provider(third_party: Path, llm_server: ScriptedLLMServer) -> None:
    llm_server.script("from the third party")
    client = make_client("third:my-model", base_url=llm_server.openai_base_url)
    answer = await client.complete([Message("user", "hi")])
    assert (answer.text, answer.provider, answer.model) == (
        "from the third party",
        "third",
        "my-model",
    )
    direct = make_client(f"{PACKAGE}:third_client:other", base_url=llm_server.openai_base_url)
    assert direct.model == "other"
    with pytest.raises(LLMError) as info:
        make_client("gemini:pro")
    message = one_line(info.value)
    assert "anthropic, ollama, openai, sglang, third, vllm" in message


# -- environments ----------------------------------------------------------------------------


def test_third_party_environments(third_party: Path, tmp_path: Path) -> None:
    by_module = resolve_environment("third_env")
    assert by_module.root == third_party / "cartpole"
    assert resolve_environment("third_dir").root == tmp_path / "folder_env"
    assert resolve_environment(f"{PACKAGE}.cartpole").root == third_party / "cartpole"
    found = list_environments()
    roots = {getattr(e, "root", None) for e in found}
    assert {third_party / "cartpole", tmp_path / "folder_env"} <= roots
    broken = [e for e in found if isinstance(e, tuple) and e[0] == Path("broken")]
    assert len(broken) == 1 and "executor_not_installed" in str(broken[0][1])
    with pytest.raises(ManifestError) as info:
        resolve_environment("broken")
    assert "no module named 'executor_not_installed'" in one_line(info.value)
    with pytest.raises(ManifestError) as info:
        resolve_environment("nope")
    assert "third_env" in one_line(info.value)
