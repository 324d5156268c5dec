"""Asking a fine-tuned model in words: captions, sentence retrieval, text-queried localisation.

Everything here embeds text the way fine-tuning embeds its ground-truth sentences
(:func:`sentence_embedder`: the task's :class:`~seld.models.text_encoders.GroundTruthCache`, i.e.
the frozen text encoder with the checkpoint's own pooling), so a query lives in the space the
embedding loss pulls the audio-driven embedding A towards.

- Captions (:func:`caption_writer`, :func:`output_captions`): predictions written with the
  ground-truth writer (:mod:`seld.text.captions`), with the model's evaluation template and its
  text encoder's length rule.
- Retrieval (:func:`retrieve`): the frames of an embeddings file of ``seld embed``
  (:class:`~seld.embeddings.EmbeddingIndex`) ranked by the cosine between A and the query's
  embedding; clips ranked by their best frame. The file must come from the same checkpoint
  (:func:`check_index_checkpoint`).
- Class queries (:class:`ClassMatcher` over :func:`class_embedder`): the class a query names is the class whose descriptions
  (:data:`seld.text.paraphrases.CLASS_DESCRIPTIONS`) are closest to it; below a threshold the
  answer is "no match". :func:`class_track` gives that class's track in a model output;
  :func:`seld.query_scores.class_query_scores` scores "where is the <class>?" on a labelled set
  against the model's own output, and :func:`paraphrase_accuracy` measures the class step on
  fixed paraphrases.

The class step reads the encoder with the pooling its pre-training gave sentences
(:func:`class_embedder`), not necessarily the model's own, and compares *centred* cosines: the
mean embedding of the class descriptions is taken off the query and the descriptions first. Raw [CLS] or CLIP sentence embeddings share one
dominant direction (unrelated sentences have cosines of 0.6 to 0.9), so a raw-cosine threshold
would mean something else for every encoder and pooling; centring removes that shared part.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from seld.constants import LABEL_HOP_SECONDS, NUM_CLASSES, SHORT_CLASS_NAMES
from seld.data.metadata import Event
from seld.decoding import DEFAULT_MERGE_DEG, DEFAULT_THRESHOLD, decode_output
from seld.embeddings import EmbeddingIndex
from seld.errors import DataError
from seld.inference import InferenceOptions, InferenceReport, finetuned_task
from seld.models.text_encoders import FrozenTextEncoder, GroundTruthCache
from seld.tasks.finetune_task import FinetuneTask
from seld.tasks.loading import LoadedModel
from seld.text.captions import DEFAULT_CAPTION_TEMPLATE, Caption, frame_captions, stored_events, write_captions
from seld.text.paraphrases import CLASS_DESCRIPTIONS, DEFAULT_MATCH_THRESHOLD, PARAPHRASES
from seld.text.templates import TEMPLATES

CLASS_QUERY: str = "where is the {name}?"
"""The query of class-query localisation; ``{name}`` is the class's short name."""

SentenceEmbedder = Callable[[Sequence[str]], torch.Tensor]
"""Sentences -> embeddings ``(N, D)``."""


def sentence_embedder(source: Union[FinetuneTask, FrozenTextEncoder]) -> SentenceEmbedder:
    """Return the ground-truth sentence embedding of fine-tuning for a task (its own cache) or a bare
    encoder (a new cache over it): the frozen encoder, its pooling, no gradient."""
    if isinstance(source, FinetuneTask):
        return source.gt_cache.embed
    return GroundTruthCache(source).embed


def class_embedder(source: Union[FinetuneTask, FrozenTextEncoder]) -> SentenceEmbedder:
    """Return the sentence embedding of the class step: the frozen encoder read with the pooling its
    pre-training gave sentences (:attr:`~seld.models.text_encoders.FrozenTextEncoder.sentence_pooling`:
    MiniLM's mean, CLIP's end-of-text), whatever pooling the model reads A with. Matching a query to
    a class is a question to the encoder's language knowledge alone (A plays no part), and a [CLS]
    state that sentence-transformers never trained as a readout loses some of it."""
    encoder = source.text_encoder if isinstance(source, FinetuneTask) else source
    return GroundTruthCache(encoder, pooling=encoder.sentence_pooling).embed


# ----------------------------------------------------------------------------- class step
@dataclass(frozen=True)
class ClassMatch:
    """The class a query names: ``class_idx`` None when the best score is below the threshold."""

    query: str
    class_idx: Optional[int]
    score: float
    """Best centred cosine over the descriptions of ``best_class``."""
    best_class: int
    """The closest class, whether or not it passed the threshold."""
    threshold: float

    @property
    def name(self) -> Optional[str]:
        return None if self.class_idx is None else SHORT_CLASS_NAMES[self.class_idx]


