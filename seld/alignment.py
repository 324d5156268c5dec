"""How well the audio-driven embedding A finds its own sentence: retrieval among sentence embeddings.

For each frame, the cosine between its A (``seld embed``) and every candidate sentence's embedding
E_text (the same frozen encoder, e.g. every distinct ground-truth sentence of a set) ranks the
candidates; the frame's ground-truth sentence should come first. Reported against chance (a
uniformly random ranking), with the mean cosine and the mean absolute error between A and its own
E_text (the paper's alignment loss) and, for scale, the spread of the candidates around their mean.
NumPy only: usable by the commands, the benchmark and the tests alike.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

RECALL_KS: tuple[int, ...] = (1, 5, 10)
"""The k of the reported recalls R@k."""


@dataclass(frozen=True)
class RetrievalScores:
    """Sentence retrieval of ``frames`` embeddings among ``candidates`` distinct sentences.

    Recalls and chances are fractions (0..1); ranks are 1-based (1 = the own sentence is the most
    similar candidate; ties count against it). ``chance_*``: what a uniformly random ranking gives
    (R@k: k / candidates; median rank: (candidates + 1) / 2). ``mean_cosine`` / ``mae``: between A
    and its own sentence's embedding (mean over frames / over frames and dimensions);
    ``sentence_spread``: the candidates' mean absolute deviation from their mean embedding, the
    scale ``mae`` compares with.
    """

    frames: int
    candidates: int
    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    median_rank: float
    chance_recall_at_1: float
    chance_recall_at_5: float
    chance_recall_at_10: float
    chance_median_rank: float
    mean_cosine: float
    mae: float
    sentence_spread: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def sentence_ranks(embeddings: np.ndarray, candidates: np.ndarray, target: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Rank ``(N,)`` (1-based) of each row's target among ``candidates`` ``(S, D)`` by the cosine with
    ``embeddings`` ``(N, D)``; ``target`` ``(N,)`` indexes ``candidates``; equal cosines rank against it."""
    a, e = _unit(np.asarray(embeddings, dtype=np.float64)), _unit(np.asarray(candidates, dtype=np.float64))
    ranks = np.empty(len(a), dtype=np.int64)
    for start in range(0, len(a), chunk):
        sims = a[start:start + chunk] @ e.T  # (n, S)
        own = sims[np.arange(len(sims)), target[start:start + chunk]]
        ranks[start:start + chunk] = (sims >= own[:, None]).sum(axis=1)  # the own sentence counts itself once
    return ranks


def sentence_retrieval(
    embeddings: np.ndarray,
    gt_sentences: Sequence[str],
    sentence_embeddings: Mapping[str, np.ndarray] | np.ndarray,
    sentences: Optional[Sequence[str]] = None,
) -> RetrievalScores:
    """Retrieval scores of frames' A ``embeddings`` ``(N, D)`` whose ground-truth sentences are
    ``gt_sentences`` (N), among the candidate sentences: ``sentence_embeddings`` as ``{sentence: (D,)}``,
    or as an array ``(S, D)`` whose rows ``sentences`` (S, distinct) names. Every ground-truth
    sentence must be a candidate (ValueError naming the first missing one)."""
    if isinstance(sentence_embeddings, Mapping):
        if sentences is not None:
            raise ValueError("sentence_retrieval: give 'sentences' only with an array of sentence embeddings")
        names = list(sentence_embeddings)
        table = np.stack([np.asarray(sentence_embeddings[s], dtype=np.float64) for s in names]) if names else np.empty((0, 0))
    else:
        if sentences is None:
            raise ValueError("sentence_retrieval: an array of sentence embeddings needs 'sentences' naming its rows")
        names, table = list(sentences), np.asarray(sentence_embeddings, dtype=np.float64)
        if len(set(names)) != len(names):
            raise ValueError("sentence_retrieval: 'sentences' must be distinct (each candidate once)")
        if table.ndim != 2 or len(table) != len(names):
            raise ValueError(f"sentence_retrieval: {len(names)} sentences for sentence embeddings of shape {table.shape}")
    a = np.asarray(embeddings, dtype=np.float64)
    if a.ndim != 2 or len(a) != len(gt_sentences) or len(a) == 0:
        raise ValueError(f"sentence_retrieval: embeddings {a.shape} need one non-empty row per ground-truth sentence ({len(gt_sentences)})")
    if table.shape[1:] != a.shape[1:]:
        raise ValueError(f"sentence_retrieval: embeddings of width {a.shape[1]} vs sentence embeddings {table.shape}")
    index = {s: i for i, s in enumerate(names)}
    missing = next((s for s in gt_sentences if s not in index), None)
    if missing is not None:
        raise ValueError(f"sentence_retrieval: ground-truth sentence {missing!r} is not among the {len(names)} candidates")
    target = np.array([index[s] for s in gt_sentences], dtype=np.int64)
    ranks = sentence_ranks(a, table, target)
    own = table[target]
    s = len(names)
    recall = {k: float(np.mean(ranks <= k)) for k in RECALL_KS}
    chance = {k: min(k, s) / s for k in RECALL_KS}
    return RetrievalScores(
        frames=len(a), candidates=s,
        recall_at_1=recall[1], recall_at_5=recall[5], recall_at_10=recall[10],
        median_rank=float(np.median(ranks)),
        chance_recall_at_1=chance[1], chance_recall_at_5=chance[5], chance_recall_at_10=chance[10],
        chance_median_rank=(s + 1) / 2,
        mean_cosine=float(np.mean(np.sum(_unit(a) * _unit(own), axis=1))),
        mae=float(np.mean(np.abs(a - own))),
        sentence_spread=float(np.mean(np.abs(table - table.mean(axis=0)))),
    )
