"""``seld infer``: DCASE2025 CSVs for stereo recordings of any length."""
from __future__ import annotations

import argparse

from seld.commands._common import add_device_argument, resolve_device

HELP = "Run a trained checkpoint on stereo 24 kHz WAV files (any length) and write DCASE2025 CSVs."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="pre-training or fine-tuning checkpoint")
    parser.add_argument("--audio", required=True, metavar="FILE_OR_DIR", help="a WAV file or a folder of WAV files")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the CSVs (one per recording)")
    parser.add_argument("--threshold", type=float, default=0.5, help="activity threshold (default 0.5)")
    parser.add_argument("--merge-deg", type=float, default=15.0, help="merge same-class tracks closer than this")
    parser.add_argument("--resample", action="store_true", help="resample audio of another rate instead of failing")
    parser.add_argument("--mono-to-stereo", action="store_true", help="duplicate mono files instead of failing")
    parser.add_argument("--batch-windows", type=int, default=8, help="5 s windows per forward pass")
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    from seld.inference import InferenceOptions, infer_to_csv
    from seld.train.stages import load_task

    device = resolve_device(args.device)
    model = load_task(args.checkpoint, device)
    opts = InferenceOptions(args.threshold, args.merge_deg, args.batch_windows, args.resample, args.mono_to_stereo)
    paths = infer_to_csv(model, args.audio, args.out, opts, device)
    print(f"wrote {len(paths)} CSV file(s) to {args.out}")
    return 0
