"""Running a trained model on stereo recordings of any length: 5 s windows, stitched per 100 ms frame."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seld.config import from_dict
from seld.constants import CLIP_SAMPLES, LABEL_FRAMES
from seld.data.audio import AudioConfig, load_stereo
from seld.data.dataset import source_view_batches
from seld.errors import DataError
from seld.train.stages import FinetuneTask, LoadedModel


@dataclass
class InferenceOptions:
    threshold: float = 0.5
    """Activity threshold on the track vector norm."""
    merge_deg: float = 15.0
    """Same-class tracks closer than this are merged."""
    batch_windows: int = 8
    """5 s windows per forward pass."""
    resample: bool = False
    """Resample audio of another rate instead of rejecting it."""
    mono_to_stereo: bool = False


def _feature_config(model: LoadedModel):
    from seld.features.config import FeatureConfig

    data = {k: v for k, v in model.features.items() if k in {"stft", "mel", "wpe", "peak_normalize", "channels"}}
    return from_dict(FeatureConfig, data, source="checkpoint feature config")


def _windows(model: LoadedModel, audio: np.ndarray) -> tuple[dict[str, torch.Tensor], int]:
    """Stream inputs ``{src, doa, dist: (windows, C, 250, 64)}`` and the recording's label frames.

    The recording is cut into 5 s windows (the last zero-padded) and each window is treated as a
    training clip was: its own peak normalisation and its own WPE statistics.
    """
    from seld.features.config import num_label_frames
    from seld.features.extract import compute_batch_features

    label_frames = num_label_frames(audio.shape[1])
    n_windows = -(-audio.shape[1] // CLIP_SAMPLES)
    padded = np.zeros((2, n_windows * CLIP_SAMPLES), dtype=np.float32)
    padded[:, : audio.shape[1]] = audio
    clips = padded.reshape(2, n_windows, CLIP_SAMPLES).transpose(1, 0, 2)  # (windows, 2, samples)
    s = model.streams
    views = s.eval_source_views()  # the source input(s) at evaluation (streams.src_eval)
    channels = s.required_channels(train=False)
    feats = model.normalize(compute_batch_features(np.ascontiguousarray(clips), channels, _feature_config(model)))

    def stack(chans: list[str]) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(np.stack([feats[c] for c in chans], axis=1), dtype=np.float32))

    streams = {"src": stack(views[0]), "doa": stack(s.doa), "dist": stack(s.dist)}  # each (windows, C, 250, 64)
    if len(views) > 1:  # (windows, V, C, 250, 64): predictions averaged over the views
        streams["src_views"] = torch.stack([stack(v) for v in views], dim=1)
    return streams, label_frames


@torch.no_grad()
def predict_recording(model: LoadedModel, audio: np.ndarray, opts: InferenceOptions | None = None,
                      device: str | torch.device = "cpu", embeddings: bool = False) -> np.ndarray:
    """Activated output ``(label_frames, 117)`` of a stereo recording ``(2, n)`` of any length.

    With ``embeddings`` (fine-tuned models only) the audio-driven embeddings A ``(label_frames, D)``.
    """
    opts = opts or InferenceOptions()
    if audio.ndim != 2 or audio.shape[0] != 2 or audio.shape[1] == 0:
        raise DataError(f"expected a non-empty stereo recording (2, samples), got shape {tuple(audio.shape)}")
    streams, label_frames = _windows(model, audio)
    task = model.task
    if embeddings and not isinstance(task, FinetuneTask):
        raise DataError("embeddings need a fine-tuned checkpoint (stage 'finetune')")
    outs = []
    n = streams["src"].shape[0]
    for i in range(0, n, opts.batch_windows):
        batch = {k: v[i : i + opts.batch_windows].to(device) for k, v in streams.items()}
        fn = task.embed if embeddings else task.predict
        views = [fn(b["src"], b["doa"], b["dist"]).float() for b in source_view_batches(batch)]
        outs.append(torch.stack(views).mean(0).cpu())
    out = torch.cat(outs).reshape(n * LABEL_FRAMES, -1)
    return out[:label_frames].numpy()


def list_audio(path: str | os.PathLike[str]) -> list[Path]:
    """A WAV file, or the WAV files of a folder (sorted); DataError if there are none."""
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(p.glob("*.wav"))
        if files:
            return files
        raise DataError(f"{p}: no .wav files in this folder")
    raise DataError(f"audio path not found: {p}")


def audio_config(model: LoadedModel, opts: InferenceOptions) -> AudioConfig:
    """Any length; resampling / mono handling only where asked."""
    rate = int(model.features.get("audio", {}).get("sample_rate", AudioConfig().sample_rate))
    return AudioConfig(sample_rate=rate, clip_samples=0, resample=opts.resample, mono_to_stereo=opts.mono_to_stereo)


def infer_to_csv(model: LoadedModel, audio_path: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                 opts: InferenceOptions | None = None, device: str | torch.device = "cpu",
                 progress: bool = True) -> list[Path]:
    """Write one DCASE2025 CSV per recording under ``out_dir``; returns their paths."""
    from tqdm import tqdm

    from seld.data.metadata import write_metadata_csv
    from seld.decoding import decode_output

    opts = opts or InferenceOptions()
    files = list_audio(audio_path)
    acfg = audio_config(model, opts)
    paths = []
    for wav in tqdm(files, desc="infer", disable=not progress):
        out = predict_recording(model, load_stereo(wav, acfg), opts, device)
        events = decode_output(out, opts.threshold, opts.merge_deg)
        paths.append(write_metadata_csv(Path(out_dir) / f"{wav.stem}.csv", events))
    return paths


def export_embeddings(model: LoadedModel, audio_path: str | os.PathLike[str], out_file: str | os.PathLike[str],
                      opts: InferenceOptions | None = None, device: str | torch.device = "cpu",
                      progress: bool = True) -> int:
    """Write A ``(label_frames, D)`` per recording as dataset ``<stem>`` of one HDF5 file; returns the count."""
    import h5py
    from tqdm import tqdm

    from seld.io_utils import atomic_path

    opts = opts or InferenceOptions()
    files = list_audio(audio_path)
    acfg = audio_config(model, opts)
    with atomic_path(out_file) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["frame_hop_seconds"] = 0.1
            for wav in tqdm(files, desc="embed", disable=not progress):
                emb = predict_recording(model, load_stereo(wav, acfg), opts, device, embeddings=True)
                ds = f.create_dataset(wav.stem, data=emb.astype(np.float32))
                ds.attrs["audio_path"] = str(wav)
    return len(files)
