"""Where two configs differ, key by key: what a resumed run checks (the config its checkpoint was
trained with against this run's) before it loads any state."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from seld.config import from_dict, read_yaml, to_dict
from seld.errors import ConfigError

_ABSENT = "<absent>"

Difference = tuple[str, Any, Any]
"""(dotted key, old value, new value)."""


def config_differences(old: Any, new: Any, prefix: str = "") -> list[Difference]:
    """``(dotted key, old value, new value)`` for every leaf where two plain-data configs differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Difference] = []
        for k in list(old) + [k for k in new if k not in old]:
            out += config_differences(old.get(k, _ABSENT), new.get(k, _ABSENT), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if old == new else [(prefix, old, new)]


def resume_differences(
    saved: dict[str, Any], current: dict[str, Any], runtime_keys: tuple[str, ...], schema: type,
    part: Optional[str] = None,
) -> tuple[list[Difference], list[Difference]]:
    """(allowed, refused) differences between a checkpoint's config and the current one.

    ``saved`` (or its ``part`` key alone, e.g. ``train`` of a run without a stage config) is first
    rebuilt through ``schema`` so that fields added since it was written count at their defaults.
    A key is allowed when it equals, or lies under, one of ``runtime_keys``.
    """
    try:
        if part is None:
            saved = to_dict(from_dict(schema, saved, source="saved config"))
        else:
            saved = {part: to_dict(from_dict(schema, saved.get(part, {}), source="saved config"))}
    except ConfigError:
        pass  # the schema changed since: compare the raw data
    allowed, refused = [], []
    for key, a, b in config_differences(saved, current):
        ok = any(key == k or key.startswith(k + ".") for k in runtime_keys)
        (allowed if ok else refused).append((key, a, b))
    return allowed, refused


def short(value: Any, width: int = 60) -> str:
    """``repr(value)``, cut to ``width`` characters."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def saved_run_config(ckpt: dict[str, Any], path: str | Path) -> Optional[dict[str, Any]]:
    """The config ``ckpt`` (read from ``path``) was trained with: stored in it, or, for checkpoints
    written before configs were stored in them, the run's ``config.resolved.yml`` beside its
    ``checkpoints`` folder; None when there is neither."""
    saved = ckpt.get("config")
    if saved is None:
        saved_file = Path(path).parent.parent / "config.resolved.yml"
        if not saved_file.is_file():
            return None
        saved = read_yaml(saved_file)
    return saved


def check_resume(
    path: str | Path, saved: dict[str, Any], current: dict[str, Any], runtime_keys: tuple[str, ...], schema: type,
    part: Optional[str] = None,
) -> str:
    """ConfigError listing the keys that change the model, data or recipe when ``saved`` (the config
    the checkpoint at ``path`` was trained with) and ``current`` differ in any (see
    :func:`resume_differences`); else the changed run-time settings, described in one line ("" when
    none besides ``train.resume`` and ``train.out_dir``, which say how the run was started)."""
    allowed, refused = resume_differences(saved, current, runtime_keys, schema, part)
    if refused:
        lines = "\n".join(f"  {k}: {short(a)} -> {short(b)}" for k, a, b in refused)
        raise ConfigError(
            f"cannot resume from {path}: the config differs from the one this run was trained with in "
            f"key(s) that change the model, data or recipe:\n{lines}\n"
            f"Start a new run instead: set train.resume=never (this run's checkpoints are then overwritten) "
            f"or a new train.out_dir; keys a resume may change: {', '.join(runtime_keys)}"
        )
    allowed = [d for d in allowed if d[0] not in ("train.resume", "train.out_dir")]  # how it was started
    return "; ".join(f"{k}: {short(a)} -> {short(b)}" for k, a, b in allowed)
