"""The rules for the names and file paths clients send: memory names, and ingest-by-path confinement.

Everything here raises library errors whose messages say the fix, so the server answers a 4xx:
an invalid name or a path outside the allowed root is a :class:`ConfigError` (400), a missing path
a :class:`NotFound` (404). Paths the OS cannot resolve (a symlink loop, a name too long) are
ConfigErrors too, never a 500.
"""

from __future__ import annotations

import re
from pathlib import Path

from omnimem.errors import ConfigError, NotFound

__all__ = ["NAME", "check_name", "is_memory_dir", "confine"]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # a memory name: one directory, no separators or dots


def check_name(name: str) -> str:
    """``name`` if it is a valid memory name (one directory, no separators, no dots)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(
            f"invalid memory name {name!r}: use 1-64 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return name


def is_memory_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "config.json").exists() or (path / "memory.db").exists())


def confine(path: str, allowed_root: Path | None) -> Path:
    """The real path of ``path`` (relative paths are taken under ``allowed_root``) if it lies inside
    ``allowed_root``, every symlink resolved; raises :class:`ConfigError` otherwise.

    A folder is accepted only if no file under it resolves outside the root either, or loops.
    """
    if allowed_root is None:
        raise ConfigError("ingest by path is disabled: start the server with allowed_root=... (or upload the file)")
    if "\x00" in path:
        raise ConfigError("path contains a NUL byte")
    root = allowed_root.resolve()
    candidate = Path(path)
    full = candidate if candidate.is_absolute() else root / candidate
    real = _resolve(full, path)
    if not real.is_relative_to(root):
        raise ConfigError(f"path {_short(path)} is outside the allowed root {str(root)!r}; pass a path under it")
    if not _exists(real, path):
        raise NotFound(f"path {_short(path)} does not exist under the allowed root")
    if real.is_dir():
        try:
            children = list(real.rglob("*"))
        except (OSError, RuntimeError) as e:
            raise ConfigError(
                f"cannot list the folder {_short(path)}: {_reason(e)}; fix or remove what it names"
            ) from e
        for child in children:
            inside = child.relative_to(real)
            if not _resolve(child, str(Path(path) / inside)).is_relative_to(root):
                raise ConfigError(f"{inside} in {_short(path)} links outside the allowed root; remove it")
    return real


def _resolve(full: Path, shown: str) -> Path:
    """``full.resolve()``, with a symlink loop or an unusable name as a ConfigError naming ``shown``."""
    try:
        real = full.resolve()
        looping = real.is_symlink()  # Python >= 3.13 returns a looping link unresolved instead of raising
    except RuntimeError as e:  # Python < 3.13: "Symlink loop from ..."
        raise ConfigError(f"path {_short(shown)} is a symlink loop; remove the looping link") from e
    except OSError as e:
        raise ConfigError(f"path {_short(shown)} cannot be resolved: {_reason(e)}; pass a valid path") from e
    if looping:
        raise ConfigError(f"path {_short(shown)} is a symlink loop; remove the looping link")
    return real


def _exists(real: Path, shown: str) -> bool:
    try:
        real.stat()
    except FileNotFoundError:
        return False
    except OSError as e:  # too long, a loop, not a directory on the way
        raise ConfigError(f"path {_short(shown)} cannot be read: {_reason(e)}; pass a valid path") from e
    return True


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror  # "File name too long", "Too many levels of symbolic links" ...
    return str(error) or type(error).__name__


def _short(path: str, limit: int = 120) -> str:
    """``path`` quoted for a message, its middle cut when long (a 4,000-character path)."""
    text = repr(path)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]} ({len(path)} characters)"
