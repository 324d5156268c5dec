"""The DCASE2025 stereo dataset layout: finding clips by split folder and fold prefix.

```
<root>/stereo_dev/<split>/<stem>.wav        split e.g. dev-train-sony, dev-test-tau, dev-train-synth
<root>/metadata_dev/<split>/<stem>.csv
<root>/stereo_eval/eval/<stem>.wav          (no labels)
```
Stems look like ``fold3_room21_mix013_deg123_start0456``; the fold is the number after "fold".
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from seld.errors import DataError

_FOLD_RE = re.compile(r"^fold(\d+)_")


@dataclass(frozen=True)
class Clip:
    """One audio clip of a dataset, with its label file when it has one."""

    clip_id: str
    """File stem, e.g. ``fold4_room2_mix001``."""
    split: str
    wav_path: Path
    csv_path: Path | None
    fold: int | None


def parse_fold(stem: str) -> int | None:
    """The fold number of a DCASE file stem (``fold3_...`` -> 3), or None."""
    m = _FOLD_RE.match(stem)
    return int(m.group(1)) if m else None


def audio_dir(root: str | os.PathLike[str], split: str) -> Path:
    """Folder of a split's audio: ``stereo_eval/eval`` for 'eval', else ``stereo_dev/<split>``."""
    root = Path(root)
    return root / "stereo_eval" / "eval" if split == "eval" else root / "stereo_dev" / split


def metadata_dir(root: str | os.PathLike[str], split: str) -> Path:
    return Path(root) / "metadata_dev" / split


def list_splits(root: str | os.PathLike[str]) -> list[str]:
    """Split folders under ``<root>/stereo_dev`` (sorted)."""
    d = Path(root) / "stereo_dev"
    return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []


def discover_clips(
    root: str | os.PathLike[str],
    splits: list[str] | None = None,
    folds: list[int] | None = None,
    require_labels: bool = True,
) -> list[Clip]:
    """All clips of ``splits`` (default: every split under stereo_dev) whose fold is in ``folds``.

    Raises DataError if the root or a named split is missing, or (when ``require_labels``) a
    clip of a labelled split has no CSV.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset root not found: {root}")
    names = splits if splits is not None else list_splits(root)
    if not names:
        raise DataError(f"{root}: no split folders under stereo_dev/")
    clips: list[Clip] = []
    for split in names:
        adir = audio_dir(root, split)
        if not adir.is_dir():
            raise DataError(f"{root}: split '{split}' not found (expected folder {adir})")
        mdir = metadata_dir(root, split)
        for wav in sorted(adir.glob("*.wav")):
            fold = parse_fold(wav.stem)
            if folds is not None and fold not in folds:
                continue
            csv = mdir / f"{wav.stem}.csv"
            if not csv.is_file():
                if require_labels and split != "eval":
                    raise DataError(f"{wav}: no label file {csv}")
                csv_path = None
            else:
                csv_path = csv
            clips.append(Clip(wav.stem, split, wav, csv_path, fold))
    return clips
