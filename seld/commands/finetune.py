"""``seld finetune``: fine-tune with a frozen text encoder (stage 2)."""
from __future__ import annotations

import argparse

from seld.commands._common import add_config_arguments, run_stage_command

HELP = "Fine-tune a pre-trained tokenizer through a frozen CLIP/BERT text encoder with a GREP or TREP head."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, "finetune")


def run(args: argparse.Namespace) -> int:
    return run_stage_command(args, "finetune")
