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


def device_name(name: str) -> str:
    """The device for `--device`: auto -> cuda when a GPU is visible, else cpu; others pass through."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def run_stage_command(args: argparse.Namespace, stage: str) -> int:
    """Load the stage's config (file + overrides), print it with --print-config, else train."""
    from seld.config import dump_config, load_config
    from seld.train import stages

    schema, runner = {
        "pretrain": (stages.PretrainConfig, stages.run_pretraining),
        "finetune": (stages.FinetuneConfig, stages.run_finetuning),
    }[stage]
    cfg = load_config(args.config, schema, args.overrides)
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    runner(cfg)
    return 0


def add_recording_arguments(parser: argparse.ArgumentParser, out_help: str) -> None:
    """--checkpoint/--audio/--out and the audio handling options of infer and embed."""
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="pre-training or fine-tuning checkpoint")
    parser.add_argument("--audio", required=True, metavar="FILE_OR_DIR", help="a WAV file or a folder of WAV files")
    parser.add_argument("--out", required=True, metavar="PATH", help=out_help)
    parser.add_argument("--resample", action="store_true", help="resample audio of another rate instead of failing")
    parser.add_argument("--mono-to-stereo", action="store_true", help="duplicate mono files instead of failing")
    parser.add_argument("--batch-size", "--batch-windows", dest="batch_size", type=int, default=16, metavar="N",
                        help="5 s windows per batch (features and forward pass), across files (default 16)")
    parser.add_argument("--num-threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: torch's choice; 1 is fastest on a busy CPU)")
    add_device_argument(parser)
