"""A trained model rebuilt from its checkpoint alone (no training YAML): what ``seld infer``,
``seld embed``, ``seld query`` and the benchmark run. The checkpoint's ``stage`` names the entry of
:data:`seld.tasks.STAGES` whose ``rebuild`` makes the architecture; the weights follow."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seld.checkpoint import load_checkpoint, load_model_state
from seld.config import from_dict
from seld.data.dataset import StreamConfig
from seld.errors import CheckpointError, ConfigError
from seld.tasks import STAGES, unknown_stage
from seld.tasks.base import SeldTask


@dataclass
class LoadedModel:
    """A trained model rebuilt from its checkpoint alone."""

    task: SeldTask
    """The stage's task in eval mode (``PretrainTask``, ``FinetuneTask``, ``BaselineTask``)."""
    stage: str
    """Its entry of :data:`seld.tasks.STAGES`."""
    streams: StreamConfig
    normalization: dict[str, dict[str, float]]
    features: dict[str, Any]
    """The feature extraction config the model was trained on (``FeatureConfig`` fields)."""
    feature_config: Any
    """The same as a checked ``FeatureConfig`` (see :func:`checkpoint_feature_config`)."""

    def normalize(self, feats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Apply the training split's per-channel statistics to ``{channel: (T, 64)}``."""
        from seld.data.normalization import ChannelStats

        out = {}
        for name, x in feats.items():
            s = self.normalization.get(name)
            if s is None:
                out[name] = x
                continue
            mean, scale = ChannelStats(s["mean"], s["std"]).offset_and_scale()  # SeldDataset's rule
            out[name] = (x - mean) * scale
        return out


def checkpoint_feature_config(features: dict[str, Any], src: str) -> Any:
    """The ``FeatureConfig`` a checkpoint's model was trained on (defaults when none was stored).

    Refuses (CheckpointError naming ``src``) settings this version would compute differently (see
    :func:`~seld.features.config.outdated_feature_definition`): silently computing today's features
    for such a model would feed it inputs it never saw.
    """
    from seld.features.config import FeatureConfig, outdated_feature_definition

    outdated = outdated_feature_definition(features)
    if outdated:
        raise CheckpointError(
            f"{src}: its features come from an older textseld ({outdated}) and this version computes "
            "them differently; re-extract features with `seld features` and retrain"
        )
    data = {k: v for k, v in features.items() if k in {"stft", "mel", "wpe", "peak_normalize", "channels"}}
    try:
        return from_dict(FeatureConfig, data, source=f"{src} (feature config)")
    except (ConfigError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"{src}: the feature settings stored in this checkpoint do not fit this textseld version ({exc}); "
            "re-extract features with `seld features` and retrain"
        ) from None



def load_task(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model of a training checkpoint of any stage (``weights_only`` load)."""
    ckpt = load_checkpoint(path, map_location="cpu")
    extras = ckpt.get("task") or {}
    stage = extras.get("stage")
    src = str(path)
    streams = from_dict(StreamConfig, extras.get("streams", {}), source=f"{src} (streams)")
    feature_config = checkpoint_feature_config(extras.get("features", {}), src)  # before building the model
    problem = unknown_stage(stage)
    if problem:
        raise CheckpointError(f"{src}: {problem}")
    task = STAGES[stage].parts().rebuild(ckpt, extras, streams, src)
    load_model_state(task, ckpt["model"], src)
    task.to(device).eval()
    return LoadedModel(
        task=task, stage=stage, streams=streams,
        normalization=extras.get("normalization", {}), features=extras.get("features", {}),
        feature_config=feature_config,
    )
