"""Figures (matplotlib, PNG): a clip's reference vs predicted tracks, and learning curves of runs.

* :func:`plot_clip_tracks`: three panels over the 50 label frames of one clip: activity per
  class, azimuth and distance; reference as wide pale bars / large open circles, prediction as
  thin dark markers, one colour per class.
* :func:`plot_learning_curves`: validation F20°/1, DOAE and RDE per epoch, and F against wall-clock
  minutes, for several runs in one figure; read from each run's TensorBoard events
  (``<out_dir>/tensorboard``), or from the history in ``checkpoints/last.pt`` when there are none.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from seld.constants import LABEL_FRAMES, NUM_CLASSES, SHORT_CLASS_NAMES
from seld.data.metadata import Event, read_metadata_csv
from seld.errors import DataError
from seld.io_utils import atomic_path

METRICS: tuple[tuple[str, str], ...] = (("F", "F20°/1 (%)"), ("DOAE", "DOAE (°)"), ("RDE", "RDE"))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _colors() -> list[Any]:
    plt = _pyplot()
    return [plt.get_cmap("tab20")(i % 20) for i in range(NUM_CLASSES)]


def _save(fig: Any, out: str | os.PathLike[str]) -> Path:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def find_csv(folder: str | os.PathLike[str], clip: str) -> Path:
    """``<clip>.csv`` in ``folder`` or any subfolder; DataError when absent or ambiguous."""
    name = clip if clip.endswith(".csv") else f"{clip}.csv"
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    direct = root / name
    if direct.is_file():
        return direct
    hits = sorted(root.rglob(name))
    if not hits:
        raise DataError(f"{root}: no file {name} (searched subfolders too)")
    if len(hits) > 1:
        raise DataError(f"{root}: {name} found {len(hits)} times ({', '.join(map(str, hits[:3]))}); pass its folder")
    return hits[0]


def plot_clip_tracks(
    pred_dir: str | os.PathLike[str],
    ref_dir: str | os.PathLike[str],
    clip: str,
    out: str | os.PathLike[str],
    num_frames: int = LABEL_FRAMES,
) -> Path:
    """Reference vs predicted tracks of ``clip`` (DCASE2025 CSVs) as a PNG at ``out``."""
    ref = read_metadata_csv(find_csv(ref_dir, clip))
    pred = read_metadata_csv(find_csv(pred_dir, clip))
    return plot_events(ref, pred, out, title=Path(clip).stem, num_frames=num_frames)


def plot_events(
    ref: list[Event], pred: list[Event], out: str | os.PathLike[str], title: str = "", num_frames: int = LABEL_FRAMES
) -> Path:
    """The figure of :func:`plot_clip_tracks` from event lists."""
    plt = _pyplot()
    colors = _colors()
    classes = sorted({e.class_idx for e in ref} | {e.class_idx for e in pred})
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True, gridspec_kw={"height_ratios": [1.2, 1, 1]})
    ax_act, ax_az, ax_dist = axes
    for c in classes:
        col = colors[c]
        r = [e for e in ref if e.class_idx == c]
        p = [e for e in pred if e.class_idx == c]
        if r:
            ax_act.scatter([e.frame for e in r], [c + 0.15] * len(r), marker="s", s=60, color=col, alpha=0.35, lw=0)
            ax_az.scatter([e.frame for e in r], [e.azimuth for e in r], s=70, facecolors="none", edgecolors=col, lw=1.5)
            ax_dist.scatter([e.frame for e in r], [e.distance_cm / 100 for e in r], s=70, facecolors="none",
                            edgecolors=col, lw=1.5)
        if p:
            ax_act.scatter([e.frame for e in p], [c - 0.15] * len(p), marker="|", s=60, color=col, lw=2)
            ax_az.scatter([e.frame for e in p], [e.azimuth for e in p], s=22, marker="x", color=col, lw=1.5)
            ax_dist.scatter([e.frame for e in p], [e.distance_cm / 100 for e in p], s=22, marker="x", color=col, lw=1.5)
    ax_act.set_yticks(classes)
    ax_act.set_yticklabels([SHORT_CLASS_NAMES[c] for c in classes])
    ax_act.set_ylim(min(classes, default=0) - 0.7, max(classes, default=0) + 0.7)
    ax_act.set_title(f"{title}: reference (pale squares / open circles) vs prediction (bars / crosses)", fontsize=10)
    ax_act.set_ylabel("activity")
    ax_az.set_ylabel("azimuth (°, + = left)")
    ax_az.set_ylim(-95, 95)
    ax_az.set_yticks([-90, -45, 0, 45, 90])
    ax_dist.set_ylabel("distance (m)")
    ax_dist.set_ylim(bottom=0)
    ax_dist.set_xlabel("label frame (100 ms)")
    ax_dist.set_xlim(-1, num_frames)
    for ax in axes:
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=colors[c], marker="o", ls="", label=SHORT_CLASS_NAMES[c]) for c in classes]
    if handles:
        fig.legend(handles=handles, loc="center right", bbox_to_anchor=(1.12, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    return _save(fig, out)


# ----------------------------------------------------------------------------- learning curves
def read_run_history(run_dir: str | os.PathLike[str]) -> list[dict[str, float]]:
    """Per-epoch records ``{"epoch": 1.., "minutes": ..., "F": ..., "DOAE": ..., "RDE": ...}`` of a run.

    From TensorBoard scalars ``val/F``, ``val/DOAE``, ``val/RDE`` (step = epoch; minutes from the
    event wall times, counted from the first event of the run's event files; a resumed run's
    pause counts too); else from ``checkpoints/last.pt``'s
    history (no minutes). DataError when neither exists.
    """
    run = Path(run_dir)
    tb = run / "tensorboard"
    if tb.is_dir() and any(tb.rglob("events.out.tfevents.*")):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        records: dict[int, dict[str, float]] = {}
        start = None
        for events_file in sorted(tb.rglob("events.out.tfevents.*")):
            acc = EventAccumulator(str(events_file), size_guidance={"scalars": 0})
            acc.Reload()
            tags = acc.Tags().get("scalars", [])
            try:  # the file's first event is written when training starts
                first = float(acc.FirstEventTimestamp())
            except ValueError:
                continue
            start = first if start is None else min(start, first)
            for name, _ in METRICS:
                if f"val/{name}" not in tags:
                    continue
                for ev in acc.Scalars(f"val/{name}"):
                    rec = records.setdefault(int(ev.step), {"epoch": float(ev.step)})
                    rec[name] = float(ev.value)
                    rec["_wall"] = float(ev.wall_time)
        out = []
        for step in sorted(records):
            rec = records[step]
            wall = rec.pop("_wall", None)
            if wall is not None and start is not None:
                rec["minutes"] = (wall - start) / 60.0
            out.append(rec)
        if out:
            return out
    last = run / "checkpoints" / "last.pt"
    if last.is_file():
        from seld.checkpoint import load_checkpoint

        hist = load_checkpoint(last, map_location="cpu").get("history", [])
        return [
            {"epoch": float(h["epoch"]) + 1, **{m: float(h[f"val_{m}"]) for m, _ in METRICS if f"val_{m}" in h}}
            for h in hist
        ]
    raise DataError(f"{run}: no TensorBoard events and no checkpoints/last.pt to read a learning curve from")


def plot_learning_curves(
    runs: Mapping[str, str | os.PathLike[str]],
    out: str | os.PathLike[str],
    start_minutes: Mapping[str, float] | None = None,
) -> Path:
    """Validation F / DOAE / RDE per epoch and F per wall-clock minute of every run (label -> run dir).

    ``start_minutes`` (label -> minutes) shifts a run on the time axis, e.g. a fine-tuning by the
    minutes of the pre-training it started from, so that the axis is the model's whole budget.
    """
    start_minutes = dict(start_minutes or {})
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    panels = [axes[0, 0], axes[0, 1], axes[1, 0]]
    ax_time = axes[1, 1]
    for i, (label, run_dir) in enumerate(runs.items()):
        hist = read_run_history(run_dir)
        color = plt.get_cmap("tab10")(i % 10)
        for ax, (name, _) in zip(panels, METRICS):
            scale = 100.0 if name == "F" else 1.0
            pts = [(h["epoch"], scale * h[name]) for h in hist if name in h and np.isfinite(h[name])]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, color=color, label=label)
        shift = float(start_minutes.get(label, 0.0))
        pts = [(shift + h["minutes"], 100.0 * h["F"]) for h in hist if "minutes" in h and "F" in h]
        if pts:
            ax_time.plot(*zip(*pts), marker="o", ms=3, color=color, label=label)
    for ax, (_, ylabel) in zip(panels, METRICS):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {ylabel}")
        ax.grid(alpha=0.3)
    ax_time.set_xlabel("training minutes (fine-tuning: after its pre-training)" if start_minutes
                       else "wall-clock minutes since the run started")
    ax_time.set_ylabel("validation F20°/1 (%)")
    ax_time.grid(alpha=0.3)
    panels[0].legend(fontsize=8)
    fig.suptitle("Learning curves on the validation set", fontsize=11)
    fig.tight_layout()
    return _save(fig, out)


def plot_class_scores(results: Mapping[str, Mapping[str, Any]], out: str | os.PathLike[str]) -> Path:
    """Grouped bars of the per-class test F of each model (``label -> {"F_per_class": [13]}``)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 4))
    labels = list(results)
    width = 0.8 / max(1, len(labels))
    x = np.arange(NUM_CLASSES)
    for i, label in enumerate(labels):
        vals = np.asarray(results[label]["F_per_class"], dtype=float) * 100
        ax.bar(x + (i - (len(labels) - 1) / 2) * width, vals, width, label=label, color=plt.get_cmap("tab10")(i % 10))
    ax.set_xticks(x)
    ax.set_xticklabels(SHORT_CLASS_NAMES, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("test F20°/1 per class (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out)


def plot_retrieval_example(query: str, hits: Sequence[tuple[str, int, float, str]], out: str | os.PathLike[str],
                           title: str = "") -> Path:
    """A retrieval example as a figure: the query sentence, then the top frames ``(clip, frame, score,
    reference sentence)`` in rank order; a hit whose reference equals the query is marked."""
    import textwrap

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 0.75 * (len(hits) + 2)))
    ax.axis("off")
    y = 1.0
    step = 1.0 / (len(hits) + 2)
    ax.text(0.0, y, f"query: \u201c{query}\u201d", fontsize=10, weight="bold", va="top", transform=ax.transAxes)
    for rank, (clip, frame, score, reference) in enumerate(hits, start=1):
        y -= step
        mark = "\u2713 " if reference == query else "   "
        ax.text(0.0, y, f"{mark}{rank}. cos {score:.3f}  {clip} frame {frame}", fontsize=8.5, va="top",
                family="monospace", transform=ax.transAxes, color="darkgreen" if reference == query else "black")
        ax.text(0.04, y - 0.4 * step, "\n".join(textwrap.wrap(f"reference: {reference}", 130)), fontsize=8,
                va="top", color="dimgray", transform=ax.transAxes)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, out)
