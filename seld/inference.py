"""Running a trained model on stereo recordings of any length: 5 s windows, stitched per 100 ms frame.

Each recording is cut into 5 s windows (the last one zero-padded), and each window is treated as
a training clip was: its own peak normalisation and its own WPE statistics. Windows of
consecutive recordings share batches (:func:`predict_recordings`): features
(:func:`seld.features.extract.compute_batch_features`) and the forward pass run on
``batch_size`` windows at a time whatever the file boundaries, so a folder of 5 s clips is as
fast as one long recording. A window's output does not depend on the other windows of its batch.

Bad files (unreadable, truncated, wrong channels or rate) are reported and skipped: the folder
commands process every file and list the failures at the end (:class:`InferenceReport`).
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Iterator, Optional, TypeVar

import numpy as np
import torch

from seld.constants import CLIP_SAMPLES
from seld.data.audio import AudioConfig, load_stereo
from seld.data.dataset import source_view_batches
from seld.data.metadata import Event
from seld.errors import DataError
from seld.tasks.finetune_task import FinetuneTask
from seld.tasks.loading import LoadedModel

K = TypeVar("K", bound=Hashable)

CLI_HINTS: dict[str, str] = {"mono_to_stereo": "pass --mono-to-stereo", "resample": "pass --resample"}
"""How ``seld infer`` / ``seld embed`` enable each audio fix (named in their error messages)."""


@dataclass
class InferenceOptions:
    threshold: float = 0.5
    """Activity threshold on the track vector norm."""
    merge_deg: float = 15.0
    """Same-class tracks closer than this are merged."""
    batch_size: int = 16
    """5 s windows per batch (features and forward pass), taken across files."""
    resample: bool = False
    """Resample audio of another rate instead of rejecting it."""
    mono_to_stereo: bool = False
    """Duplicate a mono file to two channels instead of rejecting it."""
    prefetch: bool = True
    """Compute the next batch's features in a background thread while the model runs (same outputs)."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass
class InferenceReport:
    """What a folder run did: recordings processed, files written, and every failure with its reason."""

    done: list[Path] = field(default_factory=list)
    """Recordings that gave an output."""
    written: list[Path] = field(default_factory=list)
    """Files written (one CSV per recording, or the embeddings file)."""
    failed: list[tuple[Path, str]] = field(default_factory=list)
    """(recording, reason) of every file that could not be processed; nothing was written for it."""
    removed: list[Path] = field(default_factory=list)
    """CSVs of an earlier run into the same folder, removed because their recording failed in this
    one (left there, they would be scored as this run's output)."""

    @property
    def ok(self) -> bool:
        return not self.failed

    def failure_lines(self) -> list[str]:
        """One line per failed recording (the reason names the file), then a count."""
        if not self.failed:
            return []
        total = len(self.done) + len(self.failed)
        return [f"failed: {reason}" for _, reason in self.failed] + [
            f"{len(self.failed)} of {total} recording(s) failed; no output was written for them"
        ]


def finetuned_task(model: LoadedModel, needs: str) -> FinetuneTask:
    """``model``'s task when it is a fine-tuning one (text encoder and all); otherwise a DataError that
    starts with ``needs`` (e.g. "embeddings need") and names the stage the checkpoint has."""
    if not isinstance(model.task, FinetuneTask):
        raise DataError(f"{needs} a fine-tuned checkpoint (stage 'finetune', with a text encoder); "
                        f"this one is stage {model.stage!r}")
    return model.task


def split_windows(audio: np.ndarray) -> tuple[np.ndarray, int]:
    """5 s windows ``(windows, 2, CLIP_SAMPLES)`` of a stereo recording ``(2, n)`` (the last zero-padded)
    and the recording's label frames ``ceil(n / 2400)``."""
    from seld.features.config import num_label_frames

    if audio.ndim != 2 or audio.shape[0] != 2 or audio.shape[1] == 0:
        raise DataError(f"expected a non-empty stereo recording (2, samples), got shape {tuple(audio.shape)}")
    n_windows = -(-audio.shape[1] // CLIP_SAMPLES)
    padded = np.zeros((2, n_windows * CLIP_SAMPLES), dtype=np.float32)
    padded[:, : audio.shape[1]] = audio
    return padded.reshape(2, n_windows, CLIP_SAMPLES).transpose(1, 0, 2), num_label_frames(audio.shape[1])


class WindowFeatures:
    """Normalised encoder streams of a batch of 5 s windows; the feature config is resolved once."""

    def __init__(self, model: LoadedModel, device: str | torch.device = "cpu"):
        s = model.streams
        self.model = model
        self.cfg = model.feature_config
        self.device = device
        """Where features are computed: the inference device, not the ``device`` of the feature
        config the model was trained on (features extracted on a GPU, inference on a CPU node)."""
        self.views = s.eval_source_views()  # the source input(s) at evaluation (streams.src_eval)
        self.channels = s.required_channels(train=False)

    def __call__(self, clips: np.ndarray) -> dict[str, torch.Tensor]:
        """``clips (B, 2, CLIP_SAMPLES)`` -> ``{src, doa, dist: (B, C, 250, 64)}`` float32 tensors, plus
        ``src_views (B, V, C, 250, 64)`` when ``streams.src_eval`` averages V source views."""
        from seld.features.extract import compute_batch_features

        feats = self.model.normalize(compute_batch_features(np.ascontiguousarray(clips), self.channels, self.cfg, self.device))
        s = self.model.streams

        def stack(chans: list[str]) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(np.stack([feats[c] for c in chans], axis=1), dtype=np.float32))

        streams = {"src": stack(self.views[0]), "doa": stack(s.doa), "dist": stack(s.dist)}
        if len(self.views) > 1:  # predictions are averaged over the views
            streams["src_views"] = torch.stack([stack(v) for v in self.views], dim=1)
        return streams


