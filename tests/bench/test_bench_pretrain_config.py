"""``scripts/bench/bench_pretrain_config.py`` on the simulated test set: each variant is built from
the config plus its overrides (the parameter counts show it) and timed (no timing asserts)."""
from __future__ import annotations

from pathlib import Path

import pytest

from seld.constants import SYNTH_TEST_SPLIT, SYNTH_TRAIN_SPLIT
from tests.scripts import load_script
from tests.train.conftest import build_sim_set, single_thread

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench" / "bench_pretrain_config.py"


def _load():
    return load_script(SCRIPT, "bench_pretrain_config")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return build_sim_set(tmp_path_factory)


def test_bench_pretrain_config_variants(sim, capsys):
    splits = f"data.train_splits=[{SYNTH_TRAIN_SPLIT}] data.val_splits=[{SYNTH_TEST_SPLIT}]"
    wide = " ".join(f"model.tokenizer.{e}.channels=[16,32,64,64]" for e in ("rcc", "doa", "dist"))
    with single_thread():
        res = _load().main(["--features", str(sim.features), "--steps", "1", "--warmup", "0",
                            "--variant", f"{splits} train.batch_size=2 {wide}",
                            "--variant", f"{splits} train.batch_size=2"])
    out = capsys.readouterr().out
    print(out)
    wide, thin = res.values()
    assert "clips/s" in out and len(res) == 2
    # the overrides reach the model: the config's [8,16,32,64] encoders have 727,640 parameters, [16,32,64,64] 957,112
    assert (wide["params"], thin["params"]) == (957_112, 727_640)
    assert wide["batch_size"] == thin["batch_size"] == 2 and thin["clips_per_s"] > 0
