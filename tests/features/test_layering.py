"""Import layering of the data, simulator and feature packages: no circles, nothing imported from a higher floor."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

import seld

ROOT = Path(seld.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every ``seld.*`` module a file imports, at top level or inside functions."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seld"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("seld"))
    return out


def test_data_layer_does_not_import_features_or_the_simulator() -> None:
    for path in sorted((ROOT / "data").glob("*.py")):
        upward = {m for m in imported_modules(path) if m.startswith(("seld.features", "seld.sim"))}
        assert not upward, f"{path.name} imports {upward}"


def test_simulator_sits_on_the_data_layer_only() -> None:
    # seld.sim renders audio and writes the DCASE layout; features, models and training never meet it
    allowed = ("seld.sim.", "seld.data.", "seld.config", "seld.constants", "seld.errors", "seld.io_utils")
    for path in sorted((ROOT / "sim").glob("*.py")):
        other = {m for m in imported_modules(path) if not m.startswith(allowed)}
        assert not other, f"seld/sim/{path.name} imports {other}"


def test_feature_modules_import_only_downward() -> None:
    # floors inside seld.features, lowest first; a module may import only lower floors
    floors = [["params", "native", "workers"], ["stft", "wpe"], ["channels"], ["config"], ["normalization", "clip_files"],
              ["extract"], ["merge"]]
    level = {name: i for i, names in enumerate(floors) for name in names}
    for name, lvl in level.items():
        for mod in imported_modules(ROOT / "features" / f"{name}.py"):
            if mod.startswith("seld.features."):
                other = mod.rsplit(".", 1)[1]
                assert level[other] < lvl, f"seld.features.{name} imports {mod} (same or higher floor)"


def test_cuda_asked_but_absent_is_a_config_error() -> None:
    from seld.errors import ConfigError
    from seld.features.config import FeatureConfig
    from seld.features.extract import compute_batch_features

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    with pytest.raises(ConfigError, match="device 'cuda'.*no CUDA device.*device: cpu"):
        compute_batch_features(np.zeros((1, 2, 2400), np.float32), ["logmel_l"], FeatureConfig(device="cuda"))