class ClassMatcher:
    """Maps a query to a class by its embedding against the class descriptions (no keyword list).

    ``embed``: a :data:`SentenceEmbedder` (see :func:`sentence_embedder`). A class's score is the best
    centred cosine between the query and that class's descriptions.
    """

    def __init__(self, embed: SentenceEmbedder, threshold: float = DEFAULT_MATCH_THRESHOLD,
                 descriptions: Sequence[Sequence[str]] = CLASS_DESCRIPTIONS) -> None:
        if len(descriptions) != NUM_CLASSES or not all(descriptions):
            raise ValueError(f"descriptions must give at least one sentence for each of the {NUM_CLASSES} classes")
        self.embed = embed
        self.threshold = float(threshold)
        texts = [d for per_class in descriptions for d in per_class]
        self.owner = np.repeat(np.arange(NUM_CLASSES), [len(d) for d in descriptions])
        emb = embed(texts).detach().float().cpu()
        self.centre = emb.mean(0)
        self.descriptions = F.normalize(emb - self.centre, dim=-1)  # (n_descriptions, D)

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """Per-class scores ``(N, 13)`` of ``queries``: the best centred cosine over each class's descriptions."""
        q = F.normalize(self.embed(list(queries)).detach().float().cpu() - self.centre, dim=-1)
        sim = (q @ self.descriptions.T).numpy()  # (N, n_descriptions)
        out = np.full((len(queries), NUM_CLASSES), -np.inf)
        for c in range(NUM_CLASSES):
            out[:, c] = sim[:, self.owner == c].max(axis=1)
        return out

    def match(self, queries: Sequence[str]) -> list[ClassMatch]:
        """The class each query names (or None below the threshold)."""
        scores = self.scores(queries)
        best = scores.argmax(axis=1)
        return [
            ClassMatch(q, int(b) if s[b] >= self.threshold else None, float(s[b]), int(b), self.threshold)
            for q, s, b in zip(queries, scores, best)
        ]


def paraphrase_accuracy(text_encoder: Union[FrozenTextEncoder, FinetuneTask], threshold: Optional[float] = None,
                        paraphrases: Sequence[tuple[str, int]] = PARAPHRASES) -> float:
    """Fraction of :data:`~seld.text.paraphrases.PARAPHRASES` that the class step maps to their class.

    ``threshold`` None: the closest class counts (the encoder's language knowledge); a number: a
    paraphrase scoring below it ("no match") counts as wrong (what a user of ``seld query`` gets).
    """
    matcher = ClassMatcher(class_embedder(text_encoder), -np.inf if threshold is None else threshold)
    matches = matcher.match([text for text, _ in paraphrases])
    return float(np.mean([m.class_idx == c for m, (_, c) in zip(matches, paraphrases)]))


# ----------------------------------------------------------------------------- captions
def caption_settings(model: LoadedModel) -> tuple[str, Optional[Callable[[str], bool]]]:
    """(template, length test) of a model's captions: a fine-tuned model's evaluation template and
    its text encoder's ``fits`` (the crowded-frame rule of its ground truth); else template 1, no limit."""
    task = model.task
    if isinstance(task, FinetuneTask):
        return TEMPLATES[task.eval_template], task.text_encoder.tokenizer.fits
    return TEMPLATES[DEFAULT_CAPTION_TEMPLATE], None


def output_captions(model: LoadedModel, output: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
                    merge_deg: float = DEFAULT_MERGE_DEG) -> list[Caption]:
    """One caption per frame of an activated output ``(frames, 117)``, from its events as the CSV stores them."""
    template, fits = caption_settings(model)
    return frame_captions(stored_events(decode_output(output, threshold, merge_deg)), output.shape[0], template, fits)


def caption_writer(model: LoadedModel) -> Callable[[Path, list[Event], int], tuple[Path, Path]]:
    """The ``on_events`` hook of :func:`seld.inference.infer_to_csv` that writes ``<clip>.captions.jsonl``
    and ``.txt`` beside each ``<clip>.csv`` (frame and segment captions of the CSV's events)."""
    template, fits = caption_settings(model)

    def write(csv_path: Path, events: list[Event], label_frames: int) -> tuple[Path, Path]:
        caps = frame_captions(stored_events(events), label_frames, template, fits)
        return write_captions(Path(csv_path).with_suffix(""), caps)

    return write


