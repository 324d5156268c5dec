"""Ground-truth sentences: the seed's four examples word for word, number formats, plural rules."""
from __future__ import annotations

import numpy as np
import pytest

from seld.constants import SHORT_CLASS_NAMES
from seld.data.metadata import Event
from seld.data.targets import build_adpit_target
from seld.errors import ConfigError
from seld.text.sentences import (
    MINUS_SIGN,
    NO_SOURCE_SENTENCE,
    format_azimuth,
    format_distance,
    frame_sentences,
    ground_truth_sentence,
    join_words,
)
from seld.text.templates import TEMPLATES
from tests.text.test_templates import SEED_TEXT

MAN, WOMAN, FOOTSTEPS, DOOR, KNOCK = 1, 0, 6, 7, 12

# (template as written in the seed README, events, generated text as written there)
SEED_EXAMPLES = [
    (SEED_TEXT[0], [], "No audible sources are detected in the environment."),
    (SEED_TEXT[1], [(MAN, 30, 3.5)], "The sound of man comes from direction 30°, approximately 3.5 m away."),
    (
        SEED_TEXT[2],
        [(MAN, -60, 3), (WOMAN, 80, 5)],
        "The captured audio of man and woman is localized at directions −60° and 80°, about 3 m and 5 m away, "
        "respectively.",
    ),
    (
        SEED_TEXT[3],
        [(FOOTSTEPS, 40, 3), (DOOR, -80, 4), (KNOCK, 10, 5)],
        "The acoustic presence of footsteps, door, and knock is acoustically detected from directions 40°, −80°, "
        "and 10°, approximately 3 m, 4 m, and 5 m distant, respectively.",
    ),
]


@pytest.mark.parametrize("template, events, expected", SEED_EXAMPLES)
def test_seed_examples_word_for_word(template, events, expected):
    assert ground_truth_sentence(template, events) == expected
    ours = template.replace("<SRC>", "{SRC}").replace("<DOA>", "{DOA}").replace("<DIST>", "{DIST}")
    assert ground_truth_sentence(ours, events) == expected


def test_seed_minus_sign_is_unicode_minus():
    text = SEED_EXAMPLES[2][2]
    assert "\u221260°" in text and "-60" not in text
    assert MINUS_SIGN == "\u2212"


@pytest.mark.parametrize(
    "az, words",
    [(30, "30°"), (30.4, "30°"), (29.6, "30°"), (0.5, "1°"), (-0.5, "−1°"), (-0.4, "0°"), (0.0, "0°"),
     (-60, "−60°"), (-89.5, "−90°"), (90, "90°"), (np.float32(-12.5), "−13°")],
)
def test_format_azimuth(az, words):
    assert format_azimuth(az) == words


@pytest.mark.parametrize(
    "d, words",
    [(3.5, "3.5 m"), (3.0, "3 m"), (3.24, "3 m"), (3.26, "3.5 m"), (3.75, "4 m"), (3.7499, "3.5 m"),
     (0.2, "0 m"), (0.25, "0.5 m"), (np.float32(3.4999998), "3.5 m"), (12.0, "12 m")],
)
def test_format_distance_rounds_to_half_metres(d, words):
    assert format_distance(d) == words


def test_format_distance_rejects_negative_and_nan():
    with pytest.raises(ValueError):
        format_distance(-1.0)
    with pytest.raises(ValueError):
        format_distance(float("nan"))


def test_join_words():
    assert join_words(["man"]) == "man"
    assert join_words(["man", "woman"]) == "man and woman"
    assert join_words(["footsteps", "door", "knock"]) == "footsteps, door, and knock"
    assert join_words(["a", "b", "c", "d"]) == "a, b, c, and d"
    with pytest.raises(ValueError):
        join_words([])


