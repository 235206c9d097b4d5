"""Research environments: built-in ones live in sub-folders here; users point at any folder.

Public surface: `resolve_environment`, `list_environments`, `Environment`, `ManifestError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from environments.manifest import MANIFEST, Environment, ManifestError, load_environment

__all__ = ["Environment", "ManifestError", "list_environments", "resolve_environment"]

BUILTIN_DIR = Path(__file__).parent


def search_dirs() -> list[Path]:
    """Built-in environments first, then folders from EXECUTOR_ENV_PATH (os.pathsep-separated)."""
    extra = [Path(p) for p in os.environ.get("EXECUTOR_ENV_PATH", "").split(os.pathsep) if p]
    return [BUILTIN_DIR, *extra]


def _candidates() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base in search_dirs():
        if (base / MANIFEST).is_file():  # EXECUTOR_ENV_PATH may name an environment itself
            found.setdefault(base.name, base)
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            if (child / MANIFEST).is_file():
                found.setdefault(child.name, child)
    return found


def list_environments() -> list[Environment | tuple[Path, ManifestError]]:
    """Every discoverable environment; broken manifests come back as (path, error)."""
    out: list[Environment | tuple[Path, ManifestError]] = []
    for path in _candidates().values():
        try:
            out.append(load_environment(path))
        except ManifestError as e:
            out.append((path, e))
    return out


def resolve_environment(name_or_path: str) -> Environment:
    """A path to a folder with env.toml, or the name of a discoverable environment."""
    path = Path(name_or_path).expanduser()
    if path.is_dir() or "/" in name_or_path or name_or_path.startswith("."):
        if not path.exists():
            raise ManifestError(f"environment folder {name_or_path!r} does not exist")
        return load_environment(path)
    candidates = _candidates()
    if name_or_path in candidates:
        return load_environment(candidates[name_or_path])
    for folder in candidates.values():  # the manifest's `name` may differ from the folder's
        try:
            env = load_environment(folder)
        except ManifestError:
            continue
        if env.name == name_or_path:
            return env
    known = ", ".join(sorted(candidates)) or "none found"
    raise ManifestError(
        f"unknown environment {name_or_path!r} (known: {known}); "
        "pass a folder with an env.toml, or run `executor envs`"
    )