# ----------------------------------------------------------------------------- retrieval
def check_index_checkpoint(index: EmbeddingIndex, checkpoint: str | os.PathLike[str] | None) -> Path:
    """Return the checkpoint to embed queries for ``index``: ``checkpoint`` if given, else the one it records.

    DataError when the index records no checkpoint, when the recorded one is gone and none is
    given, or when the checkpoint's bytes differ from those that made the index (both named).
    """
    from seld.io_utils import file_sha256

    if index.checkpoint_sha256 is None:
        raise DataError(f"{index.path}: records no checkpoint (written by an older seld embed); "
                        "run seld embed again to make an index that can be queried")
    if checkpoint is None:
        if not index.checkpoint or not Path(index.checkpoint).is_file():
            raise DataError(f"{index.path}: its checkpoint {index.checkpoint} is not found; pass --checkpoint CKPT "
                            "(the same file, moved)")
        checkpoint = index.checkpoint
    path = Path(checkpoint)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    digest = file_sha256(path)
    if digest != index.checkpoint_sha256:
        raise DataError(
            f"checkpoint {path} (sha256 {digest[:12]}) is not the one that made {index.path}: "
            f"{index.checkpoint} (sha256 {index.checkpoint_sha256[:12]}); query with that checkpoint or "
            "run seld embed again"
        )
    return path


@dataclass
class FrameHit:
    """One ranked frame: recording, frame, cosine, and the events the model decoded there."""

    clip: str
    frame: int
    score: float
    events: list[Event] = field(default_factory=list)
    """As the CSV stores them (empty when the index holds no outputs)."""
    caption: Optional[str] = None
    """The frame's caption (None when the index holds no outputs)."""

    def to_dict(self) -> dict[str, Any]:
        from seld.text.captions import event_record

        return {
            "clip": self.clip, "start_frame": self.frame, "end_frame": self.frame + 1,
            "start_s": round(self.frame * LABEL_HOP_SECONDS, 6), "end_s": round((self.frame + 1) * LABEL_HOP_SECONDS, 6),
            "score": self.score, "events": [event_record(e) for e in self.events] if self.caption is not None else None,
            "caption": self.caption,
        }


@dataclass
class RetrievalResult:
    """Frames and clips of an index ranked for one query."""

    query: str
    checkpoint: str
    frames: list[FrameHit]
    """The ``top`` best frames, best first."""
    clips: list[FrameHit]
    """The ``top`` best clips (each at its best frame), best first."""
    n_frames: int
    """Frames in the index."""

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "checkpoint": self.checkpoint, "n_frames": self.n_frames,
                "frames": [h.to_dict() for h in self.frames], "clips": [h.to_dict() for h in self.clips]}


def rank_frames(index: EmbeddingIndex, query: np.ndarray | torch.Tensor, top: int) -> tuple[list[FrameHit], list[FrameHit]]:
    """The ``top`` frames and clips of ``index`` by cosine between A ``(frames, D)`` and ``query (D,)``.

    Ties keep file order (clip, then frame). Returns (frames, clips), events not filled in.
    """
    q = torch.as_tensor(np.asarray(query, dtype=np.float32)).reshape(-1)
    clips = list(index.embeddings)
    width = next(iter(index.embeddings.values())).shape[1]
    if q.numel() != width:
        raise DataError(f"{index.path}: embeddings are {width}-dimensional but the query embedding has {q.numel()} values "
                        "(a text encoder of another width)")
    a = torch.as_tensor(np.concatenate([index.embeddings[c] for c in clips]).astype(np.float32))
    owner = np.repeat(np.arange(len(clips)), [index.embeddings[c].shape[0] for c in clips])
    start = np.concatenate([[0], np.cumsum([index.embeddings[c].shape[0] for c in clips])[:-1]])
    scores = (F.normalize(a, dim=-1) @ F.normalize(q, dim=0)).numpy()
    order = np.argsort(-scores, kind="stable")
    frames = [FrameHit(clips[owner[i]], int(i - start[owner[i]]), float(scores[i])) for i in order[:top]]
    best: dict[int, int] = {}
    for i in order:  # first visit of a clip is its best frame
        best.setdefault(int(owner[i]), int(i))
        if len(best) == min(top, len(clips)):
            break
    clip_hits = [FrameHit(clips[c], int(i - start[c]), float(scores[i])) for c, i in best.items()]
    return frames, clip_hits


