"""The HDF5 layout of the feature files: round trips, the format version and its refusal, one spelling."""
from __future__ import annotations

import ast
from pathlib import Path

import h5py
import numpy as np
import pytest

import seld
from seld.data import h5schema
from seld.errors import DataError

CHANNELS = ["logmel_l", "ild"]
PARAMS = '{"mel": {"n_mels": 8}}'


def _clip(path: Path, seed: int = 0, clip_id: str = "fold3_room1_mix001") -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    feats = {c: rng.standard_normal((10, 8)) for c in CHANNELS}  # float64 in: stored as float32
    target = np.zeros(h5schema.target_shape(2))
    target[1, 0, 0, 3] = 1.0
    h5schema.write_clip(path, CHANNELS, feats, target, clip_id=clip_id, split="dev-train-synth",
                        audio_path=f"/data/{clip_id}.wav", has_labels=True, feature_params=PARAMS)
    return feats, target


def test_clip_file_round_trips_and_carries_the_format_version(tmp_path: Path) -> None:
    path = tmp_path / "clip.h5"
    feats, target = _clip(path)
    assert h5schema.clip_problem(path, CHANNELS, (10, 8), 2, PARAMS) is None
    stacked, read_target, clip_id, audio = h5schema.read_clip(path, CHANNELS[::-1])
    assert stacked.shape == (2, 10, 8) and stacked.dtype == np.float32
    np.testing.assert_array_equal(stacked[0], feats["ild"].astype(np.float32))
    np.testing.assert_array_equal(read_target, target.astype(np.float32))
    assert (clip_id, audio) == ("fold3_room1_mix001", "/data/fold3_room1_mix001.wav")
    with h5py.File(path, "r") as f:
        assert f.attrs[h5schema.ATTR_FORMAT_VERSION] == h5schema.FORMAT_VERSION == 1
        assert list(f.attrs[h5schema.ATTR_CHANNELS]) == CHANNELS and bool(f.attrs[h5schema.ATTR_COMPLETE])
    # what makes a clip file stale, each named
    assert h5schema.clip_problem(path, CHANNELS, (10, 8), 2, '{"mel": {"n_mels": 64}}') == \
        "computed with other feature settings"
    assert "channel 'ivy' missing" in h5schema.clip_problem(path, [*CHANNELS, "ivy"], (10, 8), 2, PARAMS)
    assert "channel 'logmel_l' missing or not float32 (12, 8)" in h5schema.clip_problem(path, CHANNELS, (12, 8), 2,
                                                                                         PARAMS)
    assert h5schema.clip_problem(tmp_path / "none.h5", CHANNELS, (10, 8), 2, PARAMS) == "no file"


def test_clip_file_of_another_version_is_stale_and_one_without_a_version_is_version_1(tmp_path: Path) -> None:
    path = tmp_path / "clip.h5"
    _clip(path)
    with h5py.File(path, "a") as f:
        del f.attrs[h5schema.ATTR_FORMAT_VERSION]  # as written before the attribute existed
    assert h5schema.clip_problem(path, CHANNELS, (10, 8), 2, PARAMS) is None
    with h5py.File(path, "a") as f:
        f.attrs[h5schema.ATTR_FORMAT_VERSION] = 2
    problem = h5schema.clip_problem(path, CHANNELS, (10, 8), 2, PARAMS)
    assert problem == ("feature file format version 2, this textseld reads version 1; re-extract the features "
                       "with `seld features --config <feature config>` (it rewrites them)")
    with h5py.File(path, "a") as f:
        del f.attrs[h5schema.ATTR_COMPLETE]
        f.attrs[h5schema.ATTR_FORMAT_VERSION] = 1
    assert h5schema.clip_problem(path, CHANNELS, (10, 8), 2, PARAMS) == "incomplete (not marked complete)"


