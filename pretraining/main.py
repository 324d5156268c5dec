"""Stage 1 entry point: ``python pretraining/main.py [--config FILE] [key=value ...]``, the same as ``seld pretrain``
(:func:`seld.tasks.pretrain.run_pretraining`) with the ``config.yml`` next to this script by default."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seld.cli import run_stage_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_stage_script("pretrain", __file__))
