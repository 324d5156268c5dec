"""``seld embed``: export the per-frame audio-driven embeddings A to HDF5."""
from __future__ import annotations

import argparse

from seld.commands._common import add_device_argument, resolve_device

HELP = "Export per-frame audio-driven embeddings A of a fine-tuned checkpoint to one HDF5 file."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="fine-tuning checkpoint")
    parser.add_argument("--audio", required=True, metavar="FILE_OR_DIR", help="a WAV file or a folder of WAV files")
    parser.add_argument("--out", required=True, metavar="FILE", help="HDF5 file: one (frames, D) dataset per recording")
    parser.add_argument("--resample", action="store_true", help="resample audio of another rate instead of failing")
    parser.add_argument("--mono-to-stereo", action="store_true", help="duplicate mono files instead of failing")
    parser.add_argument("--batch-windows", type=int, default=8, help="5 s windows per forward pass")
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    from seld.inference import InferenceOptions, export_embeddings
    from seld.train.stages import load_task

    device = resolve_device(args.device)
    model = load_task(args.checkpoint, device)
    opts = InferenceOptions(batch_windows=args.batch_windows, resample=args.resample, mono_to_stereo=args.mono_to_stereo)
    n = export_embeddings(model, args.audio, args.out, opts, device)
    print(f"wrote embeddings of {n} recording(s) to {args.out}")
    return 0
