"""The few exceptions omnimem raises. Each says what happened and how to fix it.

Every class derives from :class:`OmnimemError` and from the built-in it refines, so callers can
catch either ``omnimem.OmnimemError`` or the usual ``ValueError`` / ``ImportError`` / ...
"""

from __future__ import annotations

__all__ = [
    "OmnimemError",
    "ConfigError",
    "BackendUnavailable",
    "NotFound",
    "CorruptInput",
    "StorageError",
    "MemoryLocked",
]


class OmnimemError(Exception):
    """Base class of every error omnimem raises on purpose."""


class ConfigError(OmnimemError, ValueError):
    """A configuration value or argument is invalid, or disagrees with the memory on disk."""


class BackendUnavailable(OmnimemError, ImportError):
    """An optional dependency or a model is missing; the message names what to install."""


class NotFound(OmnimemError, LookupError):
    """An id, a name or a path does not exist."""


class CorruptInput(OmnimemError, ValueError):
    """Input data (text, media, JSON, a database file) cannot be read as what it claims to be."""


class StorageError(OmnimemError, OSError):
    """The storage layer failed (disk full, read-only, I/O error); nothing partial was committed."""


class MemoryLocked(StorageError):
    """Another process holds the write lock of this memory for longer than the configured wait."""


def missing_extra(package: str, extra: str) -> BackendUnavailable:
    """The error to raise when an optional ``package`` is not installed."""
    return BackendUnavailable(f"{package!r} is not installed; install it with: pip install 'omnimem[{extra}]'")
