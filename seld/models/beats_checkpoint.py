"""The official BEATs checkpoint file: ``{"cfg": dict, "model": state dict}`` (spec section 5).

Reading builds :class:`~seld.models.beats.BEATs` from the file's ``cfg`` and loads its ``model``
strictly, dropping the AudioSet ``predictor.*`` keys; writing produces the same layout, so a file
written here loads in the official code. It does not use :mod:`seld.checkpoint` (textseld's own
files): that writer adds format and version records the official layout lacks, and that reader
has neither the ``trust_checkpoint`` path nor the per-key shape report; both build on
:mod:`seld.io_utils` (atomic writes, the ``weights_only`` refusal text). No pickle: files load
with ``weights_only=True`` unless the caller opts in with ``trust_checkpoint`` (docs/pretraining.md).
"""
from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import torch

from seld.errors import CheckpointError, ConfigError
from seld.io_utils import atomic_path, weights_only_refusal
from seld.models.beats import BEATs, BEATsConfig

logger = logging.getLogger(__name__)


def read_beats_checkpoint(
    path: str | os.PathLike[str], trust_checkpoint: bool = False
) -> tuple[BEATsConfig, dict[str, torch.Tensor]]:
    """(config, state dict) of a ``{"cfg": ..., "model": ...}`` BEATs file; ``predictor.*`` keys are dropped.

    The file is read with ``weights_only=True`` (tensors and plain containers only; nothing in the
    file runs). Only when ``trust_checkpoint`` is set does a file that this refuses get a second try
    with ``weights_only=False``: full unpickling, which runs any code the file holds.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"BEATs checkpoint not found: {p}")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        if not trust_checkpoint:
            raise CheckpointError(
                f"{p}: cannot be read with torch.load(weights_only=True) ({weights_only_refusal(exc)}). Only if you "
                "trust the file's source: tokenizer.beats.trust_checkpoint: true unpickles it fully, running any "
                "code it holds."
            ) from None
        try:
            ckpt = torch.load(p, map_location="cpu", weights_only=False)
        except Exception as exc2:  # noqa: BLE001 - any unpickling failure means the file is unusable
            raise CheckpointError(f"{p}: not a readable torch checkpoint ({exc2})") from exc2
    if not isinstance(ckpt, dict) or "cfg" not in ckpt or "model" not in ckpt:
        found = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{p}: not a BEATs checkpoint: expected a dict with keys 'cfg' and 'model', found {found}")
    try:
        cfg = BEATsConfig.from_dict(dict(ckpt["cfg"]), source=str(p))
    except ConfigError as exc:
        raise CheckpointError(f"{p}: bad BEATs cfg: {exc}") from exc
    state = dict(ckpt["model"])
    dropped = sorted(k for k in state if k.startswith("predictor."))
    if dropped:
        logger.info("%s: dropping the AudioSet predictor (%s); SELD does not use it", p, ", ".join(dropped))
        for k in dropped:
            del state[k]
    return cfg, state


def load_beats_state(model: BEATs, state: dict[str, torch.Tensor], source: str = "<state dict>") -> None:
    """Load ``state`` into ``model`` strictly; missing, unexpected or mis-shaped keys raise CheckpointError listing them."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {'; '.join(mismatched)}")
    if problems:
        raise CheckpointError(f"{source}: BEATs state dict does not match the model built from its cfg: " + " | ".join(problems))
    model.load_state_dict(state, strict=True)


def load_beats_checkpoint(path: str | os.PathLike[str], trust_checkpoint: bool = False) -> BEATs:
    """A BEATs model built from the file's ``cfg`` and loaded strictly from its ``model`` (predictor dropped)."""
    cfg, state = read_beats_checkpoint(path, trust_checkpoint=trust_checkpoint)
    model = BEATs(cfg)
    load_beats_state(model, state, source=str(path))
    return model


def save_beats_checkpoint(model: BEATs, path: str | os.PathLike[str]) -> Path:
    """Write ``{"cfg": dict, "model": state_dict}`` (the official layout) atomically; return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(p) as tmp:
        torch.save({"cfg": model.cfg.to_dict(), "model": model.state_dict()}, tmp)
    return p
