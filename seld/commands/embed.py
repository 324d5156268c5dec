"""``seld embed``: export the per-frame audio-driven embeddings A to HDF5.

The file records the checkpoint that made it (path and sha256) and, by default, the model's
outputs, so that ``seld query --index`` can embed a query with the same model and decode the
events at the frames it finds.
"""
from __future__ import annotations

import argparse
import sys

from seld.commands._common import add_recording_arguments, device_name, resolve_progress

HELP = "Export per-frame audio-driven embeddings A of a fine-tuned checkpoint to one HDF5 file (an index for seld query)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recording_arguments(
        parser, "HDF5 file: one (frames, D) dataset per recording, outputs/<recording> (frames, 117) with "
        "--outputs, and the checkpoint's path and sha256 as file attributes",
        "a fine-tuning checkpoint (seld finetune; its text encoder gives A)",
    )
    parser.add_argument("--outputs", action=argparse.BooleanOptionalAction, default=True,
                        help="also store the model's activated outputs, from which seld query decodes the events "
                        "at each frame (default: on; same features, one more forward pass of the model per batch)")


def run(args: argparse.Namespace) -> int:
    from seld.embeddings import export_embeddings
    from seld.inference import InferenceOptions, set_threads
    from seld.tasks.loading import load_task

    progress = resolve_progress(args.progress)
    set_threads(args.num_threads)
    device = device_name(args.device)
    model = load_task(args.checkpoint, device)
    opts = InferenceOptions(batch_size=args.batch_size, resample=args.resample, mono_to_stereo=args.mono_to_stereo)
    report = export_embeddings(model, args.audio, args.out, opts, device, progress=progress,
                               checkpoint=args.checkpoint, outputs=args.outputs)
    for line in report.failure_lines():
        print(line, file=sys.stderr)
    if report.written:
        print(f"wrote embeddings of {len(report.done)} recording(s) to {args.out}")
    else:
        print(f"no recording could be processed; {args.out} not written", file=sys.stderr)
    return 0 if report.ok else 1
