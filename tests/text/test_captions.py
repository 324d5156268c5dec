"""Captions: the seed's examples from labels, predictions equal to labels read as the labels, segments."""
from __future__ import annotations

import json

import numpy as np
import pytest

from seld.data.metadata import Event, format_metadata_csv
from seld.data.targets import build_adpit_target
from seld.decoding import decode_output, target_to_output
from seld.text.captions import (
    Caption,
    frame_captions,
    segment_captions,
    stored_events,
    write_captions,
)
from seld.text.sentences import NO_SOURCE_SENTENCE, frame_sentences
from seld.text.templates import TEMPLATES
from tests.text.test_sentences import SEED_EXAMPLES

MAN, WOMAN, TELEPHONE, KNOCK = 1, 0, 3, 12


# The seed lists "man and woman" (classes 1, 0); labels are written in class-index order, the rule of
# every ground-truth sentence in training, so from labels the same words come woman first.
SEED_FROM_LABELS = [SEED_EXAMPLES[0], SEED_EXAMPLES[1], (
    SEED_EXAMPLES[2][0], SEED_EXAMPLES[2][1],
    "The captured audio of woman and man is localized at directions 80° and −60°, about 5 m and 3 m away, respectively.",
), SEED_EXAMPLES[3]]


def test_seed_example_with_two_sources_differs_only_in_order():
    assert SEED_FROM_LABELS[2][2] != SEED_EXAMPLES[2][2]
    assert sorted(SEED_FROM_LABELS[2][2].replace(",", "").split()) == sorted(SEED_EXAMPLES[2][2].replace(",", "").split())


@pytest.mark.parametrize("template, sources, expected", SEED_FROM_LABELS)
def test_seed_examples_from_labels(template, sources, expected):
    """The four examples of the seed README, from label events through the caption writer."""
    events = [Event(4, c, 0, float(az), d * 100.0) for c, az, d in sources]
    caps = frame_captions(events, 6, template)
    assert caps[4].text == expected
    assert caps[4].events == tuple(sorted(events, key=lambda e: (e.class_idx, e.source)))
    assert [c.text for i, c in enumerate(caps) if i != 4] == [NO_SOURCE_SENTENCE] * 5


def _label_events(rng: np.random.Generator, frames: int = 50) -> list[Event]:
    """Random labels: up to 3 sources a frame, two instances of one class sometimes, distances on 0.25 m
    boundaries (where rounding to 0.5 m flips) and whole-degree azimuths in [-90, 90]; two instances
    of a class lie 40 degrees apart (closer ones are one source to the decoder)."""
    events = []
    for f in range(frames):
        classes = rng.choice(13, size=int(rng.integers(0, 4)), replace=False).tolist()
        if classes and rng.random() < 0.3:
            classes = classes[:2] + [classes[0]]  # a second instance of the first class
        used: dict[int, int] = {}
        first_az: dict[int, float] = {}
        for c in classes:
            src = used.get(c, -1) + 1
            used[c] = src
            az = float(rng.integers(-90, 91))
            if src == 1:  # the decoder merges same-class tracks closer than 15 degrees
                az = first_az[c] + 40.0 if first_az[c] < 0 else first_az[c] - 40.0
            first_az.setdefault(c, az)
            dist_cm = float(rng.choice([25, 75, 125, 325, 350, 400, 275, 1025]))
            events.append(Event(f, int(c), src, az, dist_cm))
    return events


@pytest.mark.parametrize("template_idx", [0, 1, 6, 10, 23])
def test_caption_of_a_prediction_equal_to_the_labels_is_the_ground_truth(template_idx):
    rng = np.random.default_rng(template_idx)
    events = _label_events(rng)
    target = build_adpit_target(events)
    template = TEMPLATES[template_idx]
    fits = lambda s: s.count("°") <= 2  # a length rule that cuts frames of 3 sources
    truth = frame_sentences(target, template, fits)
    assert truth != frame_sentences(target, template)  # the crowded-frame rule is at work
    predicted = stored_events(decode_output(target_to_output(target)))  # the model output equal to the labels
    caps = frame_captions(predicted, target.shape[0], template, fits)
    assert [c.text for c in caps] == truth
    assert sum(t != NO_SOURCE_SENTENCE for t in truth) > 30
    assert any(t.endswith(", respectively.") for t in truth)


