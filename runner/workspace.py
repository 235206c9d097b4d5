"""Git workspaces: the baseline committed once per environment version, one worktree per candidate.

The baseline repo lives at `<run_dir>/repos/<env>-<hash>` (hash = content of the
environment's repo), so editing the environment makes a new baseline while old candidates
keep pointing at theirs. Each candidate is a commit on top of the baseline commit, kept
under `refs/candidates/<id>` after its worktree is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from functools import cached_property
from pathlib import Path

import git

from environments import Environment

_AUTHOR = git.Actor("executor", "executor@localhost")


class WorkspaceError(RuntimeError):
    pass


# The integrity rules a run directory's pins were made under. Results scored under other
# rules do not compare (2: eval-only data hidden from training, a secret per run directory
# for the evaluator, harness-timed checkpoints), so an older run directory is refused.
RULES = 2
PINS = "executor-env-files.json"  # in the baseline repo's .git: {"rules": RULES, "files": {...}}


class StaleRunDir(ValueError):
    """A run directory pinned under older integrity rules; the message is one line."""


class BaselineRepo:
    """The git repository holding an environment's baseline commit and its candidates."""

    def __init__(self, run_dir: Path, env: Environment) -> None:
        self.env = env
        self.path = run_dir.resolve() / "repos" / f"{env.name}-{env.repo_hash[:12]}"
        self._repo: git.Repo | None = None
        if (self.path / ".git" / PINS).is_file():
            _ = self._read_pins(self.path / ".git" / PINS)  # a stale run dir fails here, early

    @property
    def repo(self) -> git.Repo:
        if self._repo is None:
            self._ensure()
            self._repo = git.Repo(self.path)
        return self._repo

    @property
    def baseline_sha(self) -> str:
        return self.repo.tags["baseline"].commit.hexsha

    def _ensure(self) -> None:
        if (self.path / ".git").is_dir():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Build in a temp folder and rename: two processes racing end with one complete repo.
        tmp = Path(tempfile.mkdtemp(prefix=".baseline-", dir=self.path.parent))
        try:
            for rel in self.env.repo_files():
                dst = tmp / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.env.repo / rel, dst)
            repo = git.Repo.init(tmp, initial_branch="baseline")
            with repo.config_writer() as cw:
                cw.set_value("user", "name", _AUTHOR.name)
                cw.set_value("user", "email", _AUTHOR.email)
                cw.set_value("core", "autocrlf", "false")
            repo.git.add(A=True)
            repo.index.commit(
                f"baseline: {self.env.name} ({self.env.repo_hash[:12]})",
                author=_AUTHOR,
                committer=_AUTHOR,
            )
            repo.create_tag("baseline")
            repo.close()
            try:
                tmp.rename(self.path)
            except OSError:
                if not (self.path / ".git").is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @cached_property
    def protected_hashes(self) -> dict[str, str]:
        """sha256 of every non-editable file of the baseline, by relative path."""
        return {
            rel: _sha256(self.env.repo / rel)
            for rel in self.env.repo_files()
            if not self.env.is_editable(rel)
        }

    @cached_property
    def pinned_env_hashes(self) -> dict[str, str]:
        """The environment's protected files as this run directory first saw them.

        Runs check the environment against these, so an evaluator tampered with by an
        earlier run (or edited by hand) cannot score later runs of the same directory.
        """
        pin = Path(self.repo.git_dir) / PINS
        if pin.is_file():
            return self._read_pins(pin)
        hashes = self.env.protected_hashes()
        _write_atomic(pin, json.dumps({"rules": RULES, "files": hashes}, indent=1, sort_keys=True))
        return hashes

    def _read_pins(self, pin: Path) -> dict[str, str]:
        try:
            data = json.loads(pin.read_text())
        except ValueError:
            raise StaleRunDir(f"{pin}: unreadable pins (edited?); use a new --run-dir") from None
        if not isinstance(data, dict) or data.get("rules") != RULES:
            old = data.get("rules", 1) if isinstance(data, dict) else "?"
            raise StaleRunDir(
                f"{self.path.parent.parent} was created under older reward-integrity rules "
                f"(rules {old}, now {RULES}); its results do not compare with new ones: "
                "use a new --run-dir"
            )
        return dict(data["files"])

    @cached_property
    def eval_secret(self) -> str:
        """A random secret of this run directory and environment version, given to the
        evaluate step alone: environments derive held-out items from it, so no step an idea
        controls can know them, while every arm of a comparison is scored on the same ones."""
        _ = self.pinned_env_hashes  # refuses a stale run directory first
        path = Path(self.repo.git_dir) / "executor-eval-secret"
        if not path.is_file():
            _write_atomic(path, secrets.token_hex(32), mode=0o600, replace=False)
        return path.read_text().strip()

    def file_at(self, commit: str, rel: str) -> str | None:
        """The text of `rel` at `commit` (a candidate's), None when it has no such file."""
        try:
            return str(self.repo.git.show(f"{commit}:{rel}", strip_newline_in_stdout=False))
        except git.GitCommandError:
            return None

    def new_workspace(self, dest: Path, commit: str | None = None) -> Workspace:
        """A fresh detached worktree of the baseline (or of `commit`) at `dest`."""
        dest = dest.resolve()  # git resolves relative paths against the baseline repo
        if dest.exists():
            self.repo.git.worktree("prune")
            if dest.exists():
                shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.repo.git.worktree("add", "--detach", str(dest), commit or self.baseline_sha)
        return Workspace(self, dest)


