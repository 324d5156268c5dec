"""Ground-truth sentences: a template filled with the words of one frame's events (spec section 6).

Conventions (they reproduce the seed README's four examples word for word):

- 0 sources -> :data:`NO_SOURCE_SENTENCE`, whatever the template.
- Sources are listed in the order given (``event_frame_sentences``, the writer of labels and
  predictions alike, gives them in class-index order, then by instance id); class words from :data:`seld.constants.SHORT_CLASS_NAMES`.
- Lists: "man", "man and woman", "footsteps, door, and knock" (serial comma from 3 items on).
- Azimuth in whole degrees, rounded half away from zero, then "°"; negative values always use the
  Unicode minus sign U+2212 ("−60°", as in the seed), never the ASCII hyphen; "0°" is never signed.
- Distance in metres rounded to the nearest 0.5 m (half away from zero): "3 m", "3.5 m", "0 m".
- Several sources: a noun directly before a slot that is in :data:`PLURAL_NOUNS` is made plural
  ("direction −60°" -> "directions −60° and 80°"), and ", respectively" goes before the final
  period.

- Crowded frames (the rule that keeps every sentence inside the text encoder's context): a sentence
  for 4 or more sources can exceed CLIP's 77 tokens (79 with 4 sources, 93 with 5). Given the
  tokenizer's ``fits`` test, :func:`ground_truth_sentence` keeps the longest prefix of the sources,
  in the order given (class index, then track id), whose sentence fits, and writes that sentence
  with the template as usual (so it still ends with ", respectively." or "."). The sources left
  out are not mentioned. A template that cannot hold even one source is a ConfigError.

Templates may write slots as ``{SRC}`` (ours) or ``<SRC>`` (the seed's); both are accepted.
"""
from __future__ import annotations

import math
import re
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from seld.constants import NUM_CLASSES, SHORT_CLASS_NAMES
from seld.data.metadata import Event
from seld.errors import ConfigError
from seld.text.templates import SLOT_DIST, SLOT_DOA, SLOT_SRC, SLOTS

NO_SOURCE_SENTENCE = "No audible sources are detected in the environment."
"""Ground truth for a frame without any active event."""

MINUS_SIGN = "\u2212"
"""Sign of negative azimuths in sentences (the seed writes "−60°")."""

PLURAL_NOUNS: dict[str, str] = {
    "direction": "directions",
    "azimuth": "azimuths",
    "angle": "angles",
    "bearing": "bearings",
    "distance": "distances",
    "range": "ranges",
}
"""Nouns that take the plural when they stand directly before a slot and there are several sources."""

_PLURAL_RE = re.compile(
    r"\b(" + "|".join(PLURAL_NOUNS) + r")(\s+)(?=" + "|".join(re.escape(s) for s in SLOTS) + r")"
)

SourceEvent = tuple[int, float, float]
"""One active source as ``(class_idx, azimuth_deg, distance_m)``."""


def normalize_template(template: str) -> str:
    """Return ``template`` with seed-style ``<SRC>``/``<DOA>``/``<DIST>`` slots written ``{SRC}`` etc.

    Raises ConfigError naming the template when a slot is missing or repeated, or when it does
    not end with a period.
    """
    text = template.replace("<SRC>", SLOT_SRC).replace("<DOA>", SLOT_DOA).replace("<DIST>", SLOT_DIST)
    counts = {slot: text.count(slot) for slot in SLOTS}
    if any(n != 1 for n in counts.values()):
        raise ConfigError(f"template must hold each of {SLOTS} exactly once, got {counts}: {template!r}")
    if not text.endswith("."):
        raise ConfigError(f"template must end with a period: {template!r}")
    return text


