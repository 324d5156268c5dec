"""Running a trained model never goes through training: inference, the commands that run a model,
the models and the parameter-count scripts import the model contract (``seld.tasks``) and the
checkpoint reader (``seld.checkpoint``), never ``seld.train``; and loading any stage's checkpoint
leaves the training engine unloaded."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.features.test_layering import imported_modules
from tests.scripts import child_pythonpath

ROOT = Path(__file__).resolve().parents[1]

RUNS_A_MODEL = [
    "seld/inference.py", "seld/embeddings.py", "seld/query.py", "seld/query_scores.py", "seld/plots.py",
    "seld/checkpoint.py",
    *(f"seld/commands/{name}.py" for name in ("infer", "embed", "evaluate", "query")),
    *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "seld" / "models").rglob("*.py"))),
    "seld/tasks/__init__.py", "seld/tasks/base.py", "seld/tasks/loading.py", "seld/tasks/summary.py",
    "pretraining/models.py", "finetuning/models.py",
]


@pytest.mark.parametrize("path", RUNS_A_MODEL)
def test_what_runs_a_model_does_not_import_training(path):
    training = {m for m in imported_modules(ROOT / path) if m == "seld.train" or m.startswith("seld.train.")}
    assert not training, f"{path} imports {sorted(training)}"


def test_loading_any_stage_leaves_the_training_engine_unloaded():
    # the stage modules reach the Trainer through seld.tasks.runner, inside their run functions only
    check = ("import sys; import seld.inference, seld.embeddings, seld.query, seld.query_scores, "
             "seld.commands.infer, seld.commands.embed, seld.commands.evaluate, seld.commands.query; "
             "from seld.tasks import STAGES; "
             "from seld.tasks.loading import load_task; parts = [STAGES[s].parts() for s in STAGES]; "
             "print(' '.join(sorted(m for m in sys.modules if m.startswith(('seld.train', 'seld.tasks.runner')))))")
    res = subprocess.run([sys.executable, "-c", check], cwd=ROOT, env=dict(os.environ, PYTHONPATH=child_pythonpath()),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    loaded = set(res.stdout.split())
    # the stage configs' train: and data: sections and the least-squares head fit; no engine, no runner
    assert loaded == {"seld.train", "seld.train.config", "seld.train.data", "seld.train.head_init"}, loaded
