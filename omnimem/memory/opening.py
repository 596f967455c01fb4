"""Opening a memory directory: validate it, reconcile the saved and given configs, pick the image encoder.

The saved ``config.json`` is what built the memory, so ``Memory.open(path)`` needs no arguments; a
given config may change search and media options but never the text encoder (its vectors are on disk).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from omnimem.config import MemoryConfig, load_config
from omnimem.encoders import Encoder, create_encoder
from omnimem.errors import ConfigError, CorruptInput, NotFound

__all__ = ["DB_FILE", "CONFIG_FILE", "existing_config", "resolve_config", "image_encoder_for", "write_config"]

DB_FILE, CONFIG_FILE = "memory.db", "config.json"
_DB, _CONFIG = DB_FILE, CONFIG_FILE


def existing_config(root: Path, *, create: bool) -> MemoryConfig | None:
    """The saved config of the memory at ``root``; None for a new memory. Validates the directory."""
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} is a file, not a memory directory; pass a directory path")
    if not root.exists():
        if not create:
            raise NotFound(f"no memory at {root}; create one with Memory.open({str(root)!r})")
        return None
    if (root / _CONFIG).exists():
        db = root / _DB
        if not db.is_file() or db.stat().st_size == 0:
            state = "missing" if not db.exists() else "empty (0 bytes)" if db.is_file() else "not a file"
            raise CorruptInput(
                f"{db} is {state}, but {root / _CONFIG} says a memory was built here: its items are gone."
                f" Restore {_DB} from a backup; or, to start over, move {root} away and create a new memory"
            )
        return load_config(root / _CONFIG)
    if (root / _DB).exists():
        return None
    if any(root.iterdir()):
        raise ConfigError(
            f"{root} is not an omnimem memory (no {_CONFIG} or {_DB}) and is not empty; pass an empty or new directory"
        )
    if not create:
        raise NotFound(f"no memory at {root}")
    return None


def resolve_config(
    root: Path | str, saved: MemoryConfig | None, given: MemoryConfig | None, encoder: Encoder | None
) -> MemoryConfig:
    if given is not None and not isinstance(given, MemoryConfig):
        raise ConfigError(f"config must be a MemoryConfig, got {type(given).__name__}")
    if saved is None:
        cfg = given or MemoryConfig()
        if encoder is not None:
            cfg = dataclasses.replace(cfg, encoder=dataclasses.replace(cfg.encoder, name=encoder.name, dim=None))
        return cfg
    if given is None:
        return saved
    if given.encoder.name != saved.encoder.name and encoder is None:
        raise ConfigError(
            f"{root} was built with encoder {saved.encoder.name!r}, not {given.encoder.name!r}; the"
            " encoder of a memory cannot change (use a new directory)"
        )
    return dataclasses.replace(given, encoder=saved.encoder)


def image_encoder_for(cfg: MemoryConfig, given: Encoder | None) -> tuple[Encoder | None, MemoryConfig]:
    """The image encoder to use (given, or built from ``cfg.media``) and the config that names it."""
    media = cfg.media
    if given is None:
        if media.image_encoder is None:
            return None, cfg
        options = {"pretrained": media.image_pretrained} if media.image_encoder == "open_clip" else {}
        return create_encoder(media.image_encoder, model=media.image_model, **options), cfg
    if "image" not in getattr(given, "modalities", ()):
        raise ConfigError(f"image_encoder {given.name!r} does not embed images (modalities {given.modalities})")
    name = getattr(given, "registry_name", None)
    media = dataclasses.replace(media, image_encoder=name, image_model=given.name if name else None)
    return given, dataclasses.replace(cfg, media=media)


def write_config(path: Path, config: MemoryConfig, *, exclusive: bool = False) -> bool:
    """Write ``config.json`` atomically; with ``exclusive``, only if none exists (returns whether it did)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(config.to_json())
    if not exclusive:
        os.replace(tmp, path)
        return True
    try:
        os.link(tmp, path)  # fails when another process wrote one first
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