def test_stored_events_are_what_the_csv_says():
    events = [Event(0, TELEPHONE, 0, 150.4, 212.6), Event(1, MAN, 0, -100.0, 99.5), Event(2, KNOCK, 1, 29.5, 300.2)]
    stored = stored_events(events)
    assert [(e.azimuth, e.distance_cm) for e in stored] == [(30.0, 213.0), (-80.0, 100.0), (30.0, 300.0)]
    csv_rows = format_metadata_csv(events).splitlines()[1:]
    assert [r.split(",")[3:5] for r in csv_rows] == [[str(int(e.azimuth)), str(int(e.distance_cm))] for e in stored]
    # "150°" from a stereo pair is read as the labels are: front-folded
    assert frame_captions(stored, 3)[0].text == "The sound of telephone comes from direction 30°, approximately 2 m away."


def test_segments_merge_frames_of_unchanged_events():
    """0-9 man; 10-14 man and woman; 15-19 the woman moved; 20-24 silence; jitter within a word stays one segment."""
    events = []
    for f in range(10):
        events.append(Event(f, MAN, 0, 30.0 + (0.3 if f % 2 else -0.3), 350.0 + (10 if f % 3 else -10)))
    for f in range(10, 20):
        events.append(Event(f, MAN, 0, 30.0, 350.0))
        events.append(Event(f, WOMAN, 0, -60.0 if f < 15 else -20.0, 300.0))
    frames = frame_captions(events, 25)
    assert len(frames) == 25 and all(isinstance(c, Caption) for c in frames)
    segments = segment_captions(frames)
    assert [(s.start_frame, s.end_frame) for s in segments] == [(0, 10), (10, 15), (15, 20), (20, 25)]
    assert segments[0].text == "The sound of man comes from direction 30°, approximately 3.5 m away."
    assert segments[1].text == ("The sound of woman and man comes from directions −60° and 30°, approximately 3 m and "
                                "3.5 m away, respectively.")
    assert "−20°" in segments[2].text and segments[3].text == NO_SOURCE_SENTENCE
    for seg in segments:  # a segment says what each of its frames says
        assert {frames[f].text for f in range(seg.start_frame, seg.end_frame)} == {seg.text}
    assert (segments[1].start_s, segments[1].end_s) == (1.0, 1.5)


def test_write_captions_jsonl_and_txt(tmp_path):
    events = [Event(f, TELEPHONE, 0, -45.0, 200.0) for f in range(3, 8)]
    jsonl, txt = write_captions(tmp_path / "clip", frame_captions(events, 10))
    assert (jsonl.name, txt.name) == ("clip.captions.jsonl", "clip.captions.txt")
    records = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    frames = [r for r in records if r["kind"] == "frame"]
    segments = [r for r in records if r["kind"] == "segment"]
    assert [r["start_frame"] for r in frames] == list(range(10))
    assert frames[3]["events"] == [{"class_idx": 3, "class": "telephone", "source": 0, "azimuth_deg": -45.0,
                                    "distance_m": 2.0}]
    assert frames[3]["text"] == "The sound of telephone comes from direction −45°, approximately 2 m away."
    assert [(s["start_frame"], s["end_frame"]) for s in segments] == [(0, 3), (3, 8), (8, 10)]
    assert txt.read_text(encoding="utf-8").splitlines() == [
        f"0.0-0.3 s  {NO_SOURCE_SENTENCE}",
        "0.3-0.8 s  The sound of telephone comes from direction −45°, approximately 2 m away.",
        f"0.8-1.0 s  {NO_SOURCE_SENTENCE}",
    ]


def test_events_outside_the_frames_are_refused():
    with pytest.raises(ValueError, match="frame 5 outside"):
        frame_captions([Event(5, MAN, 0, 0.0, 100.0)], 5)
