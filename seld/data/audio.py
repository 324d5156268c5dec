"""Loading and validating DCASE2025 stereo audio (2 channels, 24 kHz, 5 s)."""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import soundfile as sf

from seld.constants import CLIP_SAMPLES, NUM_CHANNELS, SAMPLE_RATE
from seld.errors import DataError


@dataclass
class AudioConfig:
    """How strictly audio files are checked; by default every deviation is an error."""

    sample_rate: int = SAMPLE_RATE
    clip_samples: int = CLIP_SAMPLES
    """Expected length; 0 accepts any length (inference on long recordings)."""
    resample: bool = False
    """Resample a file of another rate instead of rejecting it."""
    pad_or_trim: bool = False
    """Zero-pad a short file / trim a long one to ``clip_samples`` instead of rejecting it."""
    mono_to_stereo: bool = False
    """Duplicate a mono file to two channels instead of rejecting it."""


CONFIG_HINTS: dict[str, str] = {
    "mono_to_stereo": "set audio.mono_to_stereo: true",
    "resample": "set audio.resample: true",
    "pad_or_trim": "set audio.pad_or_trim: true",
}
"""How a config-driven command (``seld features``) asks for each fix; commands with flags pass their own."""


def _wav_data_shortfall(p: Path) -> Optional[tuple[int, int]]:
    """``(declared, present)`` bytes of a RIFF/WAVE file's ``data`` chunk when the file holds fewer
    bytes than its header declares (a copy or download cut short); None otherwise or for other formats.

    libsndfile reads such a file without complaint, returning only the samples present.
    """
    try:
        with open(p, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None  # RF64, W64 or not a WAV: libsndfile's own checks apply
            size = p.stat().st_size
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None  # no data chunk: libsndfile reports the file as unreadable
                cid, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"data":
                    present = size - f.tell()
                    # 0 and 0xFFFFFFFF: a header written before the length was known (streaming writers)
                    if length not in (0, 0xFFFFFFFF) and present < length:
                        return length, present
                    return None
                f.seek(length + (length & 1), os.SEEK_CUR)
    except OSError:
        return None  # soundfile reports unreadable files with its own message


def load_stereo(
    path: str | os.PathLike[str], cfg: AudioConfig | None = None, hints: Optional[Mapping[str, str]] = None
) -> np.ndarray:
    """Read a stereo WAV as float32 ``(2, samples)`` and validate it against ``cfg``.

    Raises DataError naming the file for an unreadable file, a WAV whose data is shorter than its
    header says, a wrong channel count, a wrong sample rate or a wrong length, unless ``cfg``
    asks to fix that deviation. ``hints`` (keys ``mono_to_stereo``, ``resample``,
    ``pad_or_trim``) say how the calling command enables each fix; default :data:`CONFIG_HINTS`.
    """
    cfg = cfg or AudioConfig()
    hint = {**CONFIG_HINTS, **(hints or {})}
    p = Path(path)
    shortfall = _wav_data_shortfall(p)
    if shortfall is not None:
        declared, present = shortfall
        raise DataError(
            f"{p}: truncated WAV file: its header declares {declared} bytes of audio data but the file "
            f"holds {present} (the file was cut short; copy it again)"
        )
    try:
        audio, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        raise DataError(f"{p}: unreadable audio file ({exc})") from exc
    audio = audio.T  # (channels, samples)
    if audio.shape[0] == 1 and cfg.mono_to_stereo:
        audio = np.repeat(audio, NUM_CHANNELS, axis=0)
    if audio.shape[0] != NUM_CHANNELS:
        raise DataError(
            f"{p}: expected {NUM_CHANNELS} channels (stereo L/R), got {audio.shape[0]}"
            + ("" if audio.shape[0] != 1 else f"; {hint['mono_to_stereo']} to duplicate mono files")
        )
    if audio.shape[1] == 0:
        raise DataError(f"{p}: empty recording (0 samples)")
    if rate != cfg.sample_rate:
        if not cfg.resample:
            raise DataError(
                f"{p}: sample rate {rate} Hz, expected {cfg.sample_rate} Hz; {hint['resample']} to resample"
            )
        import librosa

        audio = librosa.resample(audio, orig_sr=rate, target_sr=cfg.sample_rate, axis=-1)
        audio = np.ascontiguousarray(audio, dtype=np.float32)
    if cfg.clip_samples and audio.shape[1] != cfg.clip_samples:
        if not cfg.pad_or_trim:
            kind = "truncated" if audio.shape[1] < cfg.clip_samples else "too long"
            raise DataError(
                f"{p}: {kind}: {audio.shape[1]} samples, expected {cfg.clip_samples}; "
                f"{hint['pad_or_trim']} to pad or trim"
            )
        if audio.shape[1] < cfg.clip_samples:
            audio = np.pad(audio, ((0, 0), (0, cfg.clip_samples - audio.shape[1])))
        else:
            audio = audio[:, : cfg.clip_samples]
    if not np.all(np.isfinite(audio)):
        raise DataError(f"{p}: audio contains NaN or infinite samples")
    return audio


def write_stereo(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write float ``(2, samples)`` audio as 16-bit PCM WAV atomically."""
    from seld.io_utils import atomic_path

    p = Path(path)
    if audio.ndim != 2 or audio.shape[0] != NUM_CHANNELS:
        raise ValueError(f"audio must be (2, samples), got {audio.shape}")
    with atomic_path(p) as tmp:
        sf.write(str(tmp), audio.T, sample_rate, subtype="PCM_16", format="WAV")
    return p
