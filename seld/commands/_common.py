"""Arguments shared by the subcommands: config files, progress bars, devices, recordings."""
from __future__ import annotations

import argparse
import os
import sys

from seld.tasks import STAGES

EXAMPLE_CONFIGS: dict[str, str] = {
    **{name: stage.example_configs for name, stage in STAGES.items()},
    "features": "features/config.yml, configs/quickstart/features.yml",
}
"""The configs shipped in the textseld repository, named in the 'missing --config' message."""


def add_config_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """``--config FILE`` (required: no default that depends on the current folder), overrides, --print-config."""
    parser.add_argument(
        "--config", default=None, metavar="FILE",
        help=f"YAML config (required; shipped in the textseld repository: {EXAMPLE_CONFIGS[command]})",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE",
        help="config overrides, e.g. train.batch_size=4 train.out_dir=runs/x (values are YAML)",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    add_progress_argument(parser)


def require_config(config: str | None, command: str) -> str:
    """``config``, or a ConfigError saying that ``seld <command>`` needs ``--config FILE``.

    A default such as ``pretraining/config.yml`` would be looked up relative to the current folder
    (and silently missing or wrong outside the repository), so every config-driven command asks
    for the file explicitly. The folder scripts (``pretraining/main.py`` ...) default to the config
    next to them.
    """
    from seld.errors import ConfigError

    if config is None:
        raise ConfigError(
            f"--config FILE is required: seld {command} --config FILE [KEY=VALUE ...] "
            f"(configs shipped in the textseld repository: {EXAMPLE_CONFIGS[command]})"
        )
    return config


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress`` (default: bars only when stderr is a terminal)."""
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="show or hide progress bars (default: shown only when stderr is a terminal, so logs "
        "and pipes stay free of them; Hugging Face/transformers loading bars follow the same switch)",
    )


def resolve_progress(flag: bool | None) -> bool:
    """Whether to draw progress bars: ``flag`` when given, else only when stderr is a terminal.

    When bars are off, the Hugging Face hub and transformers loading bars are switched off too
    (``HF_HUB_DISABLE_PROGRESS_BARS`` is read when transformers is imported; an already imported
    transformers is switched off directly), so model loading does not flood logs.
    """
    show = sys.stderr.isatty() if flag is None else bool(flag)
    if not show:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        if "huggingface_hub" in sys.modules:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        if "transformers" in sys.modules:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
    return show


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default: auto)")


def device_name(name: str) -> str:
    """The device for `--device`: auto -> cuda when a GPU is visible, else cpu; others pass through."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def run_stage_command(args: argparse.Namespace, stage: str) -> int:
    """Load the stage's config (file + overrides), print it with --print-config, else train
    (the stage's schema and runner come from :data:`seld.tasks.STAGES`)."""
    from seld.config import dump_config, load_config

    parts = STAGES[stage].parts()
    cfg = load_config(require_config(args.config, stage), parts.schema, args.overrides)
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    if not resolve_progress(args.progress):
        cfg.train.progress = False
    parts.run(cfg)
    return 0


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_recording_arguments(parser: argparse.ArgumentParser, out_help: str, checkpoint_help: str) -> None:
    """--checkpoint/--audio/--out and the audio handling options of infer and embed."""
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help=checkpoint_help)
    parser.add_argument("--audio", required=True, metavar="FILE_OR_DIR", help="a WAV file or a folder of WAV files")
    parser.add_argument("--out", required=True, metavar="PATH", help=out_help)
    add_audio_arguments(parser)


def add_audio_arguments(parser: argparse.ArgumentParser) -> None:
    """The audio handling, batching, thread, device and progress options of the commands that run a model."""
    parser.add_argument("--resample", action="store_true", help="resample audio of another rate instead of failing")
    parser.add_argument("--mono-to-stereo", action="store_true", help="duplicate mono files instead of failing")
    parser.add_argument("--batch-size", "--batch-windows", dest="batch_size", type=positive_int, default=16, metavar="N",
                        help="5 s windows per batch (features and forward pass), across files (default 16)")
    parser.add_argument("--num-threads", type=positive_int, default=None, metavar="N",
                        help="torch CPU threads (default: torch's choice; 1 is fastest on a busy CPU)")
    add_device_argument(parser)
    add_progress_argument(parser)
