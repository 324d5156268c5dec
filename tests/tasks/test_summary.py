"""Stage summaries (``seld.tasks.summary``): the fine-tuning model's table from ``model.tokenizer``, every
summary a stage of the table; the scripts' end-to-end runs are in tests/models/test_summary.py."""
from __future__ import annotations

from seld.models import Tokenizer, count_parameters
from seld.models.text_encoders import tiny_text_encoder_config
from seld.tasks import STAGES
from seld.tasks.base import apply_stream_channels
from seld.tasks.finetune import FinetuneConfig, FinetuneModelConfig
from seld.tasks.summary import SUMMARIES, finetune_summary, finetune_tokenizer_config
from tests.models.test_summary import _rows
from tests.models.tiny import tiny_tokenizer


def test_every_summary_is_a_stage():
    assert set(SUMMARIES) <= set(STAGES)


def test_finetune_summary_of_a_config_with_its_own_tokenizer():
    te = tiny_text_encoder_config("bert", width=32)
    cfg = FinetuneConfig(model=FinetuneModelConfig(tokenizer=tiny_tokenizer(embed_dim=32), text_encoder=te))
    cfg.model.head.type, cfg.model.head.residual = "trep", True
    tok_cfg, origin = finetune_tokenizer_config(cfg)
    assert origin == "from model.tokenizer"
    assert tok_cfg == apply_stream_channels(cfg.model.tokenizer, cfg.data.streams)
    text = finetune_summary(cfg, "my.yml")
    assert text.splitlines()[0] == f"my.yml: tokenizer from model.tokenizer; text encoder bert {te.resolved_name}; head trep"
    rows = _rows(text)
    linear = 3 * 32 * 117 + 117  # Linear(3E, 117) over the three token positions
    assert rows["TREP head"] == (linear, linear, 0)
    assert rows["pre-training head (residual path)"] == (linear, linear, 0)
    assert rows["tokenizer"][0] == count_parameters(Tokenizer.from_config(tok_cfg, load_pretrained=False))[0]
    text_row = next(v for k, v in rows.items() if k.startswith("text encoder (BertTextEncoder"))
    assert text_row[1] == 0 and text_row[0] == text_row[2] > 0  # frozen
    assert rows["fine-tuning model"][0] == rows["tokenizer"][0] + text_row[0] + 2 * linear
