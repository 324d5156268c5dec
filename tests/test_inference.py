"""Inference on recordings of any length: 5 s windows, frame counts, parity with the training
features, audio checks, and the ``seld infer`` / ``seld embed`` commands end to end.

The models are tiny 2-step runs on the simulated set of ``tests/train/conftest.py`` (shared,
built once per session): the numbers checked here do not depend on how well they learned.
"""
from __future__ import annotations

import copy
import dataclasses
import re

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch

from seld.cli import main
from seld.constants import CLIP_SAMPLES, SAMPLE_RATE, SYNTH_TRAIN_SPLIT
from seld.data.audio import AudioConfig, load_stereo, write_stereo
from seld.data.dataset import SeldDataset
from seld.data.metadata import read_metadata_csv
from seld.embeddings import export_embeddings
from seld.errors import DataError
from seld.inference import (
    InferenceOptions,
    infer_to_csv,
    predict_recording,
    predict_recordings,
    split_windows,
)
from seld.tasks.loading import load_task
from tests.train.conftest import build_sim_set, finetuned_checkpoint, pretrained_checkpoint, single_thread

ALL_FRAMES = InferenceOptions(threshold=0.0)
"""Every track with a non-zero (x, y) vector is active: every frame gets events."""


@pytest.fixture(autouse=True)
def _single_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return build_sim_set(tmp_path_factory)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_task(pretrained_checkpoint(tmp_path_factory))


@pytest.fixture(scope="module")
def clips(sim) -> list[np.ndarray]:
    """The first three training clips, stereo float32 ``(2, 120000)`` each."""
    return [load_stereo(p) for p in sim.wavs()[:3]]


def _frames(csv_path) -> set[int]:
    return {e.frame for e in read_metadata_csv(csv_path)}


def test_12_3_second_recording_gives_frames_0_to_122(model, clips, tmp_path):
    n = int(12.3 * SAMPLE_RATE)  # 295200 samples: 3 windows, the last one 2.3 s of audio
    audio = np.concatenate(clips, axis=1)[:, :n]
    out = predict_recording(model, audio, ALL_FRAMES)
    assert out.shape == (123, 117) and out.dtype == np.float32 and np.isfinite(out).all()
    write_stereo(tmp_path / "rec.wav", audio)
    (csv,) = infer_to_csv(model, tmp_path / "rec.wav", tmp_path / "out", ALL_FRAMES, progress=False).written
    assert csv == tmp_path / "out" / "rec.csv"
    frames = _frames(csv)
    assert min(frames) == 0 and max(frames) == 122 and frames == set(range(123))


def test_5_second_recording_gives_50_frames(model, sim, tmp_path):
    wav = sim.wavs()[0]
    assert sf.info(str(wav)).frames == CLIP_SAMPLES
    out = predict_recording(model, load_stereo(wav), ALL_FRAMES)
    assert out.shape == (50, 117)
    (csv,) = infer_to_csv(model, wav, tmp_path, ALL_FRAMES, progress=False).written
    assert _frames(csv) == set(range(50))


def test_windows_are_independent_and_stitched_in_order(model, clips):
    """Each 5 s window gets its own peak normalisation and WPE statistics, like a training clip."""
    a, b, c = clips
    tail = c[:, : int(2.3 * SAMPLE_RATE)]
    whole = predict_recording(model, np.concatenate([a, b, tail], axis=1))
    alone = [predict_recording(model, x) for x in (a, b, tail)]
    assert alone[2].shape == (23, 117)
    np.testing.assert_allclose(whole[:50], alone[0], atol=1e-5)
    np.testing.assert_allclose(whole[50:100], alone[1], atol=1e-5)
    np.testing.assert_allclose(whole[100:], alone[2], atol=1e-5)
    # changing the second window (here: 10x louder plus noise) leaves the first one's frames alone
    rng = np.random.default_rng(0)
    changed = np.concatenate([a, 10 * b + 0.1 * rng.standard_normal(b.shape).astype(np.float32)], axis=1)
    other = predict_recording(model, changed)
    np.testing.assert_allclose(other[:50], alone[0], atol=1e-5)
    assert np.abs(other[50:] - alone[1]).max() > 1e-3
    # one window per forward pass gives the same as eight
    np.testing.assert_allclose(predict_recording(model, np.concatenate([a, b], 1), InferenceOptions(batch_size=1)),
                               whole[:100], atol=1e-5)


