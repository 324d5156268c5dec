"""One config system: YAML files loaded into typed, validated dataclasses.

* ``load_config(path, Schema, overrides)`` reads YAML, applies ``a.b=value`` overrides and builds
  the dataclass tree, rejecting unknown keys, wrong types and missing required keys with an error
  that names the file and the dotted key.
* ``save_config(cfg, path)`` writes the fully resolved config (atomically) next to an output.
* ``to_dict`` / ``from_dict`` convert between dataclasses and plain YAML-able data. No pickle.

Schemas are ordinary dataclasses; supported field types are ``int``, ``float``, ``str``, ``bool``,
``Optional[T]``, ``list[T]``, ``tuple[T, ...]``, ``dict[str, T]``, ``Literal[...]`` and nested
dataclasses. An ``int`` is accepted where a ``float`` is expected; a ``bool`` is never an ``int``.

Numbers: YAML 1.1 (PyYAML) reads ``1e-6``, ``1E-6`` or ``3e-4`` (exponent without a dot) as a
*string*, so a ``float`` field also accepts a string in any numeric spelling Python's ``float()``
accepts (``1e-6``, ``.5``, ``1.0e-4``, ``1_000``, ``+2``); words such as ``nan``/``inf`` and
non-numbers (``fast``) stay errors naming the key. An ``int`` field never takes a float or a
string: ``4.5`` or ``1e3`` there is an error. The resolved YAML written by :func:`save_config` holds
real floats (PyYAML writes ``1.0e-06``), so it loads back to the same values.
"""
from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from seld.errors import ConfigError
from seld.io_utils import atomic_write_text

T = TypeVar("T")

# A numeric spelling: digits (with single underscores between them), optional dot, optional exponent.
_NUMERIC_RE = re.compile(r"[+-]?(\d+(_\d+)*(\.(\d+(_\d+)*)?)?|\.\d+(_\d+)*)([eE][+-]?\d+(_\d+)*)?")


def parse_float(value: Any) -> float | None:
    """``value`` as a float if it is a number or a numeric string (``'1e-6'``, ``'.5'``), else None.

    Booleans are not numbers. Strings must look like a number (so ``'nan'``, ``'inf'`` and
    ``'fast'`` give None) and be accepted by Python's ``float()``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if _NUMERIC_RE.fullmatch(text):
            try:
                return float(text)
            except ValueError:
                return None
    return None

_MISSING = object()


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str, source: str) -> Any:
    """Check ``value`` against type ``tp`` and build nested dataclasses; raise ConfigError if not."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where, source)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{source}: key '{where}' = {value!r} is not a valid {_type_name(tp)}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(
                f"{source}: key '{where}' = {value!r} is not one of {', '.join(map(repr, choices))}"
            )
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key '{where}' must be a mapping, got {type(value).__name__}")
        return from_dict(tp, value, source=source, prefix=where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: key '{where}' must be a list, got {value!r}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{where}[{i}]", source) for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key '{where}' must be a mapping, got {value!r}")
        _, val_tp = get_args(tp) or (str, Any)
        return {str(k): _convert(v, val_tp, f"{where}.{k}", source) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: key '{where}' must be true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: key '{where}' must be an integer, got {value!r}")
        return value
    if tp is float:
        number = parse_float(value)
        if number is None:
            raise ConfigError(f"{source}: key '{where}' must be a number, got {value!r}")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: key '{where}' must be a string, got {value!r}")
        return value
    raise ConfigError(f"{source}: key '{where}' has unsupported schema type {_type_name(tp)}")


def from_dict(schema: type[T], data: dict[str, Any], source: str = "<dict>", prefix: str = "") -> T:
    """Build dataclass ``schema`` from ``data``; unknown or missing keys raise ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: '{prefix or '<root>'}' must be a mapping, got {type(data).__name__}")
    hints = get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        keys = ", ".join(f"'{prefix + '.' if prefix else ''}{k}'" for k in unknown)
        raise ConfigError(
            f"{source}: unknown key {keys}; valid keys here: {', '.join(sorted(fields))}"
        )
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        where = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], where, source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key '{where}'")
    try:
        obj = schema(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: {prefix or '<root>'}: {exc}") from exc
    return obj


def to_dict(obj: Any) -> Any:
    """Plain (YAML-able) data from a dataclass tree."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``'train.batch_size=4'`` into (['train', 'batch_size'], 4); the value is YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': value is not valid YAML ({exc})") from exc
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str] | None, schema: type | None = None) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b=value`` override set (creating mappings as needed)."""
    import copy

    out = copy.deepcopy(data) if data else {}
    for text in overrides or []:
        keys, value = parse_override(text)
        node = out
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {} if node.get(k) is None else node[k]
                if not isinstance(node[k], dict):
                    raise ConfigError(f"override '{text}': '{k}' is not a mapping")
            node = node[k]
        node[keys[-1]] = value
    return out


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping; missing file or bad YAML raises ConfigError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(
    path: str | os.PathLike[str] | None, schema: type[T], overrides: list[str] | None = None
) -> T:
    """Load ``path`` (or the schema's defaults when None), apply overrides, validate into ``schema``."""
    data = read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else f"<{schema.__name__} defaults>"
    data = apply_overrides(data, overrides)
    return from_dict(schema, data, source=source if not overrides else f"{source} (+ overrides)")


def dump_config(cfg: Any) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


def save_config(cfg: Any, path: str | os.PathLike[str]) -> Path:
    """Write the fully resolved config as YAML (atomically) and return the path."""
    p = Path(path)
    atomic_write_text(p, dump_config(cfg))
    return p
