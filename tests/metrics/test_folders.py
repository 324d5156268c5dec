"""Tests of seld.metrics.folders: folders of CSVs and model outputs scored like in-memory clips."""
from __future__ import annotations

import json

import numpy as np
import pytest

from seld.data.metadata import write_metadata_csv
from seld.errors import DataError
from seld.metrics import MetricConfig, evaluate_folders, format_table, score_outputs
from tests.metrics.clips import loop_reference, random_clip, write_dataset


@pytest.mark.parametrize("mode", ["dcase2025", "strict"])
def test_evaluate_folders_matches_in_memory_scoring(tmp_path, mode):
    ref_root, pred_dir, clips = write_dataset(tmp_path, np.random.default_rng(4))
    cfg = MetricConfig(mode=mode)
    got = evaluate_folders(pred_dir, ref_root, cfg)
    want = loop_reference(list(clips.values()), cfg)
    for key in ("TP", "FP", "FP_spatial", "FN"):
        np.testing.assert_array_equal(getattr(got, key), want[key], err_msg=key)
    assert got.F == pytest.approx(want["F"])
    assert got.n_missing_prediction == 1
    assert got.n_clips == (len(clips) - 1 if mode == "dcase2025" else len(clips))
    payload = json.loads(json.dumps(got.to_dict(), allow_nan=False))
    assert payload["mode"] == mode and payload["F"] == pytest.approx(got.F)
    assert set(payload["classwise"]) >= {"Clapping", "Knock"}
    table = format_table(got)
    assert f"{mode} mode" in table and "Knock" in table


def test_evaluate_folders_errors(tmp_path):
    ref_root, pred_dir, _ = write_dataset(tmp_path, np.random.default_rng(5), n=2)
    with pytest.raises(DataError, match="does not exist"):
        evaluate_folders(tmp_path / "nope", ref_root)
    write_metadata_csv(pred_dir / "fold4_unknown.csv", [])
    with pytest.raises(DataError, match="fold4_unknown.csv"):
        evaluate_folders(pred_dir, ref_root)
    write_metadata_csv(ref_root / "dev-test-sony" / "fold4_room1_empty.csv", [])
    with pytest.raises(DataError, match="appears twice"):
        evaluate_folders(pred_dir, ref_root)


def test_score_outputs_equals_decode_write_evaluate(tmp_path):
    from seld.decoding import write_prediction_csvs

    rng = np.random.default_rng(6)
    outputs, refs = {}, {}
    for i in range(5):
        out = rng.uniform(-1, 1, size=(50, 117)).astype(np.float32)
        out.reshape(50, 3, 3, 13)[:, :, 2] = rng.uniform(-0.5, 4, size=(50, 3, 13))  # distances (m)
        name = f"clip{i}"
        outputs[name] = out
        refs[name] = random_clip(rng)[1]
        write_metadata_csv(tmp_path / "ref" / f"{name}.csv", refs[name])
    write_prediction_csvs(tmp_path / "pred", list(outputs), list(outputs.values()))
    for mode in ("dcase2025", "strict"):
        cfg = MetricConfig(mode=mode)
        a = score_outputs(outputs, refs, cfg)
        b = evaluate_folders(tmp_path / "pred", tmp_path / "ref", cfg)
        assert a.n_pairs.sum() > 50
        for key in ("TP", "FP", "FP_spatial", "FN"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
        for key in ("F", "DOAE", "RDE"):
            assert getattr(a, key) == pytest.approx(getattr(b, key), rel=1e-12)
