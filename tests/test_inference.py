"""Inference on recordings of any length: 5 s windows, frame counts, parity with the training
features, audio checks, and the ``seld infer`` / ``seld embed`` commands end to end.

The models are tiny 2-step runs on the simulated set of ``tests/train/conftest.py`` (shared,
built once per session): the numbers checked here do not depend on how well they learned.
"""
from __future__ import annotations

import dataclasses

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
from seld.errors import DataError
from seld.inference import InferenceOptions, export_embeddings, infer_to_csv, predict_recording
from seld.train.stages import load_task
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
    (csv,) = infer_to_csv(model, tmp_path / "rec.wav", tmp_path / "out", ALL_FRAMES, progress=False)
    assert csv == tmp_path / "out" / "rec.csv"
    frames = _frames(csv)
    assert min(frames) == 0 and max(frames) == 122 and frames == set(range(123))


def test_5_second_recording_gives_50_frames(model, sim, tmp_path):
    wav = sim.wavs()[0]
    assert sf.info(str(wav)).frames == CLIP_SAMPLES
    out = predict_recording(model, load_stereo(wav), ALL_FRAMES)
    assert out.shape == (50, 117)
    (csv,) = infer_to_csv(model, wav, tmp_path, ALL_FRAMES, progress=False)
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
    np.testing.assert_allclose(predict_recording(model, np.concatenate([a, b], 1), InferenceOptions(batch_windows=1)),
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
    with pytest.raises(DataError, match=r"mono\.wav: expected 2 channels .*got 1"):
        infer_to_csv(model, mono, out, progress=False)
    with pytest.raises(DataError, match=r"hi\.wav: sample rate 48000 Hz, expected 24000 Hz"):
        infer_to_csv(model, hi, out, progress=False)
    assert not out.exists() or not list(out.iterdir())
    (csv,) = infer_to_csv(model, hi, out, InferenceOptions(threshold=0.0, resample=True), progress=False)
    assert _frames(csv) == set(range(50))
    (csv,) = infer_to_csv(model, mono, out, InferenceOptions(threshold=0.0, mono_to_stereo=True), progress=False)
    assert _frames(csv) == set(range(50))
    resampled = load_stereo(hi, AudioConfig(clip_samples=0, resample=True))
    assert resampled.shape == (2, CLIP_SAMPLES)


def test_empty_recording_is_a_data_error_naming_the_file(model, tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros((0, 2), dtype=np.float32), SAMPLE_RATE, subtype="PCM_16")
    with pytest.raises(DataError, match=r"empty\.wav: empty recording \(0 samples\)"):
        infer_to_csv(model, empty, tmp_path / "csv", progress=False)
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
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == ["a.csv", "b.csv"]
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
        assert sorted(f) == ["one", "two"]
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
