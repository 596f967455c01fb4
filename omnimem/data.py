"""Where the shared third-party evaluation data lives: ``$OMNIMEM_DATA`` or ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir"]


def data_dir() -> Path | None:
    """The shared data folder, or None when it is absent (a fresh clone has none).

    ``$OMNIMEM_DATA``, when set, is the only place looked at.
    """
    env = os.environ.get("OMNIMEM_DATA")
    here = Path(__file__).resolve().parent.parent
    candidates = [Path(env)] if env else [here.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for path in candidates:
        if path.is_dir():
            return path
    return None
