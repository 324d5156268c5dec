"""SeldScorer: accumulates clips under a mode (``dcase2025`` with the official quirks, or ``strict``)
and scores them in batches (see :mod:`seld.metrics` for the definitions)."""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from seld.constants import NUM_CLASSES
from seld.data.metadata import Event
from seld.metrics.jackknife import JACKKNIFE_TRANSFORMS, JackknifeEstimate, JackknifeTransform, jackknife_ci
from seld.metrics.pairing import EventArrays, score_batch
from seld.metrics.scores import N_STATS, MetricConfig, SeldScores, Stat, summarise

_FLUSH_CLIPS = 2048  # clips buffered before they are paired and counted as one batch


def _events_to_array(events: Iterable[Event]) -> np.ndarray:
    """``(N, 4)`` float64 rows [frame, class, azimuth, distance_cm] in input order."""
    rows = [(e.frame, e.class_idx, e.azimuth, e.distance_cm) for e in events]
    if not rows:
        return np.zeros((0, 4), dtype=np.float64)
    return np.asarray(rows, dtype=np.float64)


class SeldScorer:
    """Accumulates clips one by one and scores them together (definitions in :mod:`seld.metrics`).

    ``scorer.add_clip(pred_events, ref_events)`` per clip (``pred_events=None`` when the clip has
    no prediction), then ``scorer.result()``; ``scorer.jackknife()`` gives confidence intervals.
    """

    def __init__(self, cfg: MetricConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else MetricConfig()
        self.clip_ids: list[str | None] = []
        self._clip_stats: list[np.ndarray] = []  # blocks (n, 13, 10)
        self._pending_ref: list[tuple[int, np.ndarray]] = []
        self._pending_pred: list[tuple[int, np.ndarray]] = []
        self._pending_start = 0
        self.n_frames = 0
        self.n_missing_prediction = 0
        self.n_empty_reference = 0
        self.n_pred_past_end = 0
        """Predicted events past their clip's end (see :attr:`SeldScores.n_pred_past_end`)."""

    @property
    def n_clips(self) -> int:
        """Clips scored so far."""
        return len(self.clip_ids)

    def add_clip(
        self, pred_events: Sequence[Event] | None, ref_events: Sequence[Event], clip_id: str | None = None
    ) -> bool:
        """Add one clip; returns False when the mode skips it (dcase2025: no prediction).

        In strict mode a reference event at frame >= ``num_frames`` raises ValueError; predicted
        events outside the scored frames are ignored in both modes, and those past the clip's end
        (frame >= ``num_frames`` and past the last reference frame) are counted in
        :attr:`n_pred_past_end`.
        """
        cfg = self.cfg
        if pred_events is None:
            self.n_missing_prediction += 1
            if cfg.mode == "dcase2025":
                return False
            pred_events = []
        ref = _events_to_array(ref_events)
        pred = _events_to_array(pred_events)
        if cfg.mode == "dcase2025":
            # official quirk: frames 0 .. (largest annotated frame index - 1) are scored
            n_frames = int(ref[:, 0].max()) if len(ref) else 0
        else:
            n_frames = cfg.num_frames
            if len(ref) and ref[:, 0].max() >= n_frames:
                where = f" of clip {clip_id}" if clip_id is not None else ""
                raise ValueError(
                    f"reference{where} has an event at frame {int(ref[:, 0].max())}, "
                    f"outside the {n_frames} frames scored in strict mode"
                )
        if len(ref) == 0:
            self.n_empty_reference += 1
        clip_end = max(cfg.num_frames, int(ref[:, 0].max()) + 1 if len(ref) else 0)
        self.n_pred_past_end += int(np.count_nonzero(pred[:, 0] >= clip_end))
        self.n_frames += n_frames
        index = self.n_clips - self._pending_start
        self._pending_ref.append((index, ref[ref[:, 0] < n_frames]))
        self._pending_pred.append((index, pred[pred[:, 0] < n_frames]))
        self.clip_ids.append(clip_id)
        if self.n_clips - self._pending_start >= _FLUSH_CLIPS:
            self._flush()
        return True

    def _flush(self) -> None:
        n = self.n_clips - self._pending_start
        if n == 0:
            return
        ref = EventArrays.concat(self._pending_ref)
        pred = EventArrays.concat(self._pending_pred)
        self._clip_stats.append(score_batch(ref, pred, n, self.cfg))
        self._pending_ref, self._pending_pred = [], []
        self._pending_start = self.n_clips

    def clip_stats(self) -> np.ndarray:
        """Per-clip statistics ``(n_clips, 13, 10)`` (TP, FP, FP_spatial, FN, pairs, error sums, counts)."""
        self._flush()
        if not self._clip_stats:
            return np.zeros((0, NUM_CLASSES, N_STATS))
        return np.concatenate(self._clip_stats, axis=0)

    def result(self) -> SeldScores:
        """Return the scores of every clip added so far."""
        per_clip = self.clip_stats()
        total = per_clip.sum(axis=0)  # (13, 10)
        m = summarise(total, self.cfg.average)
        as_int = lambda col: np.rint(total[:, col]).astype(np.int64)  # noqa: E731
        return SeldScores(
            F=float(m["F"]), DOAE=float(m["DOAE"]), RDE=float(m["RDE"]), DE_m=float(m["DE_m"]),
            classwise_F=m["classwise_F"], classwise_DOAE=m["classwise_DOAE"],
            classwise_RDE=m["classwise_RDE"], classwise_DE_m=m["classwise_DE_m"],
            TP=as_int(Stat.TP), FP=as_int(Stat.FP), FP_spatial=as_int(Stat.FP_SPATIAL), FN=as_int(Stat.FN),
            n_pairs=as_int(Stat.N_PAIRS), n_ref=as_int(Stat.N_REF), n_pred=as_int(Stat.N_PRED),
            n_clips=self.n_clips, n_frames=self.n_frames,
            n_missing_prediction=self.n_missing_prediction, n_empty_reference=self.n_empty_reference,
            mode=self.cfg.mode, average=self.cfg.average, config=self.cfg, n_pred_past_end=self.n_pred_past_end,
        )

    def jackknife(
        self,
        significance_level: float = 0.05,
        transforms: Mapping[str, tuple[JackknifeTransform, float]] | None = None,
    ) -> dict[str, JackknifeEstimate]:
        """Return leave-one-clip-out jackknife estimates of ``F``, ``DOAE`` and ``RDE``.

        The partial estimates come from subtracting each clip's statistics from the totals, which
        equals re-scoring without that clip (the official code re-scores n times). Intervals are
        built on the scale of ``transforms`` (default :data:`JACKKNIFE_TRANSFORMS`: logit for F in
        [0, 1] and DOAE in [0, 180], log for RDE, so no interval leaves the metric's range); pass
        ``{"DOAE": ("none", 0), ...}`` for the official raw-scale t interval.
        """
        transforms = {**JACKKNIFE_TRANSFORMS, **(transforms or {})}
        per_clip = self.clip_stats()
        if per_clip.shape[0] < 2:
            raise ValueError(f"jackknife needs at least 2 scored clips, got {per_clip.shape[0]}")
        total = per_clip.sum(axis=0)
        full = summarise(total, self.cfg.average)
        partial = summarise(total[None] - per_clip, self.cfg.average)
        return {
            name: jackknife_ci(float(full[name]), partial[name], significance_level, *transforms[name])
            for name in ("F", "DOAE", "RDE")
        }
