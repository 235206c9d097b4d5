"""Research environments: built-in ones live in sub-folders here; users point at any folder,
list folders in $EXECUTOR_ENV_PATH, or install packages that name them by entry point.

Public surface: `resolve_environment`, `list_environments`, `Environment`, `ManifestError`.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from environments.manifest import MANIFEST, Environment, ManifestError, load_environment
from plugins import Registry, is_object_ref

__all__ = ["Environment", "ManifestError", "list_environments", "resolve_environment"]

BUILTIN_DIR = Path(__file__).parent


def _folder(obj: Any) -> Path:
    """An environment's folder from what an entry point names: a module or package (the
    folder it lives in) or a path."""
    if isinstance(obj, ModuleType):
        where = obj.__file__ or next(iter(getattr(obj, "__path__", [])), None)
        if where is None:
            raise TypeError(f"module {obj.__name__} has no folder")
        folder = Path(where) if obj.__file__ is None else Path(where).parent
    elif isinstance(obj, str | os.PathLike):
        folder = Path(obj).expanduser()
    else:
        raise TypeError(f"{obj!r} is neither a module nor a folder")
    if not (folder / MANIFEST).is_file():
        raise ValueError(f"{folder} holds no {MANIFEST}")
    return folder


# Installed packages add environments under the entry-point group "executor.environments":
# `cartpole = "mypkg.envs.cartpole"` (the module's folder holds env.toml) or an absolute folder.
ENVIRONMENTS: Registry[Path] = Registry(
    "environment", "executor.environments", error=ManifestError, adapt=_folder
)


def search_dirs() -> list[Path]:
    """Built-in environments first, then folders from EXECUTOR_ENV_PATH (os.pathsep-separated)."""
    extra = [Path(p) for p in os.environ.get("EXECUTOR_ENV_PATH", "").split(os.pathsep) if p]
    return [BUILTIN_DIR, *extra]


def _candidates() -> dict[str, Path | ManifestError]:
    """Name -> folder: built-ins, then EXECUTOR_ENV_PATH, then entry points (first one wins);
    an entry point that does not load maps to its error."""
    found: dict[str, Path | ManifestError] = {}
    for base in search_dirs():
        if (base / MANIFEST).is_file():  # EXECUTOR_ENV_PATH may name an environment itself
            found.setdefault(base.name, base)
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            if (child / MANIFEST).is_file():
                found.setdefault(child.name, child)
    for name in ENVIRONMENTS.names():
        if name not in found:
            try:
                found[name] = ENVIRONMENTS.get(name)
            except ManifestError as e:
                found[name] = e
    return found


def list_environments() -> list[Environment | tuple[Path, ManifestError]]:
    """Every discoverable environment; broken manifests come back as (path, error)."""
    out: list[Environment | tuple[Path, ManifestError]] = []
    for name, path in _candidates().items():
        if isinstance(path, ManifestError):
            out.append((Path(name), path))
            continue
        try:
            out.append(load_environment(path))
        except ManifestError as e:
            out.append((path, e))
    return out


def resolve_environment(name_or_path: str) -> Environment:
    """A path to a folder with env.toml, the name of a discoverable environment, or a
    "package.module" whose folder holds env.toml."""
    path = Path(name_or_path).expanduser()
    if path.is_dir() or "/" in name_or_path or name_or_path.startswith("."):
        if not path.exists():
            raise ManifestError(f"environment folder {name_or_path!r} does not exist")
        return load_environment(path)
    candidates = _candidates()
    if name_or_path in candidates:
        found = candidates[name_or_path]
        if isinstance(found, ManifestError):
            raise found
        return load_environment(found)
    for folder in candidates.values():  # the manifest's `name` may differ from the folder's
        if isinstance(folder, ManifestError):
            continue
        try:
            env = load_environment(folder)
        except ManifestError:
            continue
        if env.name == name_or_path:
            return env
    if (is_object_ref(name_or_path) or "." in name_or_path) and importlib.util.find_spec(
        name_or_path.partition(".")[0].partition(":")[0]
    ):  # "package.module[:FOLDER]" of an importable package
        return load_environment(ENVIRONMENTS.load(name_or_path))
    known = ", ".join(sorted(candidates)) or "none found"
    raise ManifestError(
        f"unknown environment {name_or_path!r} (known: {known}); "
        "pass a folder with an env.toml, or run `executor envs`"
    )
