"""Tests of ``seld evaluate``: the printed table, the JSON, and what was not scored (issue 31)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from seld.data.metadata import write_metadata_csv
from seld.errors import DataError
from seld.metrics import MetricConfig, evaluate_folders
from tests.metrics.clips import ev, score, write_dataset


def run_evaluate(argv: list[str]) -> int:
    import argparse

    from seld.commands import evaluate

    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    return evaluate.run(parser.parse_args(argv))


@pytest.mark.parametrize("strict", [False, True])
def test_evaluate_command_prints_table_and_writes_json(tmp_path, capsys, strict):
    ref_root, pred_dir, clips = write_dataset(tmp_path, np.random.default_rng(7))
    out_json = tmp_path / "out" / "scores.json"
    argv = ["--pred", str(pred_dir), "--ref", str(ref_root), "--json", str(out_json), "--jackknife"]
    assert run_evaluate(argv + (["--strict"] if strict else [])) == 0
    printed = capsys.readouterr().out
    mode = "strict" if strict else "dcase2025"
    assert f"({mode} mode, macro average" in printed and "Water tap, faucet" in printed
    payload = json.loads(out_json.read_text())
    want = evaluate_folders(pred_dir, ref_root, MetricConfig(mode=mode))
    assert payload["mode"] == mode
    assert payload["F"] == pytest.approx(want.F) and 0 < payload["F"] < 1
    assert payload["DOAE"] == pytest.approx(want.DOAE) and payload["RDE"] == pytest.approx(want.RDE)
    assert f"{100 * want.F:6.2f} %" in printed
    assert payload["classwise"]["Female speech, woman speaking"]["TP"] == int(want.TP[0])
    low, high = payload["jackknife"]["F"]["ci"]
    assert low < high


def test_evaluate_command_missing_folder_is_data_error(tmp_path):
    with pytest.raises(DataError, match="reference folder .* does not exist"):
        run_evaluate(["--pred", str(tmp_path), "--ref", str(tmp_path / "missing")])


# --- what was not scored is said (issue 31) -----------------------------------------------------


def test_missing_predictions_are_counted_in_the_summary_and_a_warning(tmp_path, capsys):
    # write_dataset leaves clip 0 without a prediction: 7 references, 6 predictions
    ref_root, pred_dir, _ = write_dataset(tmp_path, np.random.default_rng(7))
    assert run_evaluate(["--pred", str(pred_dir), "--ref", str(ref_root)]) == 0  # exit status as before
    captured = capsys.readouterr()
    assert "clips scored: 6 of 7 references (1 without a prediction: not scored, as the official code does)" \
           in captured.out
    assert captured.err.splitlines()[0] == (f"warning: 1 of 7 reference clip(s) have no prediction CSV in {pred_dir} and were "
                                    "not scored (the official dcase2025 behaviour); --strict counts them as misses")
    assert run_evaluate(["--pred", str(pred_dir), "--ref", str(ref_root), "--strict"]) == 0
    captured = capsys.readouterr()
    assert "references without prediction: 1 (counted as misses)" in captured.out
    assert "no prediction CSV" not in captured.err


def test_predicted_frames_past_the_clips_end_are_counted_and_not_scored(tmp_path, capsys):
    # the official code scores frames 0 .. F-1 of the reference and ignores the rest: same scores
    # with and without the rows past the end, now counted and warned about (before: silent)
    ref = [ev(f, 3, 20.0) for f in range(0, 40, 2)]
    pred = [ev(f, 3, 22.0) for f in range(0, 40, 2)]
    late = [ev(50, 3, 22.0), ev(57, 1, -10.0), ev(49, 3, 22.0)]  # 49 is the clip's last frame: not past the end
    write_metadata_csv(tmp_path / "ref" / "a.csv", ref)
    write_metadata_csv(tmp_path / "clean" / "a.csv", pred)
    write_metadata_csv(tmp_path / "late" / "a.csv", pred + late)
    for mode in ("dcase2025", "strict"):
        clean = evaluate_folders(tmp_path / "clean", tmp_path / "ref", MetricConfig(mode=mode))
        with_late = evaluate_folders(tmp_path / "late", tmp_path / "ref", MetricConfig(mode=mode))
        assert (clean.n_pred_past_end, with_late.n_pred_past_end) == (0, 2)
        assert with_late.to_dict()["n_pred_past_end"] == 2
        if mode == "dcase2025":  # frame 49 lies after the last scored frame (38) in this mode only
            assert with_late.F == clean.F and with_late.DOAE == clean.DOAE
    long_ref = ref + [ev(60, 3, 20.0)]  # a longer recording: its frames 50..60 are inside it
    assert score(pred + late, long_ref, mode="dcase2025", num_frames=50).n_pred_past_end == 0
    assert run_evaluate(["--pred", str(tmp_path / "late"), "--ref", str(tmp_path / "ref")]) == 0
    captured = capsys.readouterr()
    assert "predicted events past their clip's end: 2 (not scored)" in captured.out
    assert f"warning: 2 predicted event(s) in {tmp_path / 'late'} lie past their clip's end (frame >= 50" in captured.err
