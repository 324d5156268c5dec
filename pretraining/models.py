"""Print the pre-training model's parameter counts per part (trainable vs frozen): ``python pretraining/models.py``.

Usage: python pretraining/models.py [--config FILE] [key=value ...]   (default: this folder's config.yml)

The model is built on the "meta" device (no memory, no BEATs checkpoint read): the architecture
comes from the config alone. Counts come from :func:`seld.tasks.summary.pretrain_summary`.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seld.tasks.summary import summary_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return summary_main("pretrain", __file__, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
