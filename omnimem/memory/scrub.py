"""What a privacy delete removes besides the stores: copies of forgotten items in files beside them.

A memory directory holds more than ``memory.db``: agents keep LangGraph checkpoints there
(``*.ckpt.sqlite``: a chat thread's buffer and prompts quote the turns it saw) and the REST server
keeps uploaded files (``uploads/``, the ``source`` of the items read from them). ``forget`` calls
:func:`~omnimem.stores.checkpoints.scrub_checkpoints` and :func:`drop_sources` so that no file under the directory still holds a
forgotten item's text.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from omnimem.stores.checkpoints import scrub_checkpoints

__all__ = ["scrub_checkpoints", "drop_sources"]

_OWN_FOLDERS = ("index", "blobs")  # the memory's derived indexes and blob store, cleaned by their own code


def drop_sources(root: Path, sources: Iterable[str | None], still_used: set[str]) -> int:
    """Delete source files that live inside the memory directory (uploads) and that no remaining item
    names as its source; returns how many went. Files outside ``root`` are the user's: never touched."""
    base = root.resolve()
    dropped = 0
    for source in dict.fromkeys(s for s in sources if s and s not in still_used):
        try:
            path = Path(source).resolve()
        except (OSError, RuntimeError, ValueError):
            continue
        if not path.is_relative_to(base) or not path.is_file():
            continue
        inside = path.relative_to(base).parts
        if len(inside) > 1 and inside[0] not in _OWN_FOLDERS:  # never the memory's own files
            path.unlink()
            dropped += 1
    return dropped
