"""Stage 2 entry point: ``python finetuning/main.py [--config FILE] [key=value ...]``.

Without ``--config`` it uses the ``config.yml`` next to this script (wherever it is run from).

Thin: parses the config and calls :func:`seld.tasks.finetune.run_finetuning` (same as ``seld finetune``).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seld.cli import main  # noqa: E402


def with_default_config(argv: list[str]) -> list[str]:
    """``argv`` with ``--config <this folder>/config.yml`` added when no --config is given."""
    if any(a == "--config" or a.startswith("--config=") for a in argv):
        return argv
    return ["--config", str(Path(__file__).resolve().with_name("config.yml")), *argv]


if __name__ == "__main__":
    sys.exit(main(["finetune", *with_default_config(sys.argv[1:])]))
