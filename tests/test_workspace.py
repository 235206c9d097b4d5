"""Git workspaces: baseline once per environment version, candidates as commits."""

from __future__ import annotations

import git

from environments.manifest import load_environment
from runner.workspace import BaselineRepo, protected_changes


def test_baseline_is_committed_once_per_version(toy_env, tmp_path) -> None:
    env = load_environment(toy_env)
    a = BaselineRepo(tmp_path, env)
    sha = a.baseline_sha
    assert BaselineRepo(tmp_path, load_environment(toy_env)).baseline_sha == sha
    (toy_env / "repo" / "train.py").write_text((toy_env / "repo" / "train.py").read_text() + "#\n")
    changed = BaselineRepo(tmp_path, load_environment(toy_env))
    assert changed.path != a.path and changed.baseline_sha != sha
    assert sorted(p.name for p in (tmp_path / "repos").iterdir()) == sorted(
        [a.path.name, changed.path.name]
    )


def test_candidate_commit_sits_on_the_baseline(toy_env, tmp_path) -> None:
    base = BaselineRepo(tmp_path, load_environment(toy_env))
    ws = base.new_workspace(tmp_path / "ws")
    (ws.path / "train.py").write_text("print('new')\n")
    (ws.path / "new_extra.py").write_text("X = 1\n")
    assert ws.changed_files() == ["new_extra.py", "train.py"]
    sha = ws.commit("an idea\n\nmore words", "cand-1")
    commit = git.Repo(base.path).commit(sha)
    assert [p.hexsha for p in commit.parents] == [base.baseline_sha]
    assert git.Repo(base.path).git.rev_parse("refs/candidates/cand-1") == sha
    assert "+print('new')" in ws.diff()
    ws.remove()
    assert not (tmp_path / "ws").exists()
    assert git.Repo(base.path).commit("refs/candidates/cand-1").hexsha == sha  # kept


def test_protected_files_are_checked_by_hash(toy_env, tmp_path) -> None:
    base = BaselineRepo(tmp_path, load_environment(toy_env))
    ws = base.new_workspace(tmp_path / "ws")
    expected = base.protected_hashes
    assert set(expected) == {"data.py"} and protected_changes(ws, expected) == []
    (ws.path / "data.py").write_text("N_FEATURES = 1\n")
    assert protected_changes(ws, expected) == ["data.py"]
    ws.reset()
    assert protected_changes(ws, expected) == [] and ws.changed_files() == []


async def test_validate_rejects_protected_changes_made_outside_edits(toy_env, tmp_path) -> None:
    from agent.implementer.validate import validate
    from sandbox import get_sandbox

    env = load_environment(toy_env)
    base = BaselineRepo(tmp_path, env)
    ws = base.new_workspace(tmp_path / "ws")
    expected = base.protected_hashes
    scratch = tmp_path / "scratch"
    assert await validate(ws, env, expected, lambda: get_sandbox("local"), scratch) is None
    (ws.path / "notes.txt").write_text("not editable\n")
    (ws.path / "data.py").write_text("N_FEATURES = 1\n")
    failure = await validate(ws, env, expected, lambda: get_sandbox("local"), scratch)
    assert failure is not None and failure.phase == "protected"
    assert "data.py" in failure.message and "notes.txt" in failure.message
