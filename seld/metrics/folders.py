"""Scoring a folder of prediction CSVs against a folder of reference CSVs, or model outputs against
reference events, with files matched by name."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from tqdm import tqdm

from seld.data.metadata import Event, read_metadata_csv
from seld.errors import DataError
from seld.metrics.scorer import SeldScorer
from seld.metrics.scores import MetricConfig, SeldScores


def _collect_reference_csvs(ref_dir: Path) -> dict[str, Path]:
    """Map file name -> path for CSVs in ``ref_dir`` and its (split) sub-folders."""
    found: dict[str, Path] = {}
    for path in sorted(ref_dir.rglob("*.csv")):
        if path.name in found:
            raise DataError(f"reference CSV name {path.name} appears twice: {found[path.name]} and {path}")
        found[path.name] = path
    return found


def evaluate_folders(
    pred_dir: str | os.PathLike[str],
    ref_dir: str | os.PathLike[str],
    cfg: MetricConfig | None = None,
    progress: bool = False,
    scorer: SeldScorer | None = None,
) -> SeldScores:
    """Score the prediction CSVs of ``pred_dir`` (flat) against ``ref_dir`` (flat or split sub-folders).

    Files are matched by name. dcase2025 mode scores each prediction (a prediction without a
    reference raises DataError); strict mode scores each reference, a missing prediction counting
    as all misses. Pass an empty ``scorer`` to keep it (e.g. for :meth:`SeldScorer.jackknife`);
    its config is used instead of ``cfg``.
    """
    if scorer is not None:
        if scorer.n_clips or scorer.n_missing_prediction:
            raise ValueError("evaluate_folders needs an empty SeldScorer")
        cfg = scorer.cfg
    cfg = cfg if cfg is not None else MetricConfig()
    pred_path, ref_path = Path(pred_dir), Path(ref_dir)
    for what, p in (("prediction", pred_path), ("reference", ref_path)):
        if not p.is_dir():
            raise DataError(f"{what} folder {p} does not exist or is not a folder")
    refs = _collect_reference_csvs(ref_path)
    if not refs:
        raise DataError(f"reference folder {ref_path} holds no .csv files (also searched its sub-folders)")
    preds = {p.name: p for p in sorted(pred_path.glob("*.csv")) if p.is_file()}
    unknown = sorted(set(preds) - set(refs))
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise DataError(
            f"{len(unknown)} prediction CSV(s) in {pred_path} have no reference in {ref_path}: {shown}"
        )
    if cfg.mode == "dcase2025" and not preds:
        raise DataError(f"prediction folder {pred_path} holds no .csv files")

    scorer = scorer if scorer is not None else SeldScorer(cfg)
    names = sorted(preds) if cfg.mode == "dcase2025" else sorted(refs)
    ref_frames = cfg.num_frames if cfg.mode == "strict" else None
    for name in tqdm(names, desc="scoring", disable=not progress):
        ref_events = read_metadata_csv(refs[name], num_frames=ref_frames)
        pred_events = read_metadata_csv(preds[name], predictions=True) if name in preds else None
        scorer.add_clip(pred_events, ref_events, clip_id=Path(name).stem)
    if cfg.mode == "dcase2025":
        scorer.n_missing_prediction = len(set(refs) - set(preds))
    return scorer.result()


def score_outputs(
    outputs: Mapping[str, Any] | Sequence[tuple[str, Any]],
    refs: Mapping[str, Sequence[Event]],
    cfg: MetricConfig | None = None,
    threshold: float = 0.5,
    merge_deg: float = 15.0,
) -> SeldScores:
    """Score activated model outputs ``{clip_id: (T, 117)}`` against reference events ``{clip_id: [Event]}``.

    Gives the same numbers as writing the CSVs with :func:`seld.decoding.write_prediction_csvs`
    and running :func:`evaluate_folders` (decoded events are rounded as the CSV stores them).
    """
    from seld.decoding import decode_output, quantize_events

    cfg = cfg if cfg is not None else MetricConfig()
    items = dict(outputs.items() if isinstance(outputs, Mapping) else outputs)
    unknown = sorted(set(items) - set(refs))
    if unknown:
        raise DataError(f"{len(unknown)} output clip(s) have no reference events: {', '.join(unknown[:5])}")
    scorer = SeldScorer(cfg)
    names = sorted(items) if cfg.mode == "dcase2025" else sorted(refs)
    for name in names:
        pred = quantize_events(decode_output(items[name], threshold, merge_deg)) if name in items else None
        scorer.add_clip(pred, list(refs[name]), clip_id=name)
    if cfg.mode == "dcase2025":
        scorer.n_missing_prediction = len(set(refs) - set(items))
    return scorer.result()
