"""Arguments shared by the training subcommands."""
from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--config", default=default, metavar="FILE", help=f"YAML config (default: {default})")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE",
        help="config overrides, e.g. train.batch_size=4 train.out_dir=runs/x (values are YAML)",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default: auto)")


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name
