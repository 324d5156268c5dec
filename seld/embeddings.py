"""The embeddings file of ``seld embed``: A ``(label_frames, D)`` of every recording (and, when asked,
its activated outputs) in one HDF5 file that records the checkpoint that made it; written by
:func:`export_embeddings`, read back whole by :func:`read_embedding_index` (``seld query --index``)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from seld.constants import OUTPUT_DIM
from seld.errors import DataError
from seld.inference import (
    InferenceOptions,
    InferenceReport,
    audio_config,
    finetuned_task,
    list_audio,
    predict_recordings,
    readable_recordings,
)
from seld.tasks.loading import LoadedModel


class _NothingWritten(Exception):
    """Every recording failed: leave no embeddings file behind."""


OUTPUTS_GROUP = "outputs"
"""Group of an embeddings file holding the activated outputs ``(label_frames, 117)`` per recording."""


def export_embeddings(model: LoadedModel, audio_path: str | os.PathLike[str], out_file: str | os.PathLike[str],
                      opts: InferenceOptions | None = None, device: str | torch.device = "cpu",
                      progress: bool = True, checkpoint: str | os.PathLike[str] | None = None,
                      outputs: bool = False) -> InferenceReport:
    """Write A ``(label_frames, D)`` per recording as dataset ``<stem>`` of one HDF5 file.

    ``checkpoint``: the file ``model`` was loaded from, recorded as the file attributes
    ``checkpoint`` (absolute path) and ``checkpoint_sha256`` (of its bytes), so that a reader can
    check that a query is embedded by the same model. ``outputs``: also store the activated outputs
    ``(label_frames, 117)`` as ``outputs/<stem>`` (from the same features; the model's ``predict``
    runs beside ``embed``), from which the events at any frame decode. Bad files are listed in the report and left out; no file is written when none
    succeeds. :func:`read_embedding_index` reads the file back.
    """
    import h5py
    from tqdm import tqdm

    from seld.io_utils import atomic_path, file_sha256

    opts = opts or InferenceOptions()
    finetuned_task(model, "embeddings need")  # before any file is read
    files = list_audio(audio_path)
    if outputs and any(w.stem == OUTPUTS_GROUP for w in files):
        clash = next(w for w in files if w.stem == OUTPUTS_GROUP)
        raise DataError(f"{clash}: a recording named {OUTPUTS_GROUP!r} clashes with the group of the outputs; rename it")
    report = InferenceReport()
    try:
        with atomic_path(out_file) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["frame_hop_seconds"] = 0.1
            if checkpoint is not None:
                f.attrs["checkpoint"] = str(Path(checkpoint).resolve())
                f.attrs["checkpoint_sha256"] = file_sha256(checkpoint)
            group = f.create_group(OUTPUTS_GROUP) if outputs else None
            with tqdm(total=len(files), desc="embed", unit="file", disable=not progress) as bar:
                readable = readable_recordings(files, audio_config(model, opts), report, bar)
                for wav, emb in predict_recordings(model, readable, opts, device, embeddings=True, with_output=outputs):
                    if group is not None:
                        group.create_dataset(wav.stem, data=emb[:, :OUTPUT_DIM].astype(np.float32))
                        emb = emb[:, OUTPUT_DIM:]
                    ds = f.create_dataset(wav.stem, data=emb.astype(np.float32))
                    ds.attrs["audio_path"] = str(wav)
                    report.done.append(wav)
                    bar.update(1)
            if not report.done:
                raise _NothingWritten
    except _NothingWritten:
        return report
    report.written.append(Path(out_file))
    return report


@dataclass
class EmbeddingIndex:
    """An embeddings file of :func:`export_embeddings` (``seld embed``), read into memory."""

    path: Path
    embeddings: dict[str, np.ndarray]
    """Recording stem -> A ``(label_frames, D)`` float32, by name (HDF5's order)."""
    outputs: dict[str, np.ndarray]
    """Recording stem -> activated output ``(label_frames, 117)``; empty when the file stores none."""
    audio_paths: dict[str, str]
    checkpoint: Optional[str]
    """Absolute path of the checkpoint that made the file (None: not recorded)."""
    checkpoint_sha256: Optional[str]
    frame_hop_seconds: float


def read_embedding_index(path: str | os.PathLike[str]) -> EmbeddingIndex:
    """Read an embeddings file; DataError naming the file when it is missing or not of this layout."""
    import h5py

    p = Path(path)
    if not p.is_file():
        raise DataError(f"embeddings file not found: {p}")
    try:
        with h5py.File(p, "r") as f:
            group = f.get(OUTPUTS_GROUP)
            embeddings = {k: v[()] for k, v in f.items() if isinstance(v, h5py.Dataset)}
            outputs = {k: v[()] for k, v in group.items()} if isinstance(group, h5py.Group) else {}
            audio = {k: str(f[k].attrs.get("audio_path", "")) for k in embeddings}
            attrs = dict(f.attrs)
    except OSError as exc:
        raise DataError(f"{p}: not a readable HDF5 file ({exc})") from exc
    if not embeddings:
        raise DataError(f"{p}: holds no embeddings (expected one (frames, D) dataset per recording, as seld embed writes)")
    widths = {v.shape[1] if v.ndim == 2 else None for v in embeddings.values()}
    if len(widths) != 1 or None in widths:
        raise DataError(f"{p}: embeddings must all be (frames, D) with one D, got shapes "
                        f"{sorted({tuple(v.shape) for v in embeddings.values()})}")
    for k, out in outputs.items():
        if k not in embeddings or out.shape[0] != embeddings[k].shape[0]:
            raise DataError(f"{p}: {OUTPUTS_GROUP}/{k} of shape {out.shape} has no embeddings of the same frames")

    def text(name: str) -> Optional[str]:
        value = attrs.get(name)
        return None if value is None else (value.decode() if isinstance(value, bytes) else str(value))

    return EmbeddingIndex(
        path=p, embeddings=embeddings, outputs=outputs, audio_paths=audio,
        checkpoint=text("checkpoint"), checkpoint_sha256=text("checkpoint_sha256"),
        frame_hop_seconds=float(attrs.get("frame_hop_seconds", 0.1)),
    )