def test_inference_matches_the_model_on_training_features(model, sim):
    """A 5 s WAV through inference = the model on that clip's merged feature file row (normalised)."""
    ds = SeldDataset(sim.features / f"{SYNTH_TRAIN_SPLIT}.h5", sim.features / "normalization.json", model.streams)
    for i in (0, 5):
        item = ds[i]
        wav = sim.data / "stereo_dev" / SYNTH_TRAIN_SPLIT / f"{item['clip_id']}.wav"
        with torch.no_grad():
            want = model.task.predict(*(item[k][None] for k in ("src", "doa", "dist")))[0].numpy()
        got = predict_recording(model, load_stereo(wav))
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_mono_and_48k_files_are_rejected_or_converted(model, clips, tmp_path):
    mono = tmp_path / "mono.wav"
    sf.write(str(mono), clips[0][0], SAMPLE_RATE, subtype="PCM_16")
    hi = tmp_path / "hi.wav"
    audio_48k = np.repeat(clips[0], 2, axis=1)  # 5 s at 48 kHz
    sf.write(str(hi), audio_48k.T, 48000, subtype="PCM_16")
    out = tmp_path / "csv"
    # the hints name the flags of seld infer / embed, not the config keys of seld features
    report = infer_to_csv(model, mono, out, progress=False)
    assert report.written == [] and len(report.failed) == 1
    assert re.fullmatch(r".*mono\.wav: expected 2 channels .*got 1; pass --mono-to-stereo to duplicate mono files",
                        report.failed[0][1])
    report = infer_to_csv(model, hi, out, progress=False)
    assert re.fullmatch(r".*hi\.wav: sample rate 48000 Hz, expected 24000 Hz; pass --resample to resample", report.failed[0][1])
    assert not list(out.glob("*.csv"))
    with pytest.raises(DataError, match=r"mono\.wav: .*; set audio\.mono_to_stereo: true to duplicate"):
        load_stereo(mono)  # what seld features says
    (csv,) = infer_to_csv(model, hi, out, InferenceOptions(threshold=0.0, resample=True), progress=False).written
    assert _frames(csv) == set(range(50))
    (csv,) = infer_to_csv(model, mono, out, InferenceOptions(threshold=0.0, mono_to_stereo=True), progress=False).written
    assert _frames(csv) == set(range(50))
    resampled = load_stereo(hi, AudioConfig(clip_samples=0, resample=True))
    assert resampled.shape == (2, CLIP_SAMPLES)


def test_empty_recording_is_a_data_error_naming_the_file(model, tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros((0, 2), dtype=np.float32), SAMPLE_RATE, subtype="PCM_16")
    report = infer_to_csv(model, empty, tmp_path / "csv", progress=False)
    assert re.search(r"empty\.wav: empty recording \(0 samples\)", report.failed[0][1]) and not report.written
    with pytest.raises(DataError, match=r"non-empty stereo recording .*\(2, 0\)"):
        predict_recording(model, np.zeros((2, 0), dtype=np.float32))


def test_normalisation_uses_the_training_std_floor(model):
    """Inference divides by max(std, MIN_STD) exactly as the training dataset does."""
    from seld.features.normalization import MIN_STD

    flat = dataclasses.replace(model, normalization={"c": {"mean": 1.0, "std": 1e-9}, "d": {"mean": -2.0, "std": 4.0}})
    x = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    out = flat.normalize({"c": x, "d": x, "raw": x})
    np.testing.assert_allclose(out["c"], (x - 1.0) / MIN_STD, rtol=1e-6)
    np.testing.assert_allclose(out["d"], (x + 2.0) / 4.0, rtol=1e-6)
    assert out["raw"] is x


