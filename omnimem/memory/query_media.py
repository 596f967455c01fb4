"""What a query's media becomes before GRASP reads it (``Memory.context(image=, audio=, video=)``).

A query video is read as a few of its frames (the image space, visual grounding) and its audio track;
query audio is transcribed with the memory's transcriber (the text searched, facts grounded on what was
heard). M3KG-RAG, "Modality-wise retrieval": each modality of the query goes to its own space.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from omnimem.errors import ConfigError

__all__ = ["QueryMedia", "read_query_media", "query_video"]


@dataclass(frozen=True)
class QueryMedia:
    """The query's media, per modality."""

    image: Any = None  # the query image(s), a query video's frames appended
    heard: str | None = None  # the transcript of the query audio (None: no audio, or nothing said)
    audio: Any = None  # the audio as given (a path as str, or 16 kHz float32 samples), for audio grounding


def read_query_media(media: Any, image: Any = None, audio: Any = None, video: Any = None) -> QueryMedia:
    """``image`` / ``audio`` / ``video`` of a query -> :class:`QueryMedia`; ``media`` is the memory's
    :class:`~omnimem.memory.media.MediaIngestor` (its transcriber is loaded only when there is audio)."""
    if video is not None:
        frames, track = query_video(video)
        image = [*([] if image is None else image if isinstance(image, (list, tuple)) else [image]), *frames]
        audio = track if audio is None else audio
    if audio is None:
        return QueryMedia(image=image)
    source = os.fspath(audio) if isinstance(audio, (str, os.PathLike)) else audio
    heard = " ".join(s.text for s in media.transcriber.transcribe(source)).strip() or None
    return QueryMedia(image=image, heard=heard, audio=source)


def query_video(
    path: str | os.PathLike[str], *, max_frames: int = 4, max_audio_s: float = 120.0
) -> tuple[list[Any], Any]:
    """A query's video as what GRASP reads per modality: up to ``max_frames`` frames spread over it (for the
    image space and visual grounding) and its audio track (float32 16 kHz, at most ``max_audio_s``; None
    without one) for the transcript and audio grounding."""
    import numpy as np

    from omnimem.encoders.media import has_audio
    from omnimem.encoders.video import extract_audio, iter_frames, probe

    if max_frames < 1 or max_audio_s <= 0:
        raise ConfigError("max_frames must be >= 1 and max_audio_s positive")
    duration = max(probe(path).duration, 1e-3)
    frames = [f.image for f in iter_frames(path, fps=max_frames / duration, max_side=336, strict=False)]
    audio = None
    if has_audio(path):
        chunks, total = [], 0
        for chunk in extract_audio(path):
            chunks.append(chunk)
            total += len(chunk)
            if total >= max_audio_s * 16_000:
                break
        audio = np.concatenate(chunks)[: int(max_audio_s * 16_000)] if chunks else None
    return frames[:max_frames], audio
