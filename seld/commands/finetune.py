"""``seld finetune``: fine-tune with a frozen text encoder (stage 2)."""
from __future__ import annotations

import argparse

from seld.commands._common import add_config_arguments

HELP = "Fine-tune a pre-trained tokenizer through a frozen CLIP/BERT text encoder with a GREP or TREP head."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, "finetuning/config.yml")


def run(args: argparse.Namespace) -> int:
    from seld.config import dump_config, load_config
    from seld.train.stages import FinetuneConfig, run_finetuning

    cfg = load_config(args.config, FinetuneConfig, args.overrides)
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    run_finetuning(cfg)
    return 0