def test_infer_cli_writes_one_csv_per_wav(model, clips, tmp_path, tmp_path_factory, capsys):
    audio_dir = tmp_path / "audio"
    write_stereo(audio_dir / "a.wav", clips[0])
    write_stereo(audio_dir / "b.wav", np.concatenate(clips, axis=1)[:, : int(7.25 * SAMPLE_RATE)])
    (audio_dir / "notes.txt").write_text("not audio")
    ckpt = pretrained_checkpoint(tmp_path_factory)
    rc = main(["infer", "--checkpoint", str(ckpt), "--audio", str(audio_dir), "--out", str(tmp_path / "csv"),
               "--threshold", "0", "--device", "cpu"])
    assert rc == 0
    assert "wrote 2 CSV file(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == [".seld.lock", "a.csv", "b.csv", "infer_manifest.json"]
    assert _frames(tmp_path / "csv" / "a.csv") == set(range(50))
    assert _frames(tmp_path / "csv" / "b.csv") == set(range(73))  # ceil(7.25 s / 0.1 s)
    assert main(["infer", "--checkpoint", str(ckpt), "--audio", str(tmp_path / "none"), "--out", str(tmp_path)]) == 1
    assert "audio path not found" in capsys.readouterr().err


def test_embed_cli_writes_one_dataset_per_recording(clips, tmp_path, tmp_path_factory, capsys):
    ckpt = finetuned_checkpoint(tmp_path_factory, "bert", "grep")
    audio_dir = tmp_path / "audio"
    write_stereo(audio_dir / "one.wav", clips[1])
    write_stereo(audio_dir / "two.wav", np.concatenate(clips[:2], axis=1)[:, : int(6.3 * SAMPLE_RATE)])
    out = tmp_path / "emb.h5"
    assert main(["embed", "--checkpoint", str(ckpt), "--audio", str(audio_dir), "--out", str(out), "--device", "cpu"]) == 0
    assert "wrote embeddings of 2 recording(s)" in capsys.readouterr().out
    ft = load_task(ckpt)
    width = ft.task.text_encoder.out_dim
    with h5py.File(out, "r") as f:
        assert sorted(k for k in f if isinstance(f[k], h5py.Dataset)) == ["one", "two"]  # + the outputs group
        assert f["one"].shape == (50, width) and f["two"].shape == (63, width)
        assert f["one"].dtype == np.float32 and f.attrs["frame_hop_seconds"] == pytest.approx(0.1)
        want = predict_recording(ft, load_stereo(audio_dir / "two.wav", AudioConfig(clip_samples=0)), embeddings=True)
        np.testing.assert_allclose(f["two"][()], want, atol=1e-6)
    # the fine-tuned model also gives SELD outputs, and a pre-training checkpoint has no embeddings
    assert predict_recording(ft, clips[1]).shape == (50, 117)
    pre = pretrained_checkpoint(tmp_path_factory)
    assert main(["embed", "--checkpoint", str(pre), "--audio", str(audio_dir), "--out", str(tmp_path / "x.h5")]) == 1
    assert "fine-tuned checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
    with pytest.raises(DataError, match="fine-tuned"):
        export_embeddings(load_task(pre), audio_dir, tmp_path / "y.h5", progress=False)


