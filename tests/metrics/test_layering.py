"""Import floors of seld.metrics: each module imports only the modules below it, and the package sits on
the data layer (it never reaches up to the models, tasks, training or commands)."""
from __future__ import annotations

from pathlib import Path

import pytest

import seld
from tests.features.test_layering import imported_modules

ROOT = Path(seld.__file__).parent / "metrics"
FLOORS = ["scores", "jackknife", "pairing", "scorer", "report", "folders"]  # lowest first, as in seld/metrics/__init__.py
BELOW_METRICS = ("seld.constants", "seld.errors", "seld.data.metadata", "seld.decoding")


def test_every_module_has_a_floor() -> None:
    assert sorted(p.stem for p in ROOT.glob("*.py") if p.stem != "__init__") == sorted(FLOORS)


@pytest.mark.parametrize("name", FLOORS)
def test_metrics_modules_import_only_downward(name: str) -> None:
    for mod in imported_modules(ROOT / f"{name}.py"):
        if mod.startswith("seld.metrics."):
            other = mod.rsplit(".", 1)[1]
            assert FLOORS.index(other) < FLOORS.index(name), f"seld.metrics.{name} imports {mod} (same or higher floor)"
        else:
            assert mod in BELOW_METRICS, f"seld.metrics.{name} imports {mod}, outside the layers below metrics"
