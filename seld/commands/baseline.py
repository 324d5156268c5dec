"""``seld baseline``: train the DCASE2025 baseline CRNN with the same engine, features and metric."""
from __future__ import annotations

import argparse

from seld.commands._common import add_config_arguments, run_stage_command

HELP = "Train the DCASE2025 baseline CRNN (audio-only, multi-ACCDOA) with ADPIT; resumes from <out_dir>/checkpoints/last.pt."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, "baseline")


def run(args: argparse.Namespace) -> int:
    return run_stage_command(args, "baseline")