class Workspace:
    """One candidate's working tree."""

    def __init__(self, baseline: BaselineRepo, path: Path) -> None:
        self.baseline = baseline
        self.path = path
        self.repo = git.Repo(path)

    def _stage(self) -> None:
        self.repo.git.add(A=True)

    def changed_files(self) -> list[str]:
        """Files that differ from the baseline commit (added, modified, deleted)."""
        self._stage()
        out = self.repo.git.diff("--cached", "--name-only", self.baseline.baseline_sha)
        return sorted(line for line in out.splitlines() if line)

    def diff(self) -> str:
        self._stage()
        return self.repo.git.diff("--cached", self.baseline.baseline_sha)

    def reset(self) -> None:
        """Back to the baseline: tracked files restored, untracked files removed."""
        self.repo.git.reset("--hard", self.baseline.baseline_sha)
        self.repo.git.clean("-fdx")

    def commit(self, message: str, ref_name: str) -> str:
        """Commit every change on top of the baseline and keep it under refs/candidates/."""
        self._stage()
        commit = self.repo.index.commit(
            message,
            author=_AUTHOR,
            committer=_AUTHOR,
            parent_commits=[self.repo.commit(self.baseline.baseline_sha)],
        )
        self.repo.git.update_ref(f"refs/candidates/{ref_name}", commit.hexsha)
        return commit.hexsha

    def remove(self) -> None:
        self.repo.close()
        try:
            self.baseline.repo.git.worktree("remove", "--force", str(self.path))
        except git.GitCommandError:
            shutil.rmtree(self.path, ignore_errors=True)
            self.baseline.repo.git.worktree("prune")


def remove_stale_workspaces(run_dir: Path, env: Environment) -> None:
    """Worktrees a killed search or training left behind (the store closes their candidates)."""
    folder = run_dir / "workspaces"
    if not folder.is_dir():
        return
    baseline = BaselineRepo(run_dir, env)
    for path in folder.iterdir():
        try:
            Workspace(baseline, path).remove()
        except Exception:  # half-made by the killed process: not a repo yet
            shutil.rmtree(path, ignore_errors=True)
    baseline.repo.git.worktree("prune")


def _write_atomic(path: Path, text: str, mode: int = 0o644, replace: bool = True) -> None:
    """Write via a temporary file and rename; with `replace=False` a file another process
    wrote first wins (both then read the same content)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if replace:
        tmp.replace(path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def protected_changes(ws: Workspace, expected: dict[str, str]) -> list[str]:
    """Protected files that were modified or deleted in `ws` (verified by hash)."""
    bad = []
    for rel, digest in expected.items():
        p = ws.path / rel
        if not p.is_file() or _sha256(p) != digest:
            bad.append(rel)
    return bad
