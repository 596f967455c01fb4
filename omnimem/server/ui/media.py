"""Media for the UI's players: source files served with HTTP range requests, and blobs, both confined.

A player asks for ``/m/NAME/media?id=ITEM``: the server serves the file that item names as its
``source`` -- never a path from the request -- and only when all of these hold:

- the key may read memory NAME (checked by the caller, with :func:`~omnimem.server.auth.authorize`);
- the item is an audio or video segment of that memory;
- the item was read from a file: its episode is ``file:<sha256 prefix>`` (one file, one episode);
- the file there now has exactly that content: its SHA-256 starts with the episode's prefix.

So a key that may only add text to a memory cannot make the server read ``/etc/passwd`` by naming
it as an item's source: no file but the bytes the memory really ingested is ever served. Digests are
cached per (path, inode, mtime, size), so a large video is hashed once. Starlette's ``FileResponse``
answers ``Range`` requests (206, ``Content-Range``), which is what lets a ``<video>`` element seek.

Blobs (keyframes, images) are served by address from the memory's own blob store; raster image types
are shown inline, anything else is a download.
"""

from __future__ import annotations

import mimetypes
import re
import threading
from pathlib import Path
from typing import Any

from omnimem.errors import NotFound

__all__ = ["MediaFiles", "BLOB_ADDRESS", "blob_type"]

BLOB_ADDRESS = re.compile(r"[0-9a-f]{64}(\.[a-z0-9]{1,10})?")
_EPISODE = re.compile(r"file:([0-9a-f]{8,64})")
_IMAGE_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
    ".webp": "image/webp", ".bmp": "image/bmp",
}  # fmt: skip
_PLAYABLE = ("audio", "video")


def blob_type(address: str) -> str | None:
    """The content type a blob is shown inline with, or None (then it is a download)."""
    return _IMAGE_TYPES.get(Path(address).suffix.lower())


class MediaFiles:
    """Finds the file behind an item, proving it is the file the memory ingested."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._digests: dict[tuple[str, int, int, int], str] = {}  # (path, inode, mtime_ns, size) -> sha256

    def path_of(self, item: Any) -> Path:
        """The source file of a playable ``item``; raises :class:`NotFound` saying why not."""
        if item.modality not in _PLAYABLE:
            raise NotFound(f"item {item.id!r} is {item.modality}, not audio or video: it has nothing to play")
        match = _EPISODE.fullmatch(item.episode or "")
        if not item.source or match is None:
            raise NotFound(f"item {item.id!r} was not read from a media file, so there is nothing to play")
        try:
            real = Path(item.source).resolve(strict=True)
            st = real.stat()
        except (OSError, RuntimeError):
            raise NotFound(f"the source file of item {item.id!r} is gone; it was {item.source!r}") from None
        if not real.is_file():
            raise NotFound(f"the source of item {item.id!r} is not a regular file")
        key = (str(real), st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            digest = self._digests.get(key)
        if digest is None:
            from omnimem.memory.media import file_digest

            digest = file_digest(real)
            with self._lock:
                self._digests[key] = digest
        if not digest.startswith(match.group(1)):
            raise NotFound(f"the file {item.source!r} changed since it was remembered; ingest it again to play it")
        return real

    def response(self, item: Any) -> Any:
        """A ``FileResponse`` (ranges supported) of the item's source file."""
        from fastapi.responses import FileResponse

        path = self.path_of(item)
        kind = mimetypes.guess_type(path.name)[0]
        if not kind or kind.split("/")[0] not in _PLAYABLE:
            kind = f"{item.modality}/{'mp4' if item.modality == 'video' else 'mpeg'}"
        response = FileResponse(path, media_type=kind, content_disposition_type="inline", filename=path.name)
        response.headers["cache-control"] = "private, max-age=300"
        response.headers["content-security-policy"] = "sandbox; default-src 'none'"
        return response


def blob_response(mem: Any, address: str) -> Any:
    """The blob ``address`` of ``mem``: inline for raster images, a download otherwise."""
    from fastapi.responses import Response

    if not BLOB_ADDRESS.fullmatch(address) or address not in mem.blobs:
        raise NotFound(f"no blob {address[:80]!r} in this memory")
    data = mem.blobs.get(address)
    kind = blob_type(address)
    headers = {"cache-control": "private, max-age=3600", "content-security-policy": "sandbox; default-src 'none'"}
    if kind is None:
        headers["content-disposition"] = f'attachment; filename="{address}"'
    return Response(data, media_type=kind or "application/octet-stream", headers=headers)