# ----------------------------------------------------------------------------- batching across files
@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """The tiny RCC-BERT-GREP fine-tune, its head scaled so that it predicts many events."""
    ft = load_task(finetuned_checkpoint(tmp_path_factory, "bert", "grep"))
    last = [m for m in ft.task.head.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(40.0)
        last.bias.mul_(40.0)
    return ft


def test_windows_batched_across_files_equal_each_window_alone(finetuned, clips):
    """Batches of 3 windows straddle files of 1, 2, 3 and 1 windows; each window alone is the reference."""
    a, b, c = clips
    recs = {
        "five": a,
        "seven": np.concatenate([b, c], 1)[:, : int(7.25 * SAMPLE_RATE)],
        "twelve": np.concatenate([c, a, b], 1)[:, : int(12.3 * SAMPLE_RATE)],
        "two": b[:, : 2 * SAMPLE_RATE],
    }
    for embeddings, prefetch in ((False, True), (True, True), (False, False)):
        opts = InferenceOptions(batch_size=3, prefetch=prefetch)  # prefetch: features of the next batch in a thread
        got = list(predict_recordings(finetuned, recs.items(), opts, embeddings=embeddings))
        assert [k for k, _ in got] == list(recs)
        for (key, out), audio in zip(got, recs.values()):
            windows, frames = split_windows(audio)
            alone = np.concatenate([
                predict_recording(finetuned, w, InferenceOptions(batch_size=1), embeddings=embeddings) for w in windows
            ])[:frames]
            assert out.shape == alone.shape and out.shape[0] == {"five": 50, "seven": 73, "twelve": 123, "two": 20}[key]
            np.testing.assert_allclose(out, alone, atol=1e-5, rtol=0)
    assert np.abs(got[0][1]).max() > 0.1  # real numbers, not zeros


def test_folder_csvs_equal_the_per_file_path(finetuned, clips, tmp_path):
    """A folder through the batched path gives the CSVs of running each file on its own."""
    audio_dir = tmp_path / "audio"
    write_stereo(audio_dir / "a.wav", clips[0])
    write_stereo(audio_dir / "b.wav", np.concatenate(clips, axis=1)[:, : int(11.1 * SAMPLE_RATE)])
    write_stereo(audio_dir / "c.wav", clips[2][:, : SAMPLE_RATE])
    report = infer_to_csv(finetuned, audio_dir, tmp_path / "batched", InferenceOptions(batch_size=4), progress=False)
    assert report.ok and [p.name for p in report.written] == ["a.csv", "b.csv", "c.csv"]
    n_events = 0
    for wav in sorted(audio_dir.glob("*.wav")):
        (alone,) = infer_to_csv(finetuned, wav, tmp_path / "alone", InferenceOptions(batch_size=1), progress=False).written
        batched = tmp_path / "batched" / alone.name
        assert batched.read_text() == alone.read_text()
        n_events += len(read_metadata_csv(alone))
    assert n_events > 100


# ----------------------------------------------------------------------------- bad files in a folder
def test_infer_folder_processes_every_file_and_reports_each_bad_one(model, clips, tmp_path, tmp_path_factory, capsys):
    audio_dir = tmp_path / "audio"
    write_stereo(audio_dir / "a_good.wav", clips[0])
    whole = (audio_dir / "a_good.wav").read_bytes()
    (audio_dir / "b_cut.wav").write_bytes(whole[: len(whole) // 2])  # header says 5 s, half the data is there
    sf.write(str(audio_dir / "c_mono.wav"), clips[1][0], SAMPLE_RATE, subtype="PCM_16")
    (audio_dir / "d_text.wav").write_text("not audio at all")
    write_stereo(audio_dir / "e_good.wav", clips[2][:, : 3 * SAMPLE_RATE])
    out = tmp_path / "csv"
    ckpt = pretrained_checkpoint(tmp_path_factory)
    rc = main(["infer", "--checkpoint", str(ckpt), "--audio", str(audio_dir), "--out", str(out), "--device", "cpu",
               "--batch-size", "2", "--num-threads", "1"])
    captured = capsys.readouterr()
    assert rc == 1
    assert sorted(p.name for p in out.glob("*.csv")) == ["a_good.csv", "e_good.csv"]  # no CSV for a bad file
    assert _frames(out / "e_good.csv") <= set(range(30))
    err = captured.err
    assert re.search(r"b_cut\.wav: truncated WAV file: its header declares 480000 bytes of audio data but the file "
                     r"holds 239978", err)
    assert re.search(r"c_mono\.wav: expected 2 channels .*got 1; pass --mono-to-stereo", err)
    assert re.search(r"d_text\.wav: unreadable audio file", err)
    assert "3 of 5 recording(s) failed" in err
    assert "wrote 2 CSV file(s)" in captured.out


def test_a_failed_recording_removes_its_stale_csv_and_the_manifest_says_what_ran(model, clips, tmp_path,
                                                                                 tmp_path_factory, capsys):
    # before: a CSV of an earlier run stayed when its recording now failed (and seld evaluate scored
    # it), and nothing said which run with which settings wrote the CSVs of a folder
    import json

    audio_dir, out = tmp_path / "audio", tmp_path / "csv"
    write_stereo(audio_dir / "a.wav", clips[0])
    write_stereo(audio_dir / "b.wav", clips[1])
    ckpt = pretrained_checkpoint(tmp_path_factory)
    args = ["infer", "--checkpoint", str(ckpt), "--audio", str(audio_dir), "--out", str(out), "--device", "cpu"]
    assert main([*args, "--threshold", "0"]) == 0
    (out / "old.csv").write_text((out / "a.csv").read_text())  # a CSV of some other, earlier run
    (audio_dir / "b.wav").write_text("broken since")
    capsys.readouterr()
    assert main([*args, "--threshold", "0.3"]) == 1
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.csv")) == ["a.csv", "old.csv"]  # b.csv of the first run is gone
    assert "removed 1 stale CSV(s) of an earlier run whose recording failed now: b.csv" in printed
    assert "1 other CSV(s) there are from earlier runs" in printed
    manifest = json.loads((out / "infer_manifest.json").read_text())
    assert manifest["checkpoint"] == str(ckpt.resolve()) and manifest["threshold"] == 0.3
    assert manifest["written"] == ["a.csv"] and manifest["removed_stale"] == ["b.csv"]
    assert manifest["from_earlier_runs"] == ["old.csv"]
    assert [f["recording"] for f in manifest["failed"]] == [str(audio_dir / "b.wav")]
    assert "unreadable audio file" in manifest["failed"][0]["reason"]
    assert manifest["started"] <= manifest["finished"]


def test_a_second_infer_into_a_folder_in_use_stops_naming_the_first(model, clips, tmp_path, tmp_path_factory, capsys):
    import os
    import socket
    import subprocess
    import sys

    from tests.scripts import child_pythonpath

    write_stereo(tmp_path / "a.wav", clips[0])
    hold = "import sys, time\nfrom seld.locks import FolderLock\nwith FolderLock(sys.argv[1], 'seld infer'):\n" \
           "    print('locked', flush=True)\n    time.sleep(120)\n"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / "csv")], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=child_pythonpath()))
    try:
        assert holder.stdout.readline().strip() == "locked"
        rc = main(["infer", "--checkpoint", str(pretrained_checkpoint(tmp_path_factory)), "--audio",
                   str(tmp_path / "a.wav"), "--out", str(tmp_path / "csv"), "--device", "cpu"])
        assert rc == 1
        err = capsys.readouterr().err
        assert f"seld infer: error: {tmp_path / 'csv'} is in use by another run (pid {holder.pid} on host " \
               f"{socket.gethostname()}, started " in err and "seld infer)" in err
        assert not list((tmp_path / "csv").glob("*.csv")) and not (tmp_path / "csv" / "infer_manifest.json").exists()
    finally:
        holder.kill()
        holder.wait()


