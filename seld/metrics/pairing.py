"""Pairing of reference and predicted tracks and counting of the per (clip, class) statistics.

Scoring is vectorised over clips: tracks are paired by exhaustive search over assignments for
small cells (identical to Hungarian when the optimum is unique), falling back to
``scipy.optimize.linear_sum_assignment`` for ties and large cells, so tie-breaking matches the
official code too.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from seld.constants import NUM_CLASSES
from seld.data.metadata import fold_azimuth
from seld.metrics.scores import EPS, N_STATS, MetricConfig, Stat

_MAX_ENUM_TRACKS = 4  # cells with more tracks than this go to scipy's Hungarian solver
_TIE_TOL = 1e-9


@functools.lru_cache(maxsize=None)
def _assignments(n_ref: int, n_pred: int) -> tuple[np.ndarray, np.ndarray]:
    """All maximal one-to-one pairings of ``n_ref`` rows and ``n_pred`` columns: (rows, cols) ``(A, K)``."""
    k = min(n_ref, n_pred)
    if n_ref <= n_pred:
        cols = np.array(list(itertools.permutations(range(n_pred), k)), dtype=np.int64)
        rows = np.broadcast_to(np.arange(k), cols.shape).copy()
    else:
        rows = np.array(list(itertools.permutations(range(n_ref), k)), dtype=np.int64)
        cols = np.broadcast_to(np.arange(k), rows.shape).copy()
    return rows, cols


@dataclass
class EventArrays:
    """Events of many clips as flat arrays (azimuth folded, distance in cm)."""

    clip: np.ndarray
    frame: np.ndarray
    cls: np.ndarray
    az: np.ndarray
    dist_cm: np.ndarray

    @staticmethod
    def concat(parts: Sequence[tuple[int, np.ndarray]]) -> "EventArrays":
        """Join ``(clip index, (N, 4) [frame, class, azimuth, distance])`` blocks."""
        if not parts:
            empty = np.zeros(0)
            return EventArrays(empty.astype(np.int64), empty.astype(np.int64), empty.astype(np.int64), empty, empty)
        clip = np.concatenate([np.full(len(a), i, dtype=np.int64) for i, a in parts])
        data = np.concatenate([a for _, a in parts], axis=0)
        return EventArrays(
            clip, data[:, 0].astype(np.int64), data[:, 1].astype(np.int64),
            np.asarray(fold_azimuth(data[:, 2]), dtype=np.float64), data[:, 3],
        )


def score_batch(ref: EventArrays, pred: EventArrays, n_clips: int, cfg: MetricConfig) -> np.ndarray:
    """Return per (clip, class) statistics ``(n_clips, 13, 10)`` for already frame-filtered events.

    Events of one (clip, frame, class) cell keep their input order (the CSV row order), which is
    the row/column order handed to the Hungarian solver, as in the official code.
    """
    out = np.zeros((n_clips * NUM_CLASSES, N_STATS), dtype=np.float64)
    n_slots = n_clips * NUM_CLASSES
    if ref.clip.size == 0 and pred.clip.size == 0:
        return out.reshape(n_clips, NUM_CLASSES, N_STATS)
    n_frame_keys = int(max(ref.frame.max(initial=0), pred.frame.max(initial=0))) + 1

    def cell_key(e: EventArrays) -> np.ndarray:
        return (e.clip * n_frame_keys + e.frame) * NUM_CLASSES + e.cls

    def slot_of(key: np.ndarray) -> np.ndarray:  # clip * 13 + class
        return (key // (n_frame_keys * NUM_CLASSES)) * NUM_CLASSES + key % NUM_CLASSES

    def add(col: int, slots: np.ndarray, weights: np.ndarray | None = None) -> None:
        if slots.size:
            out[:, col] += np.bincount(slots, weights=weights, minlength=n_slots)

    key_r, key_p = cell_key(ref), cell_key(pred)
    order_r, order_p = np.argsort(key_r, kind="stable"), np.argsort(key_p, kind="stable")
    key_r, az_r, d_r = key_r[order_r], ref.az[order_r], ref.dist_cm[order_r]
    key_p, az_p, d_p = key_p[order_p], pred.az[order_p], pred.dist_cm[order_p]
    cells_r, start_r, count_r = np.unique(key_r, return_index=True, return_counts=True)
    cells_p, start_p, count_p = np.unique(key_p, return_index=True, return_counts=True)
    add(Stat.N_REF, slot_of(key_r))
    add(Stat.N_PRED, slot_of(key_p))

    common, ir, ip = np.intersect1d(cells_r, cells_p, assume_unique=True, return_indices=True)
    only_r = np.ones(cells_r.size, dtype=bool)
    only_r[ir] = False
    only_p = np.ones(cells_p.size, dtype=bool)
    only_p[ip] = False
    add(Stat.FN, slot_of(cells_r[only_r]), count_r[only_r].astype(np.float64))
    add(Stat.FP, slot_of(cells_p[only_p]), count_p[only_p].astype(np.float64))
    if common.size == 0:
        return out.reshape(n_clips, NUM_CLASSES, N_STATS)

    n_r, n_p = count_r[ir], count_p[ip]
    common_slot = slot_of(common)
    add(Stat.FN, common_slot, np.maximum(n_r - n_p, 0).astype(np.float64))
    add(Stat.FP, common_slot, np.maximum(n_p - n_r, 0).astype(np.float64))

    # Pair the tracks of every cell that has both references and predictions, grouped by shape.
    pair_slot, pair_ang, pair_dr, pair_dp = [], [], [], []
    shape_code = n_r * 1_000_003 + n_p
    for code in np.unique(shape_code):
        g = np.nonzero(shape_code == code)[0]
        nr, npred = int(n_r[g[0]]), int(n_p[g[0]])
        ri = start_r[ir[g]][:, None] + np.arange(nr)  # (G, nr) indices into the sorted refs
        pi = start_p[ip[g]][:, None] + np.arange(npred)  # (G, np)
        cost = np.abs(az_r[ri][:, :, None] - az_p[pi][:, None, :])  # (G, nr, np)
        k = min(nr, npred)
        if nr == 1 and npred == 1:
            rows = np.zeros((g.size, 1), dtype=np.int64)
            cols = rows.copy()
            solve = np.zeros(g.size, dtype=bool)
        elif max(nr, npred) <= _MAX_ENUM_TRACKS:
            cand_rows, cand_cols = _assignments(nr, npred)
            totals = cost[:, cand_rows, cand_cols].sum(axis=-1)  # (G, A)
            best = totals.argmin(axis=1)
            rows, cols = cand_rows[best], cand_cols[best]
            # several optimal pairings: let scipy choose, as the official code does
            solve = (totals <= totals.min(axis=1, keepdims=True) + _TIE_TOL).sum(axis=1) > 1
        else:
            rows = np.zeros((g.size, k), dtype=np.int64)
            cols = rows.copy()
            solve = np.ones(g.size, dtype=bool)
        for j in np.nonzero(solve)[0]:
            r, c = linear_sum_assignment(cost[j])
            rows[j], cols[j] = r, c
        gi = np.arange(g.size)[:, None]
        pair_slot.append(np.repeat(common_slot[g], k))
        pair_ang.append(cost[gi, rows, cols].reshape(-1))
        pair_dr.append(d_r[ri[gi, rows]].reshape(-1))
        pair_dp.append(d_p[pi[gi, cols]].reshape(-1))

    slots = np.concatenate(pair_slot)
    ang = np.concatenate(pair_ang)
    dist_err = np.abs(np.concatenate(pair_dr) - np.concatenate(pair_dp))
    rel_err = dist_err / (np.concatenate(pair_dr) + EPS)
    spatial_fp = (ang > cfg.doa_threshold_deg) | (rel_err > cfg.rel_dist_threshold)
    if cfg.abs_dist_threshold_m is not None:
        spatial_fp |= dist_err > cfg.abs_dist_threshold_m * 100.0
    add(Stat.N_PAIRS, slots)
    add(Stat.FP_SPATIAL, slots, spatial_fp.astype(np.float64))
    add(Stat.TP, slots, (~spatial_fp).astype(np.float64))
    add(Stat.SUM_ANG, slots, ang)
    add(Stat.SUM_REL, slots, rel_err)
    add(Stat.SUM_DIST_CM, slots, dist_err)
    return out.reshape(n_clips, NUM_CLASSES, N_STATS)
