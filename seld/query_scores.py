""""Where is the <class>?" scored on a labelled set: every class in each clip's labels is asked for
with :data:`seld.query.CLASS_QUERY`, the class the query matched (:class:`seld.query.ClassMatcher`)
gives the answer's track, and the answers are scored against the labels beside the model's own
output (:func:`class_query_scores`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from seld.constants import SHORT_CLASS_NAMES
from seld.data.metadata import Event
from seld.decoding import DEFAULT_MERGE_DEG, DEFAULT_THRESHOLD, decode_output
from seld.errors import DataError
from seld.metrics import MetricConfig, SeldScorer, SeldScores
from seld.query import CLASS_QUERY, ClassMatcher
from seld.text.captions import stored_events


@dataclass
class ClassQueryScores:
    """"Where is the <class>?" for every clip and every class in its labels, against the model's own output.

    ``query``: each answer (the matched class's track) scored as the track of the class asked about,
    against the labels;
    ``own_same_classes``: the model's events of the classes asked about in each clip (what a perfect
    class step returns); ``own``: all the model's events. F / DOAE / RDE of each are the means over
    ``classes`` (classes with labels in the set) of the metric's class-wise values, so the three
    read the same classes and the same scored frames.
    """

    classes: list[int]
    n_queries: int
    n_correct: int
    """Queries whose answer is the class asked about."""
    n_no_match: int
    query: SeldScores
    own_same_classes: SeldScores
    own: SeldScores

    @property
    def query_accuracy(self) -> float:
        return self.n_correct / self.n_queries if self.n_queries else float("nan")

    def summary(self, scores: SeldScores) -> dict[str, float]:
        """F, DOAE, RDE of ``scores`` averaged over :attr:`classes` (NaN-mean for the errors)."""
        idx = np.asarray(self.classes, dtype=int)
        if idx.size == 0:
            return {"F": float("nan"), "DOAE": float("nan"), "RDE": float("nan")}

        def nanmean(x: np.ndarray) -> float:
            x = x[np.isfinite(x)]
            return float(x.mean()) if x.size else float("nan")

        return {"F": float(scores.classwise_F[idx].mean()), "DOAE": nanmean(scores.classwise_DOAE[idx]),
                "RDE": nanmean(scores.classwise_RDE[idx])}

    def to_dict(self) -> dict[str, Any]:
        def num(v: float) -> Optional[float]:
            return float(v) if np.isfinite(v) else None

        def block(s: SeldScores) -> dict[str, Any]:
            return {k: num(v) for k, v in self.summary(s).items()}

        classwise = {
            SHORT_CLASS_NAMES[c]: {
                f"{k}_{m}": num(float(getattr(s, f"classwise_{m}")[c]))
                for k, s in (("query", self.query), ("own_same_classes", self.own_same_classes), ("own", self.own))
                for m in ("F", "DOAE", "RDE")
            }
            for c in self.classes
        }
        return {"classes": [SHORT_CLASS_NAMES[c] for c in self.classes], "n_queries": self.n_queries,
                "query_accuracy": num(self.query_accuracy), "n_no_match": self.n_no_match,
                "query": block(self.query), "own_same_classes": block(self.own_same_classes), "own": block(self.own),
                "classwise": classwise}


def class_query_scores(outputs: Mapping[str, np.ndarray], refs: Mapping[str, Sequence[Event]], matcher: ClassMatcher,
                       cfg: MetricConfig | None = None, threshold: float = DEFAULT_THRESHOLD,
                       merge_deg: float = DEFAULT_MERGE_DEG, query: str = CLASS_QUERY) -> ClassQueryScores:
    """Ask ``query`` (``{name}``: each class in a clip's labels) of every clip of ``outputs`` and score the answers.

    ``outputs``: clip -> activated output ``(frames, 117)``; ``refs``: clip -> label events. The answer
    to a query is the track of the class it matched (nothing for "no match"), scored as the track of
    the class asked about: a wrong class gives misses and false alarms. A clip's answers are scored
    together against its labels with the metric of ``cfg`` (so every class of the clip is scored on
    the same frames as the model's own output, whatever the metric's mode), beside the
    model's own events (:class:`ClassQueryScores`). The same query text always gets the same class,
    so each class's query is embedded once.
    """
    missing = sorted(set(outputs) - set(refs))
    if missing:
        raise DataError(f"{len(missing)} output clip(s) have no reference events: {', '.join(missing[:5])}")
    matches = matcher.match([query.format(name=name) for name in SHORT_CLASS_NAMES])
    scorers = {k: SeldScorer(cfg) for k in ("query", "own_same_classes", "own")}
    n_queries = n_correct = n_no_match = 0
    present_anywhere: set[int] = set()
    for name in sorted(outputs):
        pred = stored_events(decode_output(outputs[name], threshold, merge_deg))
        ref = list(refs[name])
        present = sorted({e.class_idx for e in ref})
        present_anywhere.update(present)
        # the answer to "where is c?" is scored as c's track, whichever class it was read from
        answers = [dataclasses.replace(e, class_idx=c) for c in present for e in pred
                   if matches[c].class_idx is not None and e.class_idx == matches[c].class_idx]
        n_queries += len(present)
        n_correct += sum(matches[c].class_idx == c for c in present)
        n_no_match += sum(matches[c].class_idx is None for c in present)
        scorers["query"].add_clip(answers, ref, name)
        scorers["own_same_classes"].add_clip([e for e in pred if e.class_idx in present], ref, name)
        scorers["own"].add_clip(pred, ref, name)
    return ClassQueryScores(
        classes=sorted(present_anywhere), n_queries=n_queries, n_correct=n_correct, n_no_match=n_no_match,
        query=scorers["query"].result(), own_same_classes=scorers["own_same_classes"].result(), own=scorers["own"].result(),
    )

