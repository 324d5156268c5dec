"""``seld embed``: export the per-frame audio-driven embeddings A to HDF5."""
from __future__ import annotations

import argparse
import sys

from seld.commands._common import add_recording_arguments, device_name, resolve_progress

HELP = "Export per-frame audio-driven embeddings A of a fine-tuned checkpoint to one HDF5 file."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recording_arguments(parser, "HDF5 file: one (frames, D) dataset per recording")


def run(args: argparse.Namespace) -> int:
    from seld.inference import InferenceOptions, export_embeddings, set_threads
    from seld.train.stages import load_task

    progress = resolve_progress(args.progress)
    set_threads(args.num_threads)
    device = device_name(args.device)
    model = load_task(args.checkpoint, device)
    opts = InferenceOptions(batch_size=args.batch_size, resample=args.resample, mono_to_stereo=args.mono_to_stereo)
    report = export_embeddings(model, args.audio, args.out, opts, device, progress=progress)
    for line in report.failure_lines():
        print(line, file=sys.stderr)
    if report.written:
        print(f"wrote embeddings of {len(report.done)} recording(s) to {args.out}")
    else:
        print(f"no recording could be processed; {args.out} not written", file=sys.stderr)
    return 0 if report.ok else 1
