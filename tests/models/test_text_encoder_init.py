"""``TextEncoderConfig.init: random``: the random-weight twin of every kind has the architecture and
the tokenizer of the pre-trained encoder, weights unlike its weights, drawn reproducibly from
``init_seed`` without touching the global RNG; nothing is downloaded (HF_HUB_OFFLINE)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from seld.errors import ConfigError
from seld.models.text_encoders import MINILM_NAME, TextEncoderConfig, build_text_encoder, tiny_text_encoder_config
from seld.text.sentences import NO_SOURCE_SENTENCE, ground_truth_sentence
from seld.text.templates import TEMPLATES


def _state(enc: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in enc.state_dict().items()}


def _same_architecture(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype for k in a)


def _matrices(state: dict[str, torch.Tensor]) -> list[str]:
    """Keys of the weight matrices (biases and LayerNorm gains are constants at initialisation)."""
    return [k for k, v in state.items() if v.dim() >= 2 and v.is_floating_point()]


@pytest.fixture(scope="module")
def minilm_pair() -> tuple[dict[str, torch.Tensor], torch.nn.Module]:
    pre = build_text_encoder(TextEncoderConfig(kind="bert", name=MINILM_NAME))
    return _state(pre), pre


def test_minilm_random_twin_same_architecture_other_weights_real_tokens(minilm_pair):
    pre_state, pre = minilm_pair
    rng_before = torch.get_rng_state()
    twin = build_text_encoder(TextEncoderConfig(kind="bert", name=MINILM_NAME, init="random"))
    assert torch.equal(torch.get_rng_state(), rng_before)  # the run's own draws are not shifted
    state = _state(twin)
    _same_architecture(state, pre_state)
    assert (twin.width, twin.out_dim, twin.model.config.num_hidden_layers) == (384, 384, 6)
    arch = [{k: v for k, v in enc.model.config.to_dict().items() if k not in ("_name_or_path", "dtype")} for enc in (twin, pre)]
    assert arch[0] == arch[1]  # the tensors' dtypes are compared above
    mats = _matrices(state)
    assert len(mats) == 3 + 6 * 6 + 1  # word/position/segment tables, 6 per layer, pooler
    for k in mats:
        a, b = state[k].flatten(), pre_state[k].flatten()
        assert not torch.equal(a, b), k
        corr = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
        assert abs(corr) < 0.05, (k, corr)  # independent draws, not a perturbation of MiniLM
        assert 0.015 < float(a.std()) < 0.025, k  # BERT's own initialisation: normal, std 0.02
    # the same tokenizer: real word pieces, no [UNK]
    for sentence in (ground_truth_sentence(TEMPLATES[1], [(1, 30, 3.5)]), NO_SOURCE_SENTENCE):
        ids = twin.tokenizer.encode_sentences([sentence]).input_ids[0].tolist()
        assert ids == pre.tokenizer.encode_sentences([sentence]).input_ids[0].tolist()
        assert twin.tokenizer.unk_id not in ids and len(set(ids)) > 5
    # the injected path runs: same shapes, other embeddings
    batch = twin.tokenizer.encode_templates([TEMPLATES[1]])
    tokens = 0.05 * torch.randn(1, 3, 384, generator=torch.Generator().manual_seed(0))
    out_twin, out_pre = twin(batch, tokens).pooled, pre(batch, tokens).pooled
    assert out_twin.shape == out_pre.shape == (1, 384)
    assert float(torch.nn.functional.cosine_similarity(out_twin, out_pre)) < 0.5


def test_minilm_random_twin_is_reproducible_from_its_seed(minilm_pair):
    cfg = TextEncoderConfig(kind="bert", name=MINILM_NAME, init="random", init_seed=7)
    a, b = _state(build_text_encoder(cfg)), _state(build_text_encoder(cfg))
    assert all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(123)  # the global seed plays no part
    c = _state(build_text_encoder(cfg))
    assert all(torch.equal(a[k], c[k]) for k in a)
    other = _state(build_text_encoder(dataclasses.replace(cfg, init_seed=8)))
    assert all(not torch.equal(a[k], other[k]) for k in _matrices(a))


def test_clip_random_twin_keeps_the_tags_activation_and_downloads_nothing():
    import open_clip

    tiny = tiny_text_encoder_config("clip")
    # `openai` + init random: QuickGELU as the tag, no weights fetched (offline, nothing cached)
    cfg = dataclasses.replace(tiny, pretrained="openai", init="random", init_seed=3)
    a, b = build_text_encoder(cfg), build_text_encoder(cfg)
    assert isinstance(a.transformer.resblocks[0].mlp.gelu, open_clip.model.QuickGELU)
    sa, sb = _state(a), _state(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    other = _state(build_text_encoder(dataclasses.replace(cfg, init_seed=4)))
    _same_architecture(sa, other)
    assert all(not torch.equal(sa[k], other[k]) for k in _matrices(sa))
    # a weights file given as `path` is not read: the twin is the same whatever the file
    with_path = _state(build_text_encoder(dataclasses.replace(cfg, path="/nonexistent/weights.pt")))
    assert all(torch.equal(sa[k], with_path[k]) for k in sa)


@pytest.mark.parametrize("projection", [True, False])
def test_hf_clip_random_twin_of_a_saved_folder(tmp_path, projection):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    arch = tiny_text_encoder_config("hf_clip").model_config
    torch.manual_seed(100)  # not init_seed 0: the saved weights are other draws than the twin's
    model_cls = CLIPTextModelWithProjection if projection else CLIPTextModel
    model_cls(CLIPTextConfig(**arch)).save_pretrained(tmp_path)
    cfg = TextEncoderConfig(kind="hf_clip", path=str(tmp_path), tokenizer="open_clip_bpe")
    pre = build_text_encoder(cfg)
    twin = build_text_encoder(dataclasses.replace(cfg, init="random"))
    again = build_text_encoder(dataclasses.replace(cfg, init="random"))
    sp, st, sa = _state(pre), _state(twin), _state(again)
    _same_architecture(st, sp)
    assert (twin.use_projection, twin.out_dim) == (pre.use_projection, pre.out_dim) == (projection, 24 if projection else 32)
    assert all(torch.equal(st[k], sa[k]) for k in st)
    saved = [k for k in _matrices(sp) if projection or "text_projection" not in k]  # what the folder holds
    assert all(not torch.equal(st[k], sp[k]) for k in saved)


def test_unknown_init_is_a_config_error():
    with pytest.raises(ConfigError, match="init 'zeros'.*pretrained, random"):
        TextEncoderConfig(kind="bert", init="zeros")
