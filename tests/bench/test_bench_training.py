"""``scripts/bench/bench_training.py`` on test-size models: every stage runs and prints its figures
(no timing asserts); trimming sentences to the batch's longest leaves the pooled embeddings unchanged."""
from __future__ import annotations

import math
from pathlib import Path

from tests.scripts import load_script
from tests.train.conftest import single_thread

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench" / "bench_training.py"


def _load():
    return load_script(SCRIPT, "bench_training")


def test_bench_training_tiny(capsys):
    with single_thread():
        res = _load().main(["--size", "tiny", "--steps", "1", "--batch-size", "1"])
    out = capsys.readouterr().out
    print(out)
    for line in ("pre-training rcc", "pre-training beats", "RCC-CLIP-GREP", "RCC-BERT-GREP", "authors to 77"):
        assert line in out
    assert all(math.isfinite(v) for v in res.values())
    for kind in ("clip", "bert"):
        assert res[f"finetune_{kind}_sentences_per_s"] > 0
        assert 5 < res[f"{kind}_mean_tokens"] <= res[f"{kind}_tokens_trimmed"] < 77
        assert res[f"{kind}_pooled_diff_77"] < 1e-4  # padding to 77 changes the cost, not the embedding
    assert res["pretrain_rcc_steps_per_s"] > 0 and res["pretrain_beats_steps_per_s"] > 0


def test_bench_training_tiny_bf16_channels_last(capsys):
    with single_thread():
        res = _load().main(["--size", "tiny", "--steps", "1", "--batch-size", "1", "--stages", "rcc",
                            "--amp", "bf16", "--channels-last"])
    out = capsys.readouterr().out
    assert "amp bf16, channels_last True" in out and "pre-training rcc" in out
    assert math.isfinite(res["pretrain_rcc_steps_per_s"]) and res["pretrain_rcc_steps_per_s"] > 0


def test_bench_training_tiny_live_against_frozen_tokens(capsys):
    with single_thread():
        res = _load().main(["--size", "tiny", "--steps", "1", "--stages", "live", "--budget-minutes", "2", "--clips", "10"])
    out = capsys.readouterr().out
    for line in ("frozen tokens (tokenizer_lr 0)", "live projections (gradients through the encoder", "live / frozen step time",
                 "batch 4 clips x 10 frames"):  # the benchmark config's batch and training frames
        assert line in out
    assert res["live_step_s"] > 0 and res["live_frozen_step_s"] > 0
    assert res["live_ratio"] == res["live_step_s"] / res["live_frozen_step_s"]
    for key, step in (("live_epochs", "live_step_s"), ("live_frozen_epochs", "live_frozen_step_s")):
        assert math.isclose(res[key], 2 * 60 / (res[step] * (10 // 4)))  # budget / (step time x steps per epoch)
