"""``seld pretrain``: train the tokenizer (stage 1) under ADPIT."""
from __future__ import annotations

import argparse

from seld.commands._common import add_config_arguments, run_stage_command

HELP = "Pre-train the tokenizer (RCC or BEATs source encoder) with ADPIT; resumes from <out_dir>/checkpoints/last.pt."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, "pretrain")


def run(args: argparse.Namespace) -> int:
    return run_stage_command(args, "pretrain")
