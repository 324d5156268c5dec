"""The printed SELD score table (overall scores, optional jackknife intervals, one row per class)."""
from __future__ import annotations

from typing import Mapping

from seld.constants import CLASS_NAMES
from seld.metrics.jackknife import JackknifeEstimate
from seld.metrics.scores import SeldScores


def format_table(scores: SeldScores, jackknife: Mapping[str, JackknifeEstimate] | None = None) -> str:
    """A readable table: overall F (%), DOAE (degrees), RDE, then one row per class."""
    cfg = scores.config
    thresholds = f"DOA <= {cfg.doa_threshold_deg:g} deg, rel. distance <= {cfg.rel_dist_threshold:g}"
    if cfg.abs_dist_threshold_m is not None:
        thresholds += f", distance <= {cfg.abs_dist_threshold_m:g} m"
    if scores.mode == "dcase2025":
        counts = (f"clips scored: {scores.n_clips} of {scores.n_clips + scores.n_missing_prediction} references "
                  f"({scores.n_missing_prediction} without a prediction: not scored, as the official code does)")
    else:
        counts = (f"clips scored: {scores.n_clips}, references without prediction: {scores.n_missing_prediction} "
                  "(counted as misses)")
    counts += f", frames scored: {scores.n_frames}, empty references: {scores.n_empty_reference}"
    if scores.n_pred_past_end:
        counts += f", predicted events past their clip's end: {scores.n_pred_past_end} (not scored)"
    lines = [f"SELD scores ({scores.mode} mode, {scores.average} average; {thresholds})", counts, ""]

    def ci(name: str, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
        if jackknife is None or name not in jackknife:
            return ""
        j = jackknife[name]
        return f"  [{fmt.format(j.ci_low * scale)}, {fmt.format(j.ci_high * scale)}]"

    lines.append(f"F{cfg.doa_threshold_deg:g}deg/{cfg.rel_dist_threshold:g}: {100 * scores.F:6.2f} %{ci('F', 100)}")
    lines.append(f"DOAE:    {scores.DOAE:6.2f} deg{ci('DOAE')}")
    lines.append(f"RDE:     {scores.RDE:6.3f}{ci('RDE', fmt='{:.3f}')}")
    lines.append(f"DE:      {scores.DE_m:6.3f} m")
    lines.append("")
    header = f"{'#':>2}  {'class':<30} {'F %':>7} {'DOAE':>7} {'RDE':>6} {'TP':>7} {'FPsp':>7} {'FP':>7} {'FN':>7} {'refs':>7}"
    lines.append(header)
    lines.append("-" * len(header))
    for c, name in enumerate(CLASS_NAMES):
        lines.append(
            f"{c:>2}  {name[:30]:<30} {100 * scores.classwise_F[c]:7.2f} {scores.classwise_DOAE[c]:7.2f} "
            f"{scores.classwise_RDE[c]:6.3f} {scores.TP[c]:7d} {scores.FP_spatial[c]:7d} {scores.FP[c]:7d} "
            f"{scores.FN[c]:7d} {scores.n_ref[c]:7d}"
        )
    return "\n".join(lines)
