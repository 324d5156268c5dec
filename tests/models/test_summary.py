"""Model summaries: ``python pretraining/models.py`` and ``python finetuning/models.py`` (the seed's usage)
print per-part counts from seld.models.summary; totals add up and frozen = the frozen parts."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seld.models import ModelConfig, PretrainModel, count_parameters
from seld.models.summary import format_counts, part_counts, pretrain_parts
from tests.models.tiny import tiny_tokenizer
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


def _script(folder: str):
    return load_script(f"{folder}/models.py", f"{folder}_models")


def _rows(text: str) -> dict[str, tuple[int, int, int]]:
    rows = {}
    for line in text.splitlines():
        parts = line.rsplit(None, 3)
        if len(parts) == 4 and all(p.replace(",", "").isdigit() for p in parts[1:]):
            rows[parts[0].strip()] = tuple(int(p.replace(",", "")) for p in parts[1:])
    return rows


def test_part_counts_add_up_and_split_trainable_frozen():
    model = PretrainModel(ModelConfig(tokenizer=tiny_tokenizer("beats")), load_pretrained=False)
    rows = {name: (total, trainable) for name, total, trainable in part_counts(pretrain_parts(model))}
    tok_parts = [k for k in rows if k.split(" (")[0] in ("source encoder", "doa encoder", "distance encoder", "projections x3")
                 or k.startswith("multi-feature")]
    assert len(tok_parts) == 5
    assert sum(rows[k][0] for k in tok_parts) == rows["tokenizer"][0]
    assert rows["tokenizer"][0] + rows["pre-training head"][0] == rows["pre-training model"][0] == count_parameters(model)[0]
    frozen = sum(p.numel() for p in model.tokenizer.source_encoder.beats.parameters() if not p.requires_grad)
    assert frozen > 0 and rows["pre-training model"][0] - rows["pre-training model"][1] == frozen
    table = _rows(format_counts(part_counts(pretrain_parts(model))))
    assert table["pre-training model"][2] == frozen  # the frozen column


def test_pretraining_models_py_prints_the_summary_of_a_config(capsys):
    rc = _script("pretraining").main(["--config", str(ROOT / "configs/quickstart/pretrain.yml")])
    assert rc == 0
    rows = _rows(capsys.readouterr().out)
    with torch.device("meta"):
        from seld.config import load_config
        from seld.tasks.base import apply_stream_channels
        from seld.tasks.pretrain import PretrainConfig

        cfg = load_config(ROOT / "configs/quickstart/pretrain.yml", PretrainConfig)
        tok = apply_stream_channels(cfg.model.tokenizer, cfg.data.streams)  # encoders' in_channels from data.streams
        expected = count_parameters(PretrainModel(ModelConfig(tokenizer=tok), load_pretrained=False))
    assert rows["pre-training model"] == (expected[0], expected[1], 0)
    assert rows["source encoder (rcc)"][0] + rows["doa encoder (rcc)"][0] < rows["tokenizer"][0]


def test_pretraining_models_py_reports_a_bad_config(capsys, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("model:\n  tokenizer:\n    source_encoder: cnn\n")
    assert _script("pretraining").main(["--config", str(bad)]) == 2
    assert "unknown source_encoder 'cnn'" in capsys.readouterr().err


def test_finetuning_models_py_counts_the_frozen_text_encoder(capsys):
    rc = _script("finetuning").main(["--config", str(ROOT / "configs/quickstart/finetune.yml"),
                                     "model.pretrained=/nonexistent.pt"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "pre-training defaults (model.pretrained /nonexistent.pt not found)" in out
    rows = _rows(out)
    text = rows["text encoder (BertTextEncoder, frozen)"]
    assert text[1] == 0 and text[0] == text[2] > 20_000_000  # MiniLM, all frozen
    whole = rows["fine-tuning model"]
    assert whole[0] == rows["tokenizer"][0] + text[0] + rows["GREP head"][0]
    assert whole[2] == text[0]
    assert rows["GREP head"][0] == 384 * 384 + 384 + 384 * 117 + 117  # two Linear layers, MiniLM width