@dataclass
class _Recording:
    key: Any
    label_frames: int
    windows: int
    parts: list[np.ndarray] = field(default_factory=list)


def predict_recordings(model: LoadedModel, recordings: Iterable[tuple[K, np.ndarray]],
                       opts: InferenceOptions | None = None, device: str | torch.device = "cpu",
                       embeddings: bool = False, with_output: bool = False) -> Iterator[tuple[K, np.ndarray]]:
    """``(key, output)`` per ``(key, audio (2, n))``, in input order; windows share batches across recordings.

    The output is activated multi-ACCDOA ``(label_frames, 117)``, or with ``embeddings``
    (fine-tuned models only) the audio-driven embeddings A ``(label_frames, D)``; with both
    ``embeddings`` and ``with_output``, ``(label_frames, 117 + D)``: the output, then A (one
    feature pass; the model's ``predict`` and ``embed`` both run on it). Recordings are
    read lazily: a recording is yielded as soon as its last window has been through a batch. With
    ``opts.prefetch`` the features of the next batch are computed in a background thread while
    the model runs on the current one (same numbers). The model is put in eval mode.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    opts = opts or InferenceOptions()
    task = finetuned_task(model, "embeddings need") if embeddings else model.task
    task.eval()  # whatever the caller left it in (a trainer's validate() ends in train mode): no dropout
    fn = task.embed if embeddings else task.predict
    if embeddings and with_output:
        def fn(src: torch.Tensor, doa: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
            out, emb = task.predict_and_embed(src, doa, dist)  # one pass through the text encoder
            return torch.cat([out.float(), emb.float()], dim=-1)
    features = WindowFeatures(model, device)
    pending: deque[_Recording] = deque()  # recordings not yet yielded, in input order

    def batches() -> Iterator[tuple[np.ndarray, list[_Recording]]]:
        """Windows ``(n, 2, CLIP_SAMPLES)`` of up to ``batch_size`` and the recording of each; reads lazily."""
        clips: list[np.ndarray] = []
        owners: list[_Recording] = []
        for key, audio in recordings:
            windows, label_frames = split_windows(audio)
            rec = _Recording(key, label_frames, len(windows))
            pending.append(rec)
            clips.extend(windows)
            owners.extend([rec] * len(windows))
            while len(clips) >= opts.batch_size:
                yield np.stack(clips[: opts.batch_size]), owners[: opts.batch_size]
                clips, owners = clips[opts.batch_size :], owners[opts.batch_size :]
        if clips:
            yield np.stack(clips), owners

    def run(streams: dict[str, torch.Tensor], owners: list[_Recording]) -> Iterator[tuple[K, np.ndarray]]:
        streams = {k: v.to(device) for k, v in streams.items()}
        with torch.inference_mode():
            views = [fn(b["src"], b["doa"], b["dist"]).float() for b in source_view_batches(streams)]
            out = torch.stack(views).mean(0).cpu().numpy()
        for o, rec in zip(out, owners):
            rec.parts.append(o)
        while pending and len(pending[0].parts) == pending[0].windows:
            rec = pending.popleft()
            yield rec.key, np.concatenate(rec.parts)[: rec.label_frames]

    if not opts.prefetch:
        for clips, owners in batches():
            yield from run(features(clips), owners)
    else:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seld-features") as pool:
            ahead: deque[tuple[Future, list[_Recording]]] = deque()
            for clips, owners in batches():
                ahead.append((pool.submit(features, clips), owners))
                if len(ahead) > 1:
                    future, done_owners = ahead.popleft()
                    yield from run(future.result(), done_owners)
            while ahead:
                future, done_owners = ahead.popleft()
                yield from run(future.result(), done_owners)
    assert not pending, "every recording is yielded"


def predict_recording(model: LoadedModel, audio: np.ndarray, opts: InferenceOptions | None = None,
                      device: str | torch.device = "cpu", embeddings: bool = False) -> np.ndarray:
    """Activated output ``(label_frames, 117)`` of a stereo recording ``(2, n)`` of any length.

    With ``embeddings`` (fine-tuned models only) the audio-driven embeddings A ``(label_frames, D)``.
    """
    ((_, out),) = predict_recordings(model, [(0, audio)], opts, device, embeddings)
    return out


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


def readable_recordings(files: list[Path], acfg: AudioConfig, report: InferenceReport, bar: Any) -> Iterator[tuple[Path, np.ndarray]]:
    """``(path, audio)`` of each file that loads; a bad file goes to ``report.failed`` (the run goes on)."""
    for wav in files:
        try:
            audio = load_stereo(wav, acfg, hints=CLI_HINTS)
        except DataError as exc:
            report.failed.append((wav, str(exc)))
            bar.update(1)
            continue
        yield wav, audio


def infer_to_csv(model: LoadedModel, audio_path: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                 opts: InferenceOptions | None = None, device: str | torch.device = "cpu",
                 progress: bool = True,
                 on_events: Optional[Callable[[Path, list[Event], int], Any]] = None) -> InferenceReport:
    """Write one DCASE2025 CSV per recording under ``out_dir``; every file is tried, bad ones are
    listed in the report (no CSV for them, and a CSV of the same name left by an earlier run is
    removed: ``report.removed``). ``out_dir`` is locked for the run (:mod:`seld.locks`: a second run
    into it stops naming this one). DataError only when ``audio_path`` holds no WAV file.

    ``on_events(csv_path, events, label_frames)`` is called after each CSV with its decoded events
    (e.g. to write captions beside it)."""
    from tqdm import tqdm

    from seld.data.metadata import write_metadata_csv
    from seld.decoding import decode_output
    from seld.locks import FolderLock

    opts = opts or InferenceOptions()
    files = list_audio(audio_path)
    report = InferenceReport()
    with FolderLock(out_dir, "seld infer"), tqdm(total=len(files), desc="infer", unit="file",
                                                  disable=not progress) as bar:
        for wav, out in predict_recordings(model, readable_recordings(files, audio_config(model, opts), report, bar), opts, device):
            events = decode_output(out, opts.threshold, opts.merge_deg)
            report.written.append(write_metadata_csv(Path(out_dir) / f"{wav.stem}.csv", events))
            if on_events is not None:
                on_events(report.written[-1], events, out.shape[0])
            report.done.append(wav)
            bar.update(1)
        for wav, _ in report.failed:
            stale = Path(out_dir) / f"{wav.stem}.csv"
            if stale.is_file():
                stale.unlink()
                report.removed.append(stale)
    return report


MANIFEST_FILE = "infer_manifest.json"
"""What ``seld infer`` wrote into its ``--out`` folder, and with which checkpoint and settings."""


def write_manifest(out_dir: str | os.PathLike[str], checkpoint: str | os.PathLike[str],
                   audio_path: str | os.PathLike[str], opts: InferenceOptions, report: InferenceReport,
                   started: float, extra: dict[str, Any] | None = None) -> Path:
    """Write ``<out_dir>/infer_manifest.json`` atomically: the checkpoint, the decoding settings, the
    start and end times (``started``: ``time.time()`` at the start), the CSVs this run wrote, the
    recordings that failed, the stale CSVs removed, and the CSVs in the folder from earlier runs.
    ``extra``: more settings of the caller to record. Returns the path."""
    import json
    import time

    from seld import __version__
    from seld.io_utils import atomic_write_text

    def stamp(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))

    folder = Path(out_dir)
    written = {p.name for p in report.written}
    record = {
        "textseld_version": __version__,
        "checkpoint": str(Path(checkpoint).resolve()),
        "audio": str(Path(audio_path).resolve()),
        "threshold": opts.threshold,
        "merge_deg": opts.merge_deg,
        "resample": opts.resample,
        "mono_to_stereo": opts.mono_to_stereo,
        **(extra or {}),
        "started": stamp(started),
        "finished": stamp(time.time()),
        "written": sorted(written),
        "failed": [{"recording": str(wav), "reason": reason} for wav, reason in report.failed],
        "removed_stale": sorted(p.name for p in report.removed),
        "from_earlier_runs": earlier_csvs(folder, report),
    }
    path = folder / MANIFEST_FILE
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def earlier_csvs(out_dir: str | os.PathLike[str], report: InferenceReport) -> list[str]:
    """Names of the CSVs in ``out_dir`` that this run did not write (left by earlier runs)."""
    written = {p.name for p in report.written}
    return sorted(p.name for p in Path(out_dir).glob("*.csv") if p.name not in written)


def set_threads(num_threads: Optional[int]) -> None:
    """torch CPU threads for inference (None: leave torch's default)."""
    if num_threads is not None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        torch.set_num_threads(num_threads)
