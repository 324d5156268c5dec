"""Checkpoints: plain tensors and containers only, written atomically, read with ``weights_only=True``.

A checkpoint records the model's state and config, the optimiser, scheduler and RNG states, the
progress (epoch, step, position in the epoch) and the library/torch versions, so a run resumes
exactly and a model loads without the training YAML.
"""
from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seld import __version__
from seld.errors import CheckpointError
from seld.io_utils import atomic_path, weights_only_refusal

CHECKPOINT_FORMAT = 1


def capture_rng_state() -> dict[str, Any]:
    """RNG states of python, numpy and torch (CPU and CUDA) as tensors and plain values."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": _python_state_to_tensor(random.getstate()),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`. The state may come from a checkpoint loaded onto a GPU
    (``map_location="cuda"``): every generator takes its state from host memory, so it is moved there."""
    random.setstate(_tensor_to_python_state(state["python"]))
    n = state["numpy"]
    keys = n["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        # one state per GPU of the machine that wrote it; a machine with fewer GPUs restores its own
        for device, gpu_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(gpu_state.cpu(), device)


def _python_state_to_tensor(state: tuple) -> dict[str, Any]:
    version, internal, gauss = state
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _tensor_to_python_state(state: dict[str, Any]) -> tuple:
    return (state["version"], tuple(state["internal"].tolist()), state["gauss"])


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus format and version info) atomically with ``torch.save``."""
    payload = dict(payload)
    payload.setdefault("format", CHECKPOINT_FORMAT)
    payload.setdefault("versions", {"textseld": __version__, "torch": str(torch.__version__)})
    p = Path(path)
    with atomic_path(p) as tmp:
        torch.save(payload, tmp)
    return p


_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
"""Names :func:`seld.io_utils.atomic_path` gives its temporary files: ``.<final name>.<8 random>.tmp``."""


def remove_stale_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files an atomic write left in ``folder`` when its process was killed.

    Call it at start-up, before this run writes anything there: a killed ``torch.save`` leaves
    ``.last.pt.<random>.tmp`` (as large as a checkpoint) that nothing else removes.
    Returns the removed paths.
    """
    d = Path(folder)
    if not d.is_dir():
        return []
    removed = []
    for p in sorted(d.glob(".*.tmp")):
        if p.is_file() and _TEMP_NAME.match(p.name):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a textseld checkpoint with ``weights_only=True``; warn when versions differ."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        with warnings.catch_warnings():  # a foreign pickle also draws torch's protocol warning
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        # torch's own text advises re-running with weights_only=False (unsafe on untrusted files): not shown
        raise CheckpointError(
            f"{p}: not a textseld checkpoint ({weights_only_refusal(exc)}); "
            "give a .pt file written by `seld pretrain` or `seld finetune`"
        ) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{p}: not a textseld checkpoint (no 'model' entry)")
    versions = ckpt.get("versions", {})
    if versions.get("torch") and versions["torch"].split("+")[0] != torch.__version__.split("+")[0]:
        warnings.warn(f"{p}: saved with torch {versions['torch']}, running {torch.__version__}", stacklevel=2)
    if versions.get("textseld") and versions["textseld"] != __version__:
        warnings.warn(f"{p}: saved with textseld {versions['textseld']}, running {__version__}", stacklevel=2)
    return ckpt


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str, strict: bool = True) -> None:
    """``load_state_dict`` with an error listing missing and unexpected keys."""
    result = model.load_state_dict(state, strict=False)
    if strict and (result.missing_keys or result.unexpected_keys):
        raise CheckpointError(
            f"{source}: state does not match {type(model).__name__}; "
            f"missing keys: {result.missing_keys[:20]}{' ...' if len(result.missing_keys) > 20 else ''}; "
            f"unexpected keys: {result.unexpected_keys[:20]}{' ...' if len(result.unexpected_keys) > 20 else ''}"
        )


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any], source: Any) -> None:
    """``optimizer.load_state_dict`` with an error naming both group layouts when they differ (what
    trains changed between the run that wrote ``state``, read from ``source``, and this one)."""
    try:
        optimizer.load_state_dict(state)
    except ValueError as err:  # torch: different groups or group sizes
        def shape(groups: list[dict[str, Any]]) -> str:
            return ", ".join(f"{g.get('name', i)} ({len(g['params'])} tensors)" for i, g in enumerate(groups))

        raise CheckpointError(
            f"{source}: its optimiser state does not fit this run: checkpoint groups {shape(state['param_groups'])}, "
            f"this run {shape(optimizer.param_groups)} (what trains changed: a part frozen or "
            f"unfrozen by the stage's settings); resume it with the settings that made it, or "
            f"start a new run (train.resume: never, or another out_dir)") from err
