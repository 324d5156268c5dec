"""Embedding alignment losses of fine-tuning (``loss.embed``): cosine, and the contrastive InfoNCE
checked against a hand-written formula, with frames of equal sentences counted as positives."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seld.losses import (
    MAX_LOGIT_SCALE,
    LearnedTemperature,
    cosine_alignment_loss,
    infonce_alignment_loss,
    sentence_groups,
)


def _cos(u: list[float], v: list[float]) -> float:
    dot = sum(x * y for x, y in zip(u, v))
    return dot / math.sqrt(sum(x * x for x in u) * sum(y * y for y in v))


def hand_infonce(audio: list[list[float]], sentences: list[str], text: dict[str, list[float]], scale: float,
                 symmetric: bool = True) -> float:
    """The loss written out with loops: audio -> text is a softmax over the distinct sentences, text ->
    audio sums the frames of the sentence (its positives) in the numerator."""
    distinct = list(dict.fromkeys(sentences))
    logit = {(i, s): scale * _cos(audio[i], text[s]) for i in range(len(audio)) for s in distinct}
    a2t = 0.0
    for i, own in enumerate(sentences):
        a2t += -math.log(math.exp(logit[i, own]) / sum(math.exp(logit[i, s]) for s in distinct))
    a2t /= len(audio)
    if not symmetric:
        return a2t
    t2a = 0.0
    for s in distinct:
        positives = sum(math.exp(logit[i, s]) for i in range(len(audio)) if sentences[i] == s)
        t2a += -math.log(positives / sum(math.exp(logit[i, s]) for i in range(len(audio))))
    t2a /= len(distinct)
    return 0.5 * (a2t + t2a)


AUDIO = [[1.0, 0.2, -0.3], [0.1, 0.9, 0.0], [0.3, 0.6, 0.5], [-0.5, 0.3, 1.0], [0.2, 0.2, 0.2]]
SENTENCES = ["a", "b", "a", "c", "b"]  # frames 0 and 2, 1 and 4 share their sentences
TEXT = {"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0, 0.1], "c": [-0.2, 0.1, 1.0]}


def _loss(audio, sentences=SENTENCES, scale=1 / 0.07, direction="symmetric"):
    distinct, target = sentence_groups(sentences)
    text = torch.tensor([TEXT[s] for s in distinct], dtype=torch.float64)
    return infonce_alignment_loss(torch.as_tensor(audio, dtype=torch.float64), text, target, scale, direction)


def test_sentence_groups_first_seen_order():
    distinct, index = sentence_groups(["x", "y", "x", "z", "y"])
    assert distinct == ["x", "y", "z"] and index.tolist() == [0, 1, 0, 2, 1]


@pytest.mark.parametrize("direction", ["symmetric", "audio_to_text"])
@pytest.mark.parametrize("scale", [1.0, 1 / 0.07])
def test_infonce_equals_the_hand_written_formula_with_duplicates(direction, scale):
    got = float(_loss(AUDIO, scale=scale, direction=direction))
    want = hand_infonce(AUDIO, SENTENCES, TEXT, scale, symmetric=direction == "symmetric")
    assert got == pytest.approx(want, rel=1e-12)
    assert 0.01 < want < 20  # a real, non-degenerate value


def test_without_duplicates_it_is_clips_symmetric_cross_entropy():
    g = torch.Generator().manual_seed(0)
    audio, text = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    logits = 3.0 * F.normalize(audio, dim=-1) @ F.normalize(text, dim=-1).T
    labels = torch.arange(6)
    clip = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    torch.testing.assert_close(infonce_alignment_loss(audio, text, labels, 3.0), clip)
    torch.testing.assert_close(infonce_alignment_loss(audio, text, labels, 3.0, "audio_to_text"),
                               F.cross_entropy(logits, labels))


def test_a_duplicate_counts_as_a_positive():
    """Frame 2 shares frame 0's sentence "a". Pulling frame 2 towards E("a") lowers sentence "a"'s
    text -> audio term, as a positive's would; a frame-by-frame InfoNCE (positives on the diagonal
    only) would count frame 2 as a negative of frame 0's column and raise that term."""
    def moved(step: float) -> list[list[float]]:
        out = [row[:] for row in AUDIO]
        out[2] = [x + step * (t - x) for x, t in zip(out[2], TEXT["a"])]
        return out

    scale = 1 / 0.07

    def t2a_of_a(audio) -> float:  # our text -> audio term for sentence "a" alone
        total = sum(math.exp(scale * _cos(row, TEXT["a"])) for row in audio)
        pos = sum(math.exp(scale * _cos(audio[i], TEXT["a"])) for i in (0, 2))
        return -math.log(pos / total)

    def naive_column_0(audio) -> float:  # diagonal-only InfoNCE: frame 0 the positive of its text
        total = sum(math.exp(scale * _cos(row, TEXT["a"])) for row in audio)
        return -math.log(math.exp(scale * _cos(audio[0], TEXT["a"])) / total)

    before, after = float(_loss(AUDIO)), float(_loss(moved(0.5)))
    assert after < before - 1e-3
    assert after == pytest.approx(hand_infonce(moved(0.5), SENTENCES, TEXT, scale), rel=1e-12)
    assert t2a_of_a(moved(0.5)) < t2a_of_a(AUDIO)
    assert naive_column_0(moved(0.5)) > naive_column_0(AUDIO)  # what "a negative" would have done
    # and the gradient on frame 2 points towards E("a") like the one on frame 0
    audio = torch.tensor(AUDIO, dtype=torch.float64, requires_grad=True)
    _loss(audio).backward()
    towards = torch.tensor(TEXT["a"], dtype=torch.float64)
    assert float(-audio.grad[2] @ towards) > 0 and float(-audio.grad[0] @ towards) > 0


