"""Shared set-up of the command tests: tiny checkpoints (memoised per session, see
``tests/train/conftest.py``) and a folder of recordings made from the simulated clips."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seld.constants import SAMPLE_RATE
from seld.data.audio import load_stereo, write_stereo
from tests.train.conftest import MINILM_WIDTH, _memo, build_sim_set, finetune_config, pretrained_checkpoint, single_thread


@pytest.fixture(autouse=True)
def _single_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    """``one.wav`` (a 5 s clip) and ``two.wav`` (6.3 s over two clips) of the simulated set."""
    sim = build_sim_set(tmp_path_factory)
    clips = [load_stereo(p) for p in sim.wavs()[:2]]
    folder = tmp_path_factory.mktemp("recordings")
    write_stereo(folder / "one.wav", clips[1])
    write_stereo(folder / "two.wav", np.concatenate(clips, axis=1)[:, : int(6.3 * SAMPLE_RATE)])
    return folder


def minilm_finetuned_checkpoint(factory: pytest.TempPathFactory) -> Path:
    """``last.pt`` of a one-step RCC-BERT-GREP fine-tuning with the offline MiniLM (memoised per session)."""

    def build() -> Path:
        from seld.models.text_encoders import TextEncoderConfig
        from seld.tasks.finetune import run_finetuning

        sim = build_sim_set(factory)
        pre = pretrained_checkpoint(factory, "rcc", embed_dim=MINILM_WIDTH)
        out = factory.mktemp("finetune_minilm")
        cfg = finetune_config(sim, out, pre, text_encoder=TextEncoderConfig(kind="bert", name="minilm", pooling="mean"),
                              head="grep", max_steps=1)
        run_finetuning(cfg)
        return out / "checkpoints" / "last.pt"

    return _memo(factory, ("finetuned_minilm",), build)