def _merged(path: Path, version: int | None = h5schema.FORMAT_VERSION) -> list[Path]:
    clips = []
    for i in range(3):
        clips.append(path.parent / f"clip{i}.h5")
        _clip(clips[-1], seed=i, clip_id=f"fold3_room1_mix00{i}")
    with h5py.File(path, "w") as f:
        feats, targets = h5schema.create_merged(f, 3, CHANNELS, (10, 8), h5schema.target_shape(2))
        ids, audio = [], []
        for i, clip in enumerate(clips):
            feats[i], targets[i], clip_id, audio_path = h5schema.read_clip(clip, CHANNELS)
            ids.append(clip_id)
            audio.append(audio_path)
        h5schema.finish_merged(f, ids, audio, CHANNELS, "dev-train-synth", PARAMS, 2)
        if version is None:
            del f.attrs[h5schema.ATTR_FORMAT_VERSION]
        else:
            f.attrs[h5schema.ATTR_FORMAT_VERSION] = version
    return clips


def test_merged_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "dev-train-synth.h5"
    clips = _merged(path)
    with h5schema.open_merged(path) as f:
        assert h5schema.merged_channels(f) == CHANNELS
        assert h5schema.merged_clip_ids(f) == ["fold3_room1_mix000", "fold3_room1_mix001", "fold3_room1_mix002"]
        feats = f[h5schema.FEATURES]
        assert feats.shape == (3, 2, 10, 8) and feats.dtype == np.float32 and feats.chunks == (1, 2, 10, 8)
        assert f[h5schema.TARGETS].shape == (3, 2, 6, 4, 13) and f[h5schema.TARGETS].chunks == (1, 2, 6, 4, 13)
        assert f[h5schema.AUDIO_PATHS][1].decode() == "/data/fold3_room1_mix001.wav"
        assert f.attrs[h5schema.ATTR_LABEL_FRAMES] == 2 and f.attrs[h5schema.ATTR_FEATURE_PARAMS] == PARAMS
        assert f.attrs[h5schema.ATTR_FORMAT_VERSION] == h5schema.FORMAT_VERSION
        for i, clip in enumerate(clips):
            np.testing.assert_array_equal(feats[i], h5schema.read_clip(clip, CHANNELS)[0])


def test_merged_file_of_another_version_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dev-train-synth.h5"
    _merged(path, version=7)
    with pytest.raises(DataError) as err:
        h5schema.open_merged(path)
    assert str(err.value) == (f"{path}: feature file format version 7, this textseld reads version 1; re-extract the "
                              "features with `seld features --config <feature config>` (it rewrites them)")
    _merged(path, version=None)  # written before the attribute existed: the layout of version 1
    with h5schema.open_merged(path) as f:
        assert h5schema.merged_channels(f) == CHANNELS
    with h5py.File(path, "a") as f:
        del f[h5schema.CLIP_IDS]
    with pytest.raises(DataError, match=r"dev-train-synth.h5: missing dataset 'clip_ids' \(not a merged feature"):
        h5schema.open_merged(path)
    with pytest.raises(DataError, match=r"absent.h5: cannot open merged feature file"):
        h5schema.open_merged(tmp_path / "absent.h5")


def test_layout_names_are_spelled_only_in_the_schema() -> None:
    # the writer, the merger and the readers name datasets and attributes through h5schema
    names = {h5schema.TARGETS, h5schema.CLIP_IDS, h5schema.AUDIO_PATHS, h5schema.ATTR_FEATURE_PARAMS,
             h5schema.ATTR_FORMAT_VERSION, h5schema.ATTR_COMPLETE, h5schema.ATTR_HAS_LABELS,
             h5schema.ATTR_LABEL_FRAMES, h5schema.ATTR_AUDIO_PATH, h5schema.ATTR_SPLIT}
    root = Path(seld.__file__).parent
    for module in ("features/extract.py", "features/merge.py", "features/normalization.py", "data/dataset.py"):
        tree = ast.parse((root / module).read_text(encoding="utf-8"))
        literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not literals & names, f"seld/{module} spells {sorted(literals & names)}"
