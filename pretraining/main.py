"""Stage 1 entry point: ``python pretraining/main.py [--config FILE] [key=value ...]``.

Without ``--config`` it uses the ``config.yml`` next to this script (wherever it is run from):
:func:`seld.cli.run_stage_script`.

Thin: parses the config and calls :func:`seld.tasks.pretrain.run_pretraining` (same as ``seld pretrain``).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seld.cli import run_stage_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_stage_script("pretrain", __file__))
