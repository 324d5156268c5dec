"""The baseline CRNN stage end to end: ``seld baseline`` trains, its checkpoint rebuilds through
:func:`seld.tasks.loading.load_task`, and ``seld infer`` on a WAV gives what the model gives on that
clip's training features (the inference path has no stage of its own to special-case)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seld.cli import main
from seld.constants import SYNTH_TRAIN_SPLIT
from seld.data.audio import load_stereo
from seld.data.dataset import SeldDataset
from seld.data.metadata import read_metadata_csv
from seld.inference import predict_recording
from seld.tasks.loading import load_task
from tests.train.conftest import build_sim_set, single_thread


@pytest.fixture(autouse=True)
def _single_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(checkpoint, features, audio folder) of a one-epoch baseline on the simulated set."""
    sim = build_sim_set(tmp_path_factory)
    out = tmp_path_factory.mktemp("baseline")
    with single_thread():
        rc = main(["baseline", "--config", "configs/baseline_seldnet.yml", f"data.features_dir={sim.features}",
                   "data.train_splits=[dev-train-synth]", "data.val_splits=[]", f"train.out_dir={out}",
                   "train.epochs=1", "train.batch_size=4", "train.tensorboard=false", "train.progress=false",
                   "train.num_workers=0"])
    assert rc == 0
    return out / "checkpoints" / "last.pt", sim.features, sim.data / "stereo_dev" / SYNTH_TRAIN_SPLIT


def test_a_baseline_checkpoint_infers_like_the_model_on_its_training_features(trained):
    ckpt, features, wavs = trained
    loaded = load_task(ckpt)
    assert loaded.stage == "baseline" and type(loaded.task).__name__ == "BaselineTask"
    ds = SeldDataset(features / f"{SYNTH_TRAIN_SPLIT}.h5", features / "normalization.json", loaded.streams)
    for i in (0, 5):
        item = ds[i]
        with torch.no_grad():
            want = loaded.task.predict(*(item[k][None] for k in ("src", "doa", "dist")))[0].numpy()
        got = predict_recording(loaded, load_stereo(wavs / f"{item['clip_id']}.wav"))
        assert got.shape == want.shape == (50, 117)
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_seld_infer_writes_dcase_csvs_for_a_baseline_checkpoint(trained, tmp_path, capsys):
    ckpt, _, wavs = trained
    audio = tmp_path / "audio"
    audio.mkdir()
    names = sorted(p.name for p in wavs.glob("*.wav"))[:2]
    for name in names:
        (audio / name).write_bytes((wavs / name).read_bytes())
    assert main(["infer", "--checkpoint", str(ckpt), "--audio", str(audio), "--out", str(tmp_path / "csv"),
                 "--threshold", "0", "--no-progress"]) == 0
    assert "wrote 2 CSV file(s)" in capsys.readouterr().out
    for name in names:
        events = read_metadata_csv(tmp_path / "csv" / name.replace(".wav", ".csv"))
        assert events  # threshold 0: every track with a direction is an event
        assert {e.frame for e in events} <= set(range(50)) and {e.class_idx for e in events} <= set(range(13))


def test_embed_and_query_name_the_stage_a_baseline_checkpoint_has(trained, tmp_path, capsys):
    ckpt, _, wavs = trained
    wav = sorted(wavs.glob("*.wav"))[0]
    assert main(["embed", "--checkpoint", str(ckpt), "--audio", str(wav), "--out", str(tmp_path / "a.h5"),
                 "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert "embeddings need a fine-tuned checkpoint (stage 'finetune', with a text encoder); this one is stage " \
           "'baseline'" in err
    assert not (tmp_path / "a.h5").exists()
    assert main(["query", "--text", "where is the bell?", "--audio", str(wav), "--checkpoint", str(ckpt),
                 "--no-progress"]) != 0
    assert "class queries need a fine-tuned checkpoint (stage 'finetune', with a text encoder); this one is " \
           "stage 'baseline'" in capsys.readouterr().err
