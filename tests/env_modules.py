"""Importing an environment's files in tests: the protected scripts by path, and a baseline
repo's modules without leaving them in sys.modules (environments share module names such as
`config` and `train`)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace


def load_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def import_repo(repo: Path, names: tuple[str, ...]) -> SimpleNamespace:
    """`names` imported from the `repo` folder, as the repo's own code imports them."""
    saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    sys.path.insert(0, str(repo))
    try:
        mods = {n: importlib.import_module(n) for n in names}
    finally:
        sys.path.remove(str(repo))
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved)
    return SimpleNamespace(**mods)
