"""``seld pretrain``: train the tokenizer (stage 1) under ADPIT."""
from __future__ import annotations

import argparse

from seld.commands._common import add_config_arguments

HELP = "Pre-train the tokenizer (RCC or BEATs source encoder) with ADPIT; resumes from <out_dir>/checkpoints/last.pt."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, "pretraining/config.yml")


def run(args: argparse.Namespace) -> int:
    from seld.config import dump_config, load_config
    from seld.train.stages import PretrainConfig, run_pretraining

    cfg = load_config(args.config, PretrainConfig, args.overrides)
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    run_pretraining(cfg)
    return 0
