"""Stage 2 entry point: ``python finetuning/main.py [--config FILE] [key=value ...]``.

Thin: parses the config and calls :func:`seld.train.stages.run_finetuning` (same as ``seld finetune``).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seld.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["finetune", *sys.argv[1:]]))
