"""``FinetuneRecipe``: the fine-tuning switches reach the task as one record, checked in one place;
the YAML keys stay the config's (``tokenizer_lr``, ``model.head.residual`` ...)."""
from __future__ import annotations

from typing import Any

import pytest

from seld.config import from_dict, to_dict
from seld.errors import ConfigError
from seld.tasks.finetune import FinetuneConfig
from seld.tasks.recipe import FinetuneLossConfig, FinetuneRecipe


def test_the_config_hands_every_switch_to_the_recipe():
    cfg = from_dict(FinetuneConfig, {
        "model": {"pretrained": "pre.pt", "head": {"type": "grep", "residual": True}},
        "tokenizer_lr": 0.0, "projection_lr": 1e-4, "frozen_tokenizer_eval": True, "head_warmup_steps": 5,
        "train_frames": 10, "train_templates": [1, 3], "eval_template": 3,
        "loss": {"embed": "infonce", "embed_weight": 0.05},
    }, source="ft.yml")
    recipe = cfg.recipe()
    assert recipe == FinetuneRecipe(
        loss=FinetuneLossConfig(embed="infonce", embed_weight=0.05), pretrained_tokenizer=True, tokenizer_lr=0.0,
        projection_lr=1e-4, frozen_tokenizer_eval=True, head_warmup_steps=5, train_frames=10, train_templates=[1, 3],
        eval_template=3, residual_head=True, lstsq_head=False, language=True)
    assert recipe.holds_tokenizer and recipe.loss is cfg.loss
    assert not FinetuneConfig().recipe().holds_tokenizer  # a tokenizer from scratch learns at train.lr
    assert "recipe" not in to_dict(cfg)  # a view of the config, not a key of it


def _config_data(switches: dict[str, Any]) -> dict[str, Any]:
    """The YAML that asks for the recipe ``switches``."""
    data: dict[str, Any] = {k: v for k, v in switches.items() if k not in ("pretrained_tokenizer", "language", "loss")}
    model: dict[str, Any] = {}
    if switches.get("pretrained_tokenizer"):
        model["pretrained"] = "pre.pt"
    if switches.get("language") is False:
        model["text_encoder"] = {"kind": "none"}
    if model:
        data["model"] = model
    if "loss" in switches:
        data["loss"] = to_dict(switches["loss"])
    return data


@pytest.mark.parametrize("switches, message", [
    (dict(tokenizer_lr=1e-4, frozen_tokenizer_eval=True, pretrained_tokenizer=True),
     "frozen_tokenizer_eval needs tokenizer_lr 0"),
    (dict(tokenizer_lr=0.0, frozen_tokenizer_eval=True), "frozen_tokenizer_eval holds a pre-trained tokenizer"),
    (dict(projection_lr=1e-4), "projection_lr sets the rate of a pre-trained tokenizer's projections"),
    (dict(projection_lr=-1.0, pretrained_tokenizer=True), "projection_lr must be >= 0"),
    (dict(tokenizer_lr=-1e-4), "tokenizer_lr must be >= 0"),
    (dict(tokenizer_lr=0.0, pretrained_tokenizer=True, loss=FinetuneLossConfig(adpit_weight=0.0)),
     "tokenizer_lr 0 freezes the pre-trained tokenizer, so the embedding loss alone has nothing to train"),
    (dict(tokenizer_lr=0.0, pretrained_tokenizer=True, loss=FinetuneLossConfig(embed="cosine")),
     "loss.embed cosine aligns the tokens with their sentences, but tokenizer_lr 0"),
    (dict(language=False), r"model.text_encoder.kind none \(the no-language control\) embeds no sentences"),
    (dict(train_templates=[]), "train_templates must be non-empty"),
    (dict(train_templates=[1, 50]), r"train_templates must be non-empty indices in 0..49, got \[1, 50\]"),
    (dict(train_frames=0), "train_frames must be >= 1"),
    (dict(head_warmup_steps=-1), "head_warmup_steps must be >= 0"),
    (dict(eval_template=50), "eval_template must be in 0..49, got 50"),
])
def test_a_combination_that_makes_no_sense_is_refused_by_the_recipe_and_named_by_the_config(switches, message):
    with pytest.raises(ValueError, match=message):
        FinetuneRecipe(**switches)
    with pytest.raises(ConfigError, match="ft.yml: .*" + message):  # the same check, reached from the YAML's keys
        from_dict(FinetuneConfig, _config_data(switches), source="ft.yml")


@pytest.mark.parametrize("loss, message", [
    ({"embed_weight": -0.01}, r"loss.embed_weight must be >= 0, got -0.01"),
    ({"adpit_weight": float("nan")}, r"loss.adpit_weight must be >= 0, got nan"),
    ({"embed_weight": 0.0, "adpit_weight": 0.0}, "both 0: the fine-tuning loss would be zero"),
])
def test_loss_weights_are_checked_where_the_yaml_names_them(loss, message):
    with pytest.raises(ConfigError, match="ft.yml: .*" + message):
        from_dict(FinetuneConfig, {"loss": loss}, source="ft.yml")
    kept = from_dict(FinetuneConfig, {"loss": {"embed_weight": 0.0}}, source="ft.yml")  # no alignment term: allowed
    assert kept.loss.embed_weight == 0.0 and kept.loss.adpit_weight == 1.0


def test_the_live_language_path_is_a_sensible_recipe():
    # the embedding loss trains the projections when only they learn (projection_lr > 0 with tokenizer_lr 0)
    recipe = FinetuneRecipe(tokenizer_lr=0.0, pretrained_tokenizer=True, projection_lr=1e-4,
                            loss=FinetuneLossConfig(embed="infonce", adpit_weight=0.0))
    assert recipe.holds_tokenizer and recipe.projection_lr == 1e-4
