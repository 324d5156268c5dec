"""Exceptions raised where the cause is known; messages name the file, key or shape involved."""
from __future__ import annotations


class SeldError(Exception):
    """Base class of every error textseld raises on purpose."""


class ConfigError(SeldError, ValueError):
    """A config file or override is invalid (unknown key, wrong type, missing file)."""


class DataError(SeldError, ValueError):
    """An input file (audio, CSV, HDF5) is unreadable or malformed."""


class CheckpointError(SeldError, ValueError):
    """A checkpoint is missing, of the wrong kind, or its keys do not match the model."""
