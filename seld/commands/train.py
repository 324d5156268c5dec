"""``seld pretrain`` / ``seld finetune`` / ``seld baseline``: one training command per entry of
:data:`seld.tasks.STAGES`, each reading its stage's YAML and running its stage."""
from __future__ import annotations

import argparse

from seld.commands._common import add_config_arguments, run_stage_command


def add_arguments(parser: argparse.ArgumentParser, stage: str) -> None:
    add_config_arguments(parser, stage)


def run(args: argparse.Namespace) -> int:
    return run_stage_command(args, args.command)