def _round_half_away(x: float) -> int:
    """Return ``x`` rounded to the nearest integer, halves away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def format_azimuth(azimuth_deg: float) -> str:
    """Return an azimuth as words: ``30.2 -> "30°"``, ``-60 -> "−60°"`` (U+2212 minus)."""
    value = _round_half_away(float(azimuth_deg))
    if value < 0:
        return f"{MINUS_SIGN}{-value}°"
    return f"{value}°"


def format_distance(distance_m: float) -> str:
    """Return a distance as words, rounded to 0.5 m: ``3.4 -> "3.5 m"``, ``3.2 -> "3 m"``."""
    distance_m = float(distance_m)
    if not (math.isfinite(distance_m) and distance_m >= 0.0):
        raise ValueError(f"distance must be a finite number of metres >= 0, got {distance_m}")
    halves = _round_half_away(distance_m * 2.0)
    if halves % 2 == 0:
        return f"{halves // 2} m"
    return f"{halves / 2:.1f} m"


def join_words(words: Sequence[str]) -> str:
    """Return an English list: ``"a"``, ``"a and b"``, ``"a, b, and c"``."""
    if not words:
        raise ValueError("join_words needs at least one word")
    if len(words) == 1:
        return words[0]
    if len(words) == 2:
        return f"{words[0]} and {words[1]}"
    return ", ".join(words[:-1]) + f", and {words[-1]}"


def _fill(text: str, events: list[SourceEvent]) -> str:
    """``text`` (a normalised template) filled with one or more ``events``."""
    words = {
        SLOT_SRC: join_words([SHORT_CLASS_NAMES[int(c)] for c, _, _ in events]),
        SLOT_DOA: join_words([format_azimuth(az) for _, az, _ in events]),
        SLOT_DIST: join_words([format_distance(d) for _, _, d in events]),
    }
    if len(events) > 1:
        text = _PLURAL_RE.sub(lambda m: PLURAL_NOUNS[m.group(1)] + m.group(2), text)
        text = text[:-1] + ", respectively."
    for slot, value in words.items():
        text = text.replace(slot, value)
    return text


def ground_truth_sentence(
    template: str, events: Iterable[SourceEvent], fits: Optional[Callable[[str], bool]] = None
) -> str:
    """Return the ground-truth sentence for one frame: ``template`` filled with ``events``.

    ``events``: ``(class_idx, azimuth_deg, distance_m)`` per active source, listed in that order.
    ``fits``: the text encoder's length test (e.g. ``TemplateTokenizer.fits``); when the full
    sentence does not fit, the longest prefix of ``events`` whose sentence fits is used (the
    crowded-frame rule of the module docstring). ConfigError if not even one source fits.
    """
    text = normalize_template(template)
    events = list(events)
    if not events:
        return NO_SOURCE_SENTENCE
    for class_idx, _, _ in events:
        if not 0 <= int(class_idx) < NUM_CLASSES:
            raise ValueError(f"class index must be in 0..{NUM_CLASSES - 1}, got {class_idx}")
    for n in range(len(events), 0, -1):
        sentence = _fill(text, events[:n])
        if fits is None or fits(sentence):
            return sentence
    raise ConfigError(f"template {template!r} does not fit the text encoder's context even with one source: {sentence!r}")


def event_frame_sentences(
    events: Iterable[Event], num_frames: int, template: str, fits: Optional[Callable[[str], bool]] = None
) -> list[str]:
    """Return one sentence per frame ``0 .. num_frames - 1`` of ``events`` (labels or predictions).

    The one writer of frame sentences: ground truth (:func:`frame_sentences`) and captions of
    predictions (:mod:`seld.text.captions`) both come from here. Within a frame, sources are
    listed by class index, then by source (track) id; distances are read in metres from
    ``distance_cm``. ``fits``: see :func:`ground_truth_sentence`. ValueError for an event outside
    the frames.
    """
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    per_frame: list[list[tuple[int, int, float, float]]] = [[] for _ in range(num_frames)]
    for e in events:
        if not 0 <= e.frame < num_frames:
            raise ValueError(f"event at frame {e.frame} outside the {num_frames} frames 0..{num_frames - 1}")
        per_frame[e.frame].append((e.class_idx, e.source, e.azimuth, e.distance_cm / 100.0))
    sentences = []
    for frame_events in per_frame:
        frame_events.sort(key=lambda item: (item[0], item[1]))
        sentences.append(ground_truth_sentence(template, [(c, az, d) for c, _, az, d in frame_events], fits))
    return sentences


def frame_sentences(target: np.ndarray, template: str, fits: Optional[Callable[[str], bool]] = None) -> list[str]:
    """Return one ground-truth sentence per frame of an ADPIT target ``(frames, 6, 4, 13)``.

    Events come from :func:`seld.data.targets.target_to_events` and are written by
    :func:`event_frame_sentences` (by class index, then by instance (track) id). ``fits``: see
    :func:`ground_truth_sentence` (crowded frames keep the sources that fit, in that order).
    """
    from seld.data.targets import target_to_events

    target = np.asarray(target)
    if target.ndim != 4:
        raise ValueError(f"target must be (frames, 6, 4, 13), got {tuple(target.shape)}")
    return event_frame_sentences(target_to_events(target), target.shape[0], template, fits)