def test_truncated_wav_is_an_error_for_feature_extraction_too(clips, tmp_path):
    write_stereo(tmp_path / "full.wav", clips[0])
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:-1000])
    with pytest.raises(DataError, match=r"cut\.wav: truncated WAV file: its header declares 480000 bytes .* holds 479000"):
        load_stereo(tmp_path / "cut.wav")  # the 5 s check of seld features would not see a nearly whole file
    with pytest.raises(DataError, match=r"cut\.wav: truncated WAV file"):
        load_stereo(tmp_path / "cut.wav", AudioConfig(clip_samples=0))
    # a WAV with a chunk after the data is not truncated
    (tmp_path / "tail.wav").write_bytes(data + b"LIST" + (4).to_bytes(4, "little") + b"INFO")
    np.testing.assert_array_equal(load_stereo(tmp_path / "tail.wav"), load_stereo(tmp_path / "full.wav"))


def test_embed_folder_with_a_bad_file_writes_the_good_ones_and_fails(finetuned, clips, tmp_path, tmp_path_factory, capsys):
    ckpt = finetuned_checkpoint(tmp_path_factory, "bert", "grep")
    audio_dir = tmp_path / "audio"
    write_stereo(audio_dir / "good.wav", clips[0])
    sf.write(str(audio_dir / "hi.wav"), np.repeat(clips[1], 2, axis=1).T, 48000, subtype="PCM_16")
    out = tmp_path / "emb.h5"
    assert main(["embed", "--checkpoint", str(ckpt), "--audio", str(audio_dir), "--out", str(out), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "hi.wav: sample rate 48000 Hz, expected 24000 Hz; pass --resample to resample" in err
    with h5py.File(out, "r") as f:
        assert sorted(k for k in f if isinstance(f[k], h5py.Dataset)) == ["good"] and sorted(f["outputs"]) == ["good"]
    # nothing readable: no file at all
    only_bad = tmp_path / "bad"
    (only_bad / "x.wav").parent.mkdir()
    (only_bad / "x.wav").write_text("junk")
    assert main(["embed", "--checkpoint", str(ckpt), "--audio", str(only_bad), "--out", str(tmp_path / "none.h5")]) == 1
    assert not (tmp_path / "none.h5").exists() and not list(tmp_path.glob(".none.h5.*"))


# ----------------------------------------------------------------------------- not a checkpoint
def test_a_non_checkpoint_file_is_named_and_unsafe_loading_never_suggested(clips, tmp_path, tmp_path_factory, capsys):
    write_stereo(tmp_path / "a.wav", clips[0])
    real = pretrained_checkpoint(tmp_path_factory).read_bytes()
    (tmp_path / "cut.pt").write_bytes(real[: len(real) // 2])
    (tmp_path / "notes.txt").write_text("hello")
    torch.save({"model": {}, "array": np.zeros(3)}, tmp_path / "numpy.pt")  # a pickle with a numpy object
    for name in ("cut.pt", "notes.txt", "numpy.pt", "a.wav"):
        rc = main(["infer", "--checkpoint", str(tmp_path / name), "--audio", str(tmp_path / "a.wav"),
                   "--out", str(tmp_path / "csv"), "--device", "cpu"])
        err = capsys.readouterr().err
        assert rc == 1
        assert f"{tmp_path / name}: not a textseld checkpoint (" in err, err
        assert "weights_only" not in err and "Traceback" not in err and "trust" not in err, err
    assert not (tmp_path / "csv").exists()


# ----------------------------------------------------------------------------- validation = infer + evaluate
def test_validation_refs_score_like_the_reference_csvs(sim):
    """Predictions exactly 20 degrees off (a hit at the 20 degree threshold): the validator, which reads the
    references from the ADPIT targets, scores them as ``seld evaluate`` scores the CSVs."""
    from seld.decoding import target_to_output, write_prediction_csvs
    from seld.metrics import MetricConfig, evaluate_folders
    from seld.train.data import make_validator

    with h5py.File(sim.features / f"{SYNTH_TRAIN_SPLIT}.h5", "r") as f:
        ids = [x.decode() if isinstance(x, bytes) else str(x) for x in f["clip_ids"][()]]
        targets = dict(zip(ids, f["targets"][()]))
    preds = {}
    for cid, t in targets.items():
        moved = t.copy()
        az = np.arctan2(t[:, :, 2], t[:, :, 1]) + np.deg2rad(20.0)
        active = t[:, :, 0] > 0.5
        moved[:, :, 1], moved[:, :, 2] = np.where(active, np.cos(az), 0), np.where(active, np.sin(az), 0)
        preds[cid] = target_to_output(moved)
    got = make_validator(MetricConfig())(preds, targets)
    pred_dir = sim.data / "pred20"
    write_prediction_csvs(pred_dir, list(preds), np.stack(list(preds.values())))
    want = evaluate_folders(pred_dir, sim.data / "metadata_dev" / SYNTH_TRAIN_SPLIT, MetricConfig())
    assert want.F > 0.5  # most of them are hits at exactly 20 degrees
    assert got["F"] == want.F
    assert got["DOAE"] == pytest.approx(want.DOAE, abs=1e-9) and got["RDE"] == pytest.approx(want.RDE, abs=1e-9)


def test_training_validation_equals_infer_then_evaluate(finetuned, sim, tmp_path):
    """The trainer's validation of a fine-tuned RCC-BERT-GREP model and ``seld infer`` + ``seld evaluate`` on
    the same clips give the same F, DOAE and RDE; the model outputs agree to 1e-5."""
    from seld.constants import SYNTH_TEST_SPLIT
    from seld.metrics import MetricConfig, evaluate_folders
    from seld.train.data import make_validator
    from seld.train.engine import Trainer
    from tests.train.conftest import train_config

    val = SeldDataset(sim.features / f"{SYNTH_TEST_SPLIT}.h5", sim.features / "normalization.json", finetuned.streams)
    trainer = Trainer(finetuned.task, val, train_config(tmp_path / "run", batch_size=3), val, make_validator(MetricConfig()))
    preds, _, _ = trainer.predict(val)
    record = trainer.validate()
    wavs = sim.data / "stereo_dev" / SYNTH_TEST_SPLIT
    report = infer_to_csv(finetuned, wavs, tmp_path / "csv", InferenceOptions(batch_size=5), progress=False)
    assert report.ok and len(report.written) == len(val) == 4
    for cid, out in preds.items():
        np.testing.assert_allclose(predict_recording(finetuned, load_stereo(wavs / f"{cid}.wav")), out, atol=1e-5, rtol=0)
    scores = evaluate_folders(tmp_path / "csv", sim.data / "metadata_dev" / SYNTH_TEST_SPLIT, MetricConfig())
    assert sum(len(read_metadata_csv(p)) for p in report.written) > 50  # the model predicts events
    assert record["val_F"] == scores.F
    assert record["val_DOAE"] == pytest.approx(scores.DOAE, abs=1e-9, nan_ok=True)
    assert record["val_RDE"] == pytest.approx(scores.RDE, abs=1e-9, nan_ok=True)


def test_mean_lr_source_views_are_averaged_in_the_batched_path(finetuned, clips):
    """``streams.src_eval: mean_lr``: the output is the mean of the L-only and R-only outputs, across files."""
    recs = [("a", clips[0]), ("b", np.concatenate(clips[1:], axis=1)[:, : int(6.5 * SAMPLE_RATE)])]

    def run(view: str) -> list[np.ndarray]:
        m = dataclasses.replace(finetuned, streams=dataclasses.replace(finetuned.streams, src_eval=view))
        return [out for _, out in predict_recordings(m, recs, InferenceOptions(batch_size=2))]

    left, right, both = run("l"), run("r"), run("mean_lr")
    for lo, ro, bo in zip(left, right, both):
        assert np.abs(lo - ro).max() > 1e-4  # the two views differ (by far more than the tolerance below)
        np.testing.assert_allclose(bo, (lo + ro) / 2, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- feature settings of old checkpoints
def test_checkpoint_with_old_feature_settings_is_refused_by_name(tmp_path, tmp_path_factory):
    """A checkpoint whose stored features predate ``stft.win_length`` (1024 window, resynthesised direct
    signal, ``wpe.n_fft``) must not silently get today's features."""
    from seld.errors import CheckpointError

    ckpt = torch.load(pretrained_checkpoint(tmp_path_factory), map_location="cpu", weights_only=True)
    features = ckpt["task"]["features"]
    assert features["stft"]["win_length"] == 960  # what a current run stores
    load_task(pretrained_checkpoint(tmp_path_factory))  # and it loads

    old = copy.deepcopy(ckpt)
    del old["task"]["features"]["stft"]["win_length"]
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match=r"old\.pt: its features come from an older textseld"):
        load_task(tmp_path / "old.pt")

    before_reverb = copy.deepcopy(ckpt)  # reverb_logmel from the STFT-domain W - D
    del before_reverb["task"]["features"]["wpe"]["reverb"]
    torch.save(before_reverb, tmp_path / "before_reverb.pt")
    with pytest.raises(CheckpointError, match=r"before_reverb\.pt: .*older textseld \(reverb_logmel .*re-extract"):
        load_task(tmp_path / "before_reverb.pt")

    unknown = copy.deepcopy(ckpt)
    unknown["task"]["features"]["wpe"]["n_fft"] = 1024
    torch.save(unknown, tmp_path / "unknown.pt")
    with pytest.raises(CheckpointError, match=r"unknown\.pt: the feature settings stored .*n_fft"):
        load_task(tmp_path / "unknown.pt")


def test_features_run_on_the_inference_device_not_the_extraction_device(model, clips):
    """A model whose features were extracted with ``device: cuda`` still infers on a CPU-only node:
    the feature config's device names where training features were made, not where inference runs."""
    on_gpu = dataclasses.replace(model, feature_config=dataclasses.replace(model.feature_config, device="cuda"))
    np.testing.assert_array_equal(predict_recording(on_gpu, clips[0], device="cpu"), predict_recording(model, clips[0]))
