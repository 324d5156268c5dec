"""Print the fine-tuning model's parameter counts per part (trainable vs frozen): ``python finetuning/models.py``.

Usage: python finetuning/models.py [--config FILE] [key=value ...]   (default: this folder's config.yml)

The tokenizer's architecture comes from ``model.pretrained`` when that checkpoint exists (its saved
config; no weights needed), else from ``model.tokenizer``, else the pre-training defaults (said so).
The tokenizer is built on the "meta" device; the frozen text encoder is built with random weights
where that needs no download (open_clip architectures, local folders, the offline MiniLM) and left
out of the table, with the reason, otherwise. Counts come from :func:`seld.tasks.summary.finetune_summary`.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seld.tasks.summary import summary_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return summary_main("finetune", __file__, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
