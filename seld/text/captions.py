"""Captions: a model's decoded predictions written as the ground-truth sentences are written.

One writer for labels and predictions: :func:`seld.text.sentences.event_frame_sentences` (the
templates, number formats, plural and crowded-frame rules of spec section 6). A prediction equal to
the labels gets the label sentence, word for word.

- :func:`frame_captions`: one caption per 100 ms frame (silent frames get
  :data:`~seld.text.sentences.NO_SOURCE_SENTENCE`).
- :func:`segment_captions`: one caption per segment of unchanged events, i.e. per run of
  consecutive frames whose sentences are equal (same classes, same azimuths and distances in
  words). Every frame of a segment has the segment's sentence, so a segment never says what one of
  its frames does not; a source whose azimuth crosses a rounding step starts a new segment.
- :func:`stored_events`: predictions as a DCASE2025 CSV stores them (azimuth folded to
  [-90, 90] and rounded to whole degrees, distance rounded to whole cm), so a caption says
  exactly what the CSV beside it says.
- :func:`write_captions`: ``<stem>.captions.jsonl`` (one JSON record per frame, then one per
  segment) and ``<stem>.captions.txt`` (the segments, one line each).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from seld.constants import LABEL_HOP_SECONDS, SHORT_CLASS_NAMES
from seld.data.metadata import Event, fold_azimuth
from seld.io_utils import atomic_write_text
from seld.text.sentences import event_frame_sentences
from seld.text.templates import TEMPLATES

DEFAULT_CAPTION_TEMPLATE: int = 1
"""Index into TEMPLATES used when the model has no evaluation template of its own ("The sound of
{SRC} comes from direction {DOA}, approximately {DIST} away."; a fine-tuned model's default too)."""


@dataclass(frozen=True)
class Caption:
    """A sentence for frames ``start_frame .. end_frame - 1`` and the events it was written from.

    ``events``: the frame's events for a frame caption; empty for a segment caption (its frames'
    events are in the frame captions).
    """

    start_frame: int
    end_frame: int
    text: str
    events: tuple[Event, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.start_frame < self.end_frame:
            raise ValueError(f"caption frames must satisfy 0 <= start < end, got {self.start_frame}..{self.end_frame}")

    @property
    def start_s(self) -> float:
        return round(self.start_frame * LABEL_HOP_SECONDS, 6)

    @property
    def end_s(self) -> float:
        return round(self.end_frame * LABEL_HOP_SECONDS, 6)

    def to_dict(self, kind: str) -> dict[str, Any]:
        """JSON record: kind (``frame`` / ``segment``), frame range (end exclusive), seconds, text, events."""
        record: dict[str, Any] = {
            "kind": kind, "start_frame": self.start_frame, "end_frame": self.end_frame,
            "start_s": self.start_s, "end_s": self.end_s, "text": self.text,
        }
        if kind == "frame":
            record["events"] = [event_record(e) for e in self.events]
        return record


def event_record(e: Event) -> dict[str, Any]:
    """JSON form of one event: class index and word, source (track) id, azimuth (degrees), distance (m)."""
    return {
        "class_idx": e.class_idx, "class": SHORT_CLASS_NAMES[e.class_idx], "source": e.source,
        "azimuth_deg": e.azimuth, "distance_m": round(e.distance_cm / 100.0, 4),
    }


def stored_events(events: Iterable[Event]) -> list[Event]:
    """Return ``events`` as a DCASE2025 CSV stores them: azimuth folded to [-90, 90] and rounded to
    whole degrees, distance rounded to whole cm (the values :func:`seld.data.metadata.format_metadata_csv`
    writes)."""
    from seld.decoding import quantize_events

    return quantize_events([dataclasses.replace(e, azimuth=float(fold_azimuth(e.azimuth))) for e in events])


def frame_captions(
    events: Iterable[Event], num_frames: int, template: str = TEMPLATES[DEFAULT_CAPTION_TEMPLATE],
    fits: Optional[Callable[[str], bool]] = None,
) -> list[Caption]:
    """Return one caption per frame ``0 .. num_frames - 1`` of ``events`` (labels or stored predictions).

    The sentences are those of :func:`seld.text.sentences.event_frame_sentences` (``fits``: the text
    encoder's length test, for the crowded-frame rule).
    """
    events = list(events)
    sentences = event_frame_sentences(events, num_frames, template, fits)
    per_frame: list[list[Event]] = [[] for _ in range(num_frames)]
    for e in sorted(events, key=lambda e: (e.frame, e.class_idx, e.source)):
        per_frame[e.frame].append(e)
    return [Caption(f, f + 1, text, tuple(per_frame[f])) for f, text in enumerate(sentences)]


def segment_captions(frames: Sequence[Caption]) -> list[Caption]:
    """Merge consecutive frame captions with the same sentence into one caption per segment."""
    segments: list[Caption] = []
    for cap in frames:
        last = segments[-1] if segments else None
        if last is not None and last.text == cap.text and last.end_frame == cap.start_frame:
            segments[-1] = Caption(last.start_frame, cap.end_frame, last.text)
        else:
            segments.append(Caption(cap.start_frame, cap.end_frame, cap.text))
    return segments


def format_segment_line(cap: Caption) -> str:
    """``"0.0-1.2 s  The sound of ..."``: one line of the ``.txt`` file."""
    return f"{cap.start_s:.1f}-{cap.end_s:.1f} s  {cap.text}"


def write_captions(
    stem_path: str | os.PathLike[str], frames: Sequence[Caption], segments: Sequence[Caption] | None = None
) -> tuple[Path, Path]:
    """Write ``<stem_path>.captions.jsonl`` and ``<stem_path>.captions.txt`` (atomically); returns both paths.

    ``segments`` default to :func:`segment_captions` of ``frames``.
    """
    segments = segment_captions(frames) if segments is None else segments
    stem = Path(stem_path)
    jsonl = stem.with_name(stem.name + ".captions.jsonl")
    txt = stem.with_name(stem.name + ".captions.txt")
    lines = [json.dumps(c.to_dict("frame"), ensure_ascii=False) for c in frames]
    lines += [json.dumps(c.to_dict("segment"), ensure_ascii=False) for c in segments]
    atomic_write_text(jsonl, "".join(line + "\n" for line in lines))
    atomic_write_text(txt, "".join(format_segment_line(c) + "\n" for c in segments))
    return jsonl, txt
