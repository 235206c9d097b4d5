"""The environment manifest: loading, one-line errors naming file and field, discovery."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from environments import ManifestError, resolve_environment
from environments.manifest import load_environment
from environments.reward import RewardError, compute_reward, metric_names


def edit_manifest(env_dir: Path, old: str, new: str) -> None:
    p = env_dir / "env.toml"
    text = p.read_text()
    assert old in text
    p.write_text(text.replace(old, new))


def test_toy_loads(toy_env) -> None:
    env = load_environment(toy_env)
    assert env.name == "toy" and env.editable_files() == ["train.py"]
    assert env.is_editable("train.py") and not env.is_editable("data.py")
    assert env.scale("tiny").timeout == 60
    assert [k.name for k in env.manifest.knobs] == ["lr", "steps"]
    assert len(env.repo_hash) == 64


# Each edit of the toy's env.toml the loader refuses, and the field its error names.
REFUSED = tomllib.loads((Path(__file__).parent / "fixtures" / "manifest_refused.toml").read_text())


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [(case["old"], case["new"], case["field"]) for case in REFUSED["refused"]],
    ids=[f"{i}-{case['field']}" for i, case in enumerate(REFUSED["refused"])],
)
def test_errors_name_file_and_field(toy_env, old, new, field) -> None:
    edit_manifest(toy_env, old, new)
    with pytest.raises(ManifestError) as e:
        load_environment(toy_env)
    msg = str(e.value)
    assert "\n" not in msg and str(toy_env / "env.toml") in msg and f"`{field}" in msg, msg


def test_builtin_pretrain_nanogpt_protects_its_evaluator_and_heldout_data() -> None:
    env = resolve_environment("pretrain_nanogpt")  # the loader also checks every knob pattern
    protected = set(env.protected_files())
    heldout = {p.relative_to(env.root).as_posix() for p in (env.root / "heldout").rglob("*")}
    assert heldout and heldout <= protected, "held-out text is protected"
    evaluator = env.manifest.evaluate.command.split("/")[-1].strip('"')
    assert evaluator in protected
    for name in env.manifest.scales:
        scale = env.scale(name)
        assert scale.time_budget is None or scale.time_budget < scale.timeout, name


def test_missing_manifest_and_unknown_name(tmp_path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        load_environment(tmp_path)
    with pytest.raises(ManifestError, match="unknown environment 'nope'"):
        resolve_environment("nope")
    with pytest.raises(ManifestError, match="does not exist"):
        resolve_environment(str(tmp_path / "absent"))


def test_resolve_by_manifest_name_on_env_path(toy_env, monkeypatch) -> None:
    monkeypatch.setenv("EXECUTOR_ENV_PATH", str(toy_env.parent))
    assert resolve_environment("toy").root == toy_env
    assert resolve_environment("toy_env").root == toy_env


def test_protected_hash_sees_evaluator_changes(toy_env) -> None:
    env = load_environment(toy_env)
    before = env.protected_hashes()
    (toy_env / "evaluate.py").write_text("print('always great')\n")
    assert env.protected_hashes() != before
    # Files inside repo/ are the candidate's business, not the protected set's.
    env2 = load_environment(toy_env)
    after = env2.protected_hashes()
    (toy_env / "repo" / "train.py").write_text("# changed\n")
    assert env2.protected_hashes() == after


def test_reward_expressions() -> None:
    assert compute_reward("1 / (1 + val_mse)", {"val_mse": 1.0}) == 0.5
    assert compute_reward("-log(x) + max(a, 2) ** 2", {"x": 1.0, "a": 3.0}) == 9.0
    assert metric_names("1 / val_loss + acc") == {"val_loss", "acc"}
    with pytest.raises(RewardError, match="did not report"):
        compute_reward("1 / val_loss", {})
    with pytest.raises(RewardError, match="cannot be computed"):
        compute_reward("1 / val_loss", {"val_loss": 0.0})
    for evil in ("__import__('os')", "x.__class__", "[1][0]", "'a'", "not x", "f(x=1)"):
        with pytest.raises(RewardError):
            compute_reward(evil, {"x": 1.0})


def test_large_protected_files_are_fingerprinted_not_read(toy_env) -> None:
    from environments import manifest

    big = toy_env / "shards" / "big.bin"
    big.parent.mkdir()
    with big.open("wb") as f:
        f.truncate(manifest._HASH_LIMIT + 1)  # sparse: no time spent writing it
    hashes = load_environment(toy_env).protected_hashes()
    assert hashes["shards/big.bin"].startswith(f"size={manifest._HASH_LIMIT + 1} ")
    assert len(hashes["evaluate.py"]) == 64


@pytest.mark.parametrize("name", ["pretrain_nanogpt", "posttrain_grpo"])
def test_builtin_environments_declare_their_heldout_data_eval_only(name) -> None:
    env = resolve_environment(name)
    assert env.eval_only_paths() == [(env.root / "heldout").resolve()]
    assert env.is_eval_only("heldout/README.md") and not env.is_eval_only("evaluate.py")
    assert "evaluate step" in env.task_text, "task.md tells ideas the rule"


def test_the_implementer_never_shows_eval_only_data(toy_env) -> None:
    from agent.implementer.context import editable_context

    (toy_env / "heldout" / "val_seed.txt").write_text("SECRET-SEED-4242\n")
    (toy_env / "repo" / "leak_extra.py").symlink_to(toy_env / "heldout" / "val_seed.txt")
    env = load_environment(toy_env)
    assert "leak_extra.py" in env.editable_files()  # editable by its name...
    context = editable_context(env, 100_000)
    assert "SECRET-SEED-4242" not in context and "train.py" in context  # ...never shown