def test_one_sentence_for_all_frames_is_zero_and_bad_inputs_are_named():
    one = _loss(AUDIO, sentences=["a"] * 5)
    assert float(one) == pytest.approx(0.0, abs=1e-12)
    text = torch.randn(3, 3)
    with pytest.raises(ValueError, match="needs a frame"):
        infonce_alignment_loss(torch.randn(4, 3), text, torch.tensor([0, 1, 1, 0]), 1.0)
    with pytest.raises(ValueError, match="direction"):
        infonce_alignment_loss(torch.randn(3, 3), text, torch.tensor([0, 1, 2]), 1.0, "text_to_audio")
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        infonce_alignment_loss(torch.randn(3, 4), text, torch.tensor([0, 1, 2]), 1.0)


def test_learned_temperature_starts_at_clips_value_and_is_clamped():
    t = LearnedTemperature(0.07)
    assert float(t().detach()) == pytest.approx(1 / 0.07) and t.temperature == pytest.approx(0.07)
    assert float(t.log_scale.detach()) == pytest.approx(math.log(1 / 0.07))
    with torch.no_grad():
        t.log_scale.fill_(10.0)
    assert float(t().detach()) == pytest.approx(MAX_LOGIT_SCALE)
    with pytest.raises(ValueError, match="temperature"):
        LearnedTemperature(0.001)
    # a gradient reaches the log-scale through the loss
    t2 = LearnedTemperature(0.5)
    loss = infonce_alignment_loss(torch.tensor(AUDIO), torch.tensor([TEXT[s] for s in "abc"]),
                                  sentence_groups(SENTENCES)[1], t2())
    loss.backward()
    assert t2.log_scale.grad is not None and float(t2.log_scale.grad) != 0.0


def test_cosine_alignment_loss():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, 5.0]])
    assert float(cosine_alignment_loss(a, b)) == pytest.approx(((1 - 1 / math.sqrt(2)) + 0.0) / 2)
    with pytest.raises(ValueError, match="shapes differ"):
        cosine_alignment_loss(a, b[:1])