def retrieve(index: EmbeddingIndex, model: LoadedModel, text: str, top: int = 10, checkpoint: str = "",
             threshold: float = DEFAULT_THRESHOLD, merge_deg: float = DEFAULT_MERGE_DEG) -> RetrievalResult:
    """Rank the frames and clips of ``index`` for ``text`` embedded by ``model``'s frozen text encoder.

    ``model`` must be the checkpoint that made ``index`` (see :func:`check_index_checkpoint`). Each
    hit carries the events decoded from the stored output at its frame (``threshold``,
    ``merge_deg``) and their caption, when the index stores outputs.
    """
    task = finetuned_task(model, "retrieval needs")
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    query = sentence_embedder(task)([text])[0].detach().float().cpu()
    frames, clips = rank_frames(index, query, top)
    if index.outputs:
        template, fits = caption_settings(model)
        for hit in frames + clips:
            events = stored_events(decode_output(index.outputs[hit.clip][hit.frame : hit.frame + 1], threshold, merge_deg))
            hit.caption = frame_captions(events, 1, template, fits)[0].text  # the frame alone, as frame 0
            hit.events = [dataclasses.replace(e, frame=hit.frame) for e in events]
    n_frames = sum(v.shape[0] for v in index.embeddings.values())
    return RetrievalResult(text, checkpoint, frames, clips, n_frames)


# ----------------------------------------------------------------------------- class-queried localisation
def class_track(output: np.ndarray, class_idx: int, threshold: float = DEFAULT_THRESHOLD,
                merge_deg: float = DEFAULT_MERGE_DEG) -> list[Event]:
    """The events of class ``class_idx`` in an activated output ``(frames, 117)``, as the CSV stores them."""
    return [e for e in stored_events(decode_output(output, threshold, merge_deg)) if e.class_idx == class_idx]


@dataclass(frozen=True)
class TrackSegment:
    """A run of consecutive frames of one source: its median azimuth (degrees) and distance (m)."""

    source: int
    start_frame: int
    end_frame: int
    """Exclusive."""
    azimuth_deg: float
    distance_m: float

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "start_frame": self.start_frame, "end_frame": self.end_frame,
                "start_s": round(self.start_frame * LABEL_HOP_SECONDS, 6),
                "end_s": round(self.end_frame * LABEL_HOP_SECONDS, 6),
                "azimuth_deg": self.azimuth_deg, "distance_m": self.distance_m}


def track_segments(events: Sequence[Event]) -> list[TrackSegment]:
    """Runs of consecutive frames per source id of one class's events, in time order."""
    runs: list[list[Event]] = []
    for source in sorted({e.source for e in events}):
        mine = sorted((e for e in events if e.source == source), key=lambda e: e.frame)
        for e in mine:
            if runs and runs[-1][0].source == source and runs[-1][-1].frame == e.frame - 1:
                runs[-1].append(e)
            else:
                runs.append([e])
    segments = [
        TrackSegment(run[0].source, run[0].frame, run[-1].frame + 1,
                     float(np.median([e.azimuth for e in run])), float(np.median([e.distance_cm for e in run])) / 100.0)
        for run in runs
    ]
    return sorted(segments, key=lambda s: (s.start_frame, s.source))


@dataclass
class RecordingTrack:
    """One recording's answer to a class query: the class's events and their segments."""

    audio: Path
    label_frames: int
    events: list[Event]

    @property
    def segments(self) -> list[TrackSegment]:
        return track_segments(self.events)

    def to_dict(self) -> dict[str, Any]:
        from seld.text.captions import event_record

        return {"audio": str(self.audio), "frames": self.label_frames,
                "segments": [s.to_dict() for s in self.segments],
                "track": [{"frame": e.frame, **event_record(e)} for e in self.events]}


def localise_class(model: LoadedModel, audio_path: str | os.PathLike[str], class_idx: int,
                   opts: Optional[InferenceOptions] = None, device: str | torch.device = "cpu",
                   ) -> tuple[list[RecordingTrack], InferenceReport]:
    """The track of class ``class_idx`` in each WAV of ``audio_path`` (a file or a folder).

    Every file is tried; those that cannot be read are listed in the report's ``failed``.
    """
    from seld.data.audio import load_stereo
    from seld.inference import CLI_HINTS, audio_config, list_audio, predict_recordings

    opts = opts or InferenceOptions()
    files = list_audio(audio_path)
    report = InferenceReport()
    acfg = audio_config(model, opts)

    def recordings():
        for wav in files:
            try:
                audio = load_stereo(wav, acfg, hints=CLI_HINTS)
            except DataError as exc:
                report.failed.append((wav, str(exc)))
                continue
            yield wav, audio

    tracks = []
    for wav, out in predict_recordings(model, recordings(), opts, device):
        tracks.append(RecordingTrack(wav, out.shape[0], class_track(out, class_idx, opts.threshold, opts.merge_deg)))
        report.done.append(wav)
    return tracks, report
