"""Sentence retrieval from A: a planted alignment scores perfectly, a shuffled one scores chance, ranks
and the error terms by hand on a small case."""
from __future__ import annotations

import numpy as np
import pytest

from seld.alignment import sentence_ranks, sentence_retrieval

S, D, N = 40, 16, 4000


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(S, D))
    names = [f"sentence {i}" for i in range(S)]
    gt = rng.integers(S, size=N)
    return rng, table, names, gt


def test_planted_alignment_retrieves_every_sentence(planted):
    rng, table, names, gt = planted
    sentences = [names[i] for i in gt]
    exact = sentence_retrieval(table[gt], sentences, dict(zip(names, table)))
    assert (exact.recall_at_1, exact.recall_at_5, exact.median_rank) == (1.0, 1.0, 1.0)
    assert exact.mean_cosine == pytest.approx(1.0) and exact.mae == pytest.approx(0.0, abs=1e-12)
    assert (exact.frames, exact.candidates) == (N, S)
    assert exact.chance_recall_at_1 == 1 / S and exact.chance_recall_at_10 == 10 / S and exact.chance_median_rank == 20.5
    # cosine ranking: a scaled A still retrieves all; the error grows with the scale
    scaled = sentence_retrieval(3.0 * table[gt], sentences, table, names)
    assert scaled.recall_at_1 == 1.0 and scaled.mae == pytest.approx(2.0 * np.abs(table[gt]).mean())
    assert scaled.sentence_spread == pytest.approx(np.abs(table - table.mean(0)).mean())


def test_shuffled_alignment_is_chance(planted):
    rng, table, names, gt = planted
    shuffled = table[gt][rng.permutation(N)]  # each frame gets another frame's sentence embedding
    got = sentence_retrieval(shuffled, [names[i] for i in gt], dict(zip(names, table)))
    for k, value in ((1, got.recall_at_1), (5, got.recall_at_5), (10, got.recall_at_10)):
        p = k / S
        assert abs(value - p) < 4 * np.sqrt(p * (1 - p) / N), (k, value, p)  # 4 binomial standard errors
    assert abs(got.median_rank - got.chance_median_rank) < 2.5
    assert abs(got.mean_cosine) < 0.05


def test_ranks_by_hand_ties_count_against():
    candidates = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    a = np.array([[1.0, 0.2], [1.0, 1.0], [0.0, 1.0]])
    # row 0: cos to c0 .98, c2 .83, c1 .20 -> target c2 ranks 2; row 1: c2 first (1.0), then c0 and c1
    # tied at .71 -> target c0 ranks 3 (a tie counts against it); row 2: target c1 (cos 1) ranks 1
    assert sentence_ranks(a, candidates, np.array([2, 0, 1])).tolist() == [2, 3, 1]
    tied = np.array([[1.0, 0.0], [2.0, 0.0]])
    assert sentence_ranks(np.array([[1.0, 0.0]]), tied, np.array([0])).tolist() == [2]
    got = sentence_retrieval(a, ["c2", "c0", "c1"], candidates, ["c0", "c1", "c2"])
    assert got.recall_at_1 == pytest.approx(1 / 3) and got.median_rank == 2.0 and got.recall_at_5 == 1.0
    assert got.chance_recall_at_5 == 1.0  # k past the candidates: every rank counts
    assert got.mae == pytest.approx(np.abs(a - candidates[[2, 0, 1]]).mean())


def test_inputs_are_checked():
    table = {"a": np.ones(2), "b": np.array([1.0, -1.0])}
    with pytest.raises(ValueError, match="'c' is not among the 2 candidates"):
        sentence_retrieval(np.ones((1, 2)), ["c"], table)
    with pytest.raises(ValueError, match="needs 'sentences'"):
        sentence_retrieval(np.ones((1, 2)), ["a"], np.ones((2, 2)))
    with pytest.raises(ValueError, match="distinct"):
        sentence_retrieval(np.ones((1, 2)), ["a"], np.ones((2, 2)), ["a", "a"])
    with pytest.raises(ValueError, match="one non-empty row per ground-truth sentence"):
        sentence_retrieval(np.ones((2, 2)), ["a"], table)


def test_alignment_and_stats_sit_below_training():
    from pathlib import Path

    import seld
    from tests.features.test_layering import imported_modules

    for name in ("alignment.py", "stats.py"):
        assert not imported_modules(Path(seld.__file__).parent / name), name  # numpy/scipy only
