"""``seld embed`` writes an index for ``seld query``: the checkpoint's path and sha256, and the outputs."""
from __future__ import annotations

import h5py
import numpy as np

from seld.cli import main
from seld.data.audio import AudioConfig, load_stereo
from seld.embeddings import OUTPUTS_GROUP, read_embedding_index
from seld.inference import predict_recording
from seld.io_utils import file_sha256
from seld.tasks.loading import load_task
from tests.train.conftest import finetuned_checkpoint


def test_embed_records_the_checkpoint_and_the_outputs(audio_dir, tmp_path, tmp_path_factory, capsys):
    ckpt = finetuned_checkpoint(tmp_path_factory, "bert", "grep")
    out = tmp_path / "emb.h5"
    assert main(["embed", "--checkpoint", str(ckpt), "--audio", str(audio_dir), "--out", str(out), "--device", "cpu"]) == 0
    assert "wrote embeddings of 2 recording(s)" in capsys.readouterr().out
    index = read_embedding_index(out)
    assert index.checkpoint == str(ckpt.resolve()) and index.checkpoint_sha256 == file_sha256(ckpt)
    assert len(index.checkpoint_sha256) == 64
    model = load_task(ckpt)
    two = load_stereo(audio_dir / "two.wav", AudioConfig(clip_samples=0))
    assert list(index.embeddings) == list(index.outputs) == ["one", "two"]
    assert index.outputs["two"].shape == (63, 117) and index.embeddings["two"].shape == (63, model.task.text_encoder.out_dim)
    np.testing.assert_allclose(index.outputs["two"], predict_recording(model, two), atol=1e-5)
    np.testing.assert_allclose(index.embeddings["two"], predict_recording(model, two, embeddings=True), atol=1e-5)
    assert index.audio_paths["two"] == str(audio_dir / "two.wav")

    bare = tmp_path / "bare.h5"
    assert main(["embed", "--checkpoint", str(ckpt), "--audio", str(audio_dir), "--out", str(bare), "--no-outputs"]) == 0
    with h5py.File(bare, "r") as f:
        assert OUTPUTS_GROUP not in f and sorted(f) == ["one", "two"]
    assert read_embedding_index(bare).outputs == {}
