"""Print the pre-training model's parameter counts per part (trainable vs frozen): ``python pretraining/models.py``.

Usage: python pretraining/models.py [--config FILE] [key=value ...]   (default: this folder's config.yml)

The model is built on the "meta" device (no memory, no BEATs checkpoint read): the architecture
comes from the config alone. Counts come from :mod:`seld.models.summary`.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from seld.config import load_config  # noqa: E402
from seld.errors import SeldError  # noqa: E402
from seld.models import ModelConfig, PretrainModel  # noqa: E402
from seld.models.summary import format_counts, part_counts, pretrain_parts  # noqa: E402
from seld.tasks.base import apply_stream_channels  # noqa: E402
from seld.tasks.pretrain import PretrainConfig  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(Path(__file__).resolve().parent / "config.yml"), help="pre-training YAML")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. model.tokenizer.source_encoder=beats")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, PretrainConfig, overrides=args.overrides)
        model_cfg = ModelConfig(tokenizer=apply_stream_channels(cfg.model.tokenizer, cfg.data.streams))
        with torch.device("meta"):
            model = PretrainModel(model_cfg, load_pretrained=False)
    except SeldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.config}: {model_cfg.tokenizer.source_encoder.upper()} tokenizer + pre-training head")
    print(format_counts(part_counts(pretrain_parts(model))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
