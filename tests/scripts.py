"""Load a repository script (``scripts/...``, ``pretraining/models.py``) as a module for a test; the
``PYTHONPATH`` of the tests' child processes."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(path: str | Path, name: str) -> ModuleType:
    """Execute the script at ``path`` (relative to the repository root, or absolute) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    return module


def child_pythonpath() -> str:
    """``PYTHONPATH`` for a child process of a test: the repository first, then whatever the test run
    already had (where the dependencies come from ``PYTHONPATH``, as on a machine without a venv)."""
    return os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
