"""One config system: YAML files loaded into typed, validated dataclasses.

* ``load_config(path, Schema, overrides)`` reads YAML (with its ``base:`` files, below), applies
  ``a.b=value`` overrides and builds the dataclass tree, rejecting unknown keys, wrong types and
  missing required keys with an error that names the file the key came from and the dotted key.
* ``read_config_file(path)`` gives the plain mapping of a file over its bases (no schema check).
* ``save_config(cfg, path)`` writes the fully resolved config (atomically) next to an output.
* ``to_dict`` / ``from_dict`` convert between dataclasses and plain YAML-able data. No pickle.

Inheritance: a file's top-level ``base:`` names the file (or a list of files, applied left to
right) that it overlays, relative to the naming file's folder; bases may have bases. The file's
mappings are merged into its bases' key by key, while a list or a scalar (``null`` too) replaces
the base's value whole. So a config says only what differs from its base, and a key that no file
sets takes its schema default (``--print-config`` and ``config.resolved.yml`` show every key). A
missing base, a cycle of bases or a base that is not a mapping is an error naming the file.

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

import copy
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

BASE_KEY = "base"
"""Top-level key of a config file that names the file(s) it overlays (see the module docstring)."""

KeyPath = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ConfigSources:
    """Where each key of a merged config mapping was set, so that an error names that file.

    ``default`` names the config as a whole (the file loaded, with ``(+ overrides)`` when there
    are any): a check of a whole section (a schema's ``__post_init__``) cites it. ``keys`` maps a
    key path (``('train', 'lr')``) to the file or override that set it last.
    """

    default: str
    keys: dict[KeyPath, str] = dataclasses.field(default_factory=dict)

    def of(self, where: str) -> str:
        """The source of the dotted key ``where`` (``a.b[2].c``): its longest set prefix, else ``default``."""
        path = tuple(part for part in re.sub(r"\[\d+\]", "", where).split(".") if part)
        while path:
            if path in self.keys:
                return self.keys[path]
            path = path[:-1]
        return self.default


def _source_of(source: str | ConfigSources, where: str) -> str:
    """The file to name in an error about the dotted key ``where``."""
    return source.of(where) if isinstance(source, ConfigSources) else source


def _source_name(source: str | ConfigSources) -> str:
    """The name of the config as a whole."""
    return source.default if isinstance(source, ConfigSources) else source


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str, source: str | ConfigSources) -> Any:
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
        raise ConfigError(f"{_source_of(source, where)}: key '{where}' = {value!r} is not a valid {_type_name(tp)}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(
                f"{_source_of(source, where)}: key '{where}' = {value!r} is not one of {', '.join(map(repr, choices))}"
            )
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(
                f"{_source_of(source, where)}: key '{where}' must be a mapping, got {type(value).__name__}"
            )
        return from_dict(tp, value, source=source, prefix=where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{_source_of(source, where)}: key '{where}' must be a list, got {value!r}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{where}[{i}]", source) for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{_source_of(source, where)}: key '{where}' must be a mapping, got {value!r}")
        _, val_tp = get_args(tp) or (str, Any)
        return {str(k): _convert(v, val_tp, f"{where}.{k}", source) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{_source_of(source, where)}: key '{where}' must be true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{_source_of(source, where)}: key '{where}' must be an integer, got {value!r}")
        return value
    if tp is float:
        number = parse_float(value)
        if number is None:
            raise ConfigError(f"{_source_of(source, where)}: key '{where}' must be a number, got {value!r}")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{_source_of(source, where)}: key '{where}' must be a string, got {value!r}")
        return value
    raise ConfigError(f"{_source_of(source, where)}: key '{where}' has unsupported schema type {_type_name(tp)}")


def from_dict(
    schema: type[T], data: dict[str, Any], source: str | ConfigSources = "<dict>", prefix: str = ""
) -> T:
    """Build dataclass ``schema`` from ``data``; unknown or missing keys raise ConfigError.

    ``source`` names where ``data`` came from in errors: one name, or a :class:`ConfigSources`
    that knows the file of each key (a merged file and its bases).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        where = _source_of(source, prefix) if prefix else _source_name(source)
        raise ConfigError(f"{where}: '{prefix or '<root>'}' must be a mapping, got {type(data).__name__}")
    hints = get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        by_file: dict[str, list[str]] = {}
        for k in unknown:
            key = f"{prefix}.{k}" if prefix else str(k)
            by_file.setdefault(_source_of(source, key), []).append(f"'{key}'")
        raise ConfigError("; ".join(
            f"{file}: unknown key {', '.join(keys)}; valid keys here: {', '.join(sorted(fields))}"
            for file, keys in by_file.items()
        ))
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        where = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], where, source)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_source_name(source)}: missing required key '{where}'")
    try:
        obj = schema(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{_source_name(source)}: {prefix or '<root>'}: {exc}") from exc
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


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping of config file ``path`` with its ``base:`` files applied (not checked against a schema)."""
    return _resolve_bases(Path(path), ())[0]


def _resolve_bases(path: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], dict[KeyPath, str]]:
    """(mapping, file of each key path) of ``path`` overlaid on its bases; ``chain``: the files naming it."""
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        if not chain:
            raise
        raise ConfigError(f"{exc} (a '{BASE_KEY}' of {chain[-1]})") from None
    names = data.pop(BASE_KEY, None)
    names = [] if names is None else [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(f"{path}: '{BASE_KEY}' must be a file name or a list of file names, got {names!r}")
    visiting = [*chain, path]
    resolved = [p.resolve() for p in visiting]
    merged: dict[str, Any] = {}
    sources: dict[KeyPath, str] = {}
    for name in names:
        base = Path(os.path.normpath(path.parent / name))
        if base.resolve() in resolved:
            cycle = [*visiting[resolved.index(base.resolve()):], base]
            raise ConfigError(f"{path}: cycle of bases: {' -> '.join(map(str, cycle))}")
        if not base.is_file():
            raise ConfigError(f"{path}: base '{name}' not found: {base}")
        _overlay(merged, sources, *_resolve_bases(base, tuple(visiting)), ())
    _overlay(merged, sources, data, {key: str(path) for key in _key_paths(data, ())}, ())
    return merged, sources


def _key_paths(data: dict[str, Any], prefix: KeyPath) -> list[KeyPath]:
    """Every key path of the nested mappings in ``data`` (not into lists)."""
    paths = []
    for key, value in data.items():
        paths.append((*prefix, str(key)))
        if isinstance(value, dict):
            paths += _key_paths(value, (*prefix, str(key)))
    return paths


def _overlay(
    merged: dict[str, Any], sources: dict[KeyPath, str], layer: dict[str, Any], layer_sources: dict[KeyPath, str],
    prefix: KeyPath,
) -> None:
    """Merge ``layer`` into ``merged`` in place: mappings key by key, anything else replaced whole."""
    for key, value in layer.items():
        path = (*prefix, str(key))
        sources[path] = layer_sources[path]
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            _overlay(merged[key], sources, value, layer_sources, path)
            continue
        for old in [p for p in sources if len(p) > len(path) and p[: len(path)] == path]:
            del sources[old]
        sources.update({p: s for p, s in layer_sources.items() if len(p) > len(path) and p[: len(path)] == path})
        merged[key] = _unshared(value)


def _unshared(value: Any) -> Any:
    """A copy of plain YAML data in which no two places share a mapping or list (YAML anchors do:
    ``doa: *encoder``), so that a later overlay or override of one place leaves the others alone."""
    if isinstance(value, dict):
        return {k: _unshared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshared(v) for v in value]
    return value


def load_config(
    path: str | os.PathLike[str] | None, schema: type[T], overrides: list[str] | None = None
) -> T:
    """Load ``path`` (None: the schema's defaults) over its bases, apply overrides, validate into ``schema``."""
    if path is None:
        data: dict[str, Any] = {}
        sources = ConfigSources(f"<{schema.__name__} defaults>")
    else:
        data, keys = _resolve_bases(Path(path), ())
        sources = ConfigSources(str(path), keys)
    if overrides:
        label = f"{sources.default} (+ overrides)"
        keys = dict(sources.keys)
        for text in overrides:
            path_keys = tuple(parse_override(text)[0])
            keys = {p: s for p, s in keys.items() if p[: len(path_keys)] != path_keys}
            keys[path_keys] = label
        data = apply_overrides(data, overrides)
        sources = ConfigSources(label, keys)
    return from_dict(schema, data, source=sources)


def dump_config(cfg: Any) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


def save_config(cfg: Any, path: str | os.PathLike[str]) -> Path:
    """Write the fully resolved config as YAML (atomically) and return the path."""
    p = Path(path)
    atomic_write_text(p, dump_config(cfg))
    return p