def test_given_order_is_kept():
    t = TEMPLATES[1]
    assert ground_truth_sentence(t, [(WOMAN, 10, 1), (MAN, 20, 2)]).startswith("The sound of woman and man ")
    assert ground_truth_sentence(t, [(MAN, 20, 2), (WOMAN, 10, 1)]).startswith("The sound of man and woman ")


def test_four_sources_and_azimuth_plural():
    t = "The audio event of {SRC} is located at azimuth {DOA}, approximately {DIST} from the listener."
    events = [(0, -10, 1), (1, 20, 2.5), (2, 30, 3), (3, -40, 4)]
    assert ground_truth_sentence(t, events) == (
        "The audio event of woman, man, clapping, and telephone is located at azimuths −10°, 20°, 30°, and −40°, "
        "approximately 1 m, 2.5 m, 3 m, and 4 m from the listener, respectively."
    )


@pytest.mark.parametrize("n", [1, 2, 3])
def test_all_templates_fill_cleanly(n):
    events = [(c, az, d) for c, az, d in zip([3, 8, 11], [-45.2, 15.0, 70.7], [1.2, 2.0, 4.8])][:n]
    for t in TEMPLATES:
        s = ground_truth_sentence(t, events)
        assert "{" not in s and "}" not in s
        assert s.endswith(".") and s.count(".") == 1  # no distance here has a decimal point
        assert s.endswith(", respectively.") == (n > 1)
        for name in [SHORT_CLASS_NAMES[c] for c, _, _ in events]:
            assert name in s
        if n > 1:
            assert " direction " not in s and " azimuth " not in s
        if "direction {DOA}" in t:
            assert ("directions " in s) == (n > 1)


def test_bad_templates_and_classes_raise():
    with pytest.raises(ConfigError, match="exactly once"):
        ground_truth_sentence("The sound of {SRC} comes from direction {DOA}.", [(1, 30, 3)])
    with pytest.raises(ConfigError, match="exactly once"):
        ground_truth_sentence("{SRC} {SRC} {DOA} {DIST}.", [])
    with pytest.raises(ConfigError, match="period"):
        ground_truth_sentence("The sound of {SRC} comes from direction {DOA}, {DIST} away", [(1, 30, 3)])
    with pytest.raises(ValueError, match="class index"):
        ground_truth_sentence(TEMPLATES[1], [(13, 30, 3)])


def test_frame_sentences_from_an_adpit_target():
    events = [
        Event(frame=2, class_idx=MAN, source=0, azimuth=30.0, distance_cm=350),
        Event(frame=5, class_idx=MAN, source=0, azimuth=-60.0, distance_cm=300),
        Event(frame=5, class_idx=WOMAN, source=0, azimuth=80.0, distance_cm=500),
        # two instances of one class at different azimuths (B0 / B1 tracks)
        Event(frame=7, class_idx=KNOCK, source=0, azimuth=20.0, distance_cm=120),
        Event(frame=7, class_idx=KNOCK, source=1, azimuth=-40.0, distance_cm=260),
        Event(frame=7, class_idx=DOOR, source=0, azimuth=-5.0, distance_cm=90),
    ]
    target = build_adpit_target(events)
    sentences = frame_sentences(target, TEMPLATES[1])
    assert len(sentences) == 50
    assert sentences[2] == "The sound of man comes from direction 30°, approximately 3.5 m away."
    # listed by class index: woman (0) before man (1)
    assert sentences[5] == (
        "The sound of woman and man comes from directions 80° and −60°, approximately 5 m and 3 m away, respectively."
    )
    assert sentences[7] == (
        "The sound of door, knock, and knock comes from directions −5°, 20°, and −40°, approximately 1 m, 1 m, "
        "and 2.5 m away, respectively."
    )
    silent = [i for i in range(50) if i not in (2, 5, 7)]
    assert all(sentences[i] == NO_SOURCE_SENTENCE for i in silent)


def test_frame_sentences_rejects_bad_shape():
    with pytest.raises(ValueError):
        frame_sentences(np.zeros((50, 6, 13)), TEMPLATES[0])
