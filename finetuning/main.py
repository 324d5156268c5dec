"""Stage 2 entry point: ``python finetuning/main.py [--config FILE] [key=value ...]``, the same as ``seld finetune``
(:func:`seld.tasks.finetune.run_finetuning`) with the ``config.yml`` next to this script by default."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seld.cli import run_stage_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_stage_script("finetune", __file__))
