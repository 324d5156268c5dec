"""``seld embed``: export the per-frame audio-driven embeddings A to HDF5."""
from __future__ import annotations

import argparse

from seld.commands._common import add_recording_arguments, device_name, resolve_progress

HELP = "Export per-frame audio-driven embeddings A of a fine-tuned checkpoint to one HDF5 file."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recording_arguments(parser, "HDF5 file: one (frames, D) dataset per recording")


def run(args: argparse.Namespace) -> int:
    from seld.inference import InferenceOptions, export_embeddings
    from seld.train.stages import load_task

    progress = resolve_progress(args.progress)
    device = device_name(args.device)
    model = load_task(args.checkpoint, device)
    opts = InferenceOptions(batch_windows=args.batch_windows, resample=args.resample, mono_to_stereo=args.mono_to_stereo)
    n = export_embeddings(model, args.audio, args.out, opts, device, progress=progress)
    print(f"wrote embeddings of {n} recording(s) to {args.out}")
    return 0
