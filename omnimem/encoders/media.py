"""Media files by content: kind detection, safe opening, streaming 16 kHz mono audio, image loading,
text decoding.

A file's kind comes from its bytes (magic numbers, then a PIL / PyAV probe), never from its name, so a
renamed non-media file is refused with :class:`~omnimem.errors.CorruptInput` naming it; the name only
says what the file claims to be (:func:`named_kind`). Audio is decoded and resampled by PyAV (FFmpeg's
swresample) in bounded chunks, so memory does not grow with the length of the recording.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from omnimem.errors import CorruptInput, NotFound, missing_extra

__all__ = [
    "SAMPLE_RATE",
    "detect_kind",
    "open_container",
    "iter_audio",
    "load_audio",
    "load_image",
    "has_audio",
    "named_kind",
    "read_text",
    "FALLBACK_ENCODING",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # Hz; what Whisper-family models expect
MAX_IMAGE_PIXELS = 200_000_000  # larger images are refused (decompression-bomb guard)
FALLBACK_ENCODING = "cp1252"  # text that is not UTF-8: Windows-1252 (reads Latin-1's printable bytes too)

# What a file's name claims it holds; the content decides what it is.
_NAMED_KINDS: dict[str, frozenset[str]] = {
    "image": frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"}),
    "audio": frozenset({".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aif", ".aiff"}),
    "video": frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg", ".3gp"}),
}

# Leading bytes of image formats; video/audio containers are told apart by a PyAV probe instead,
# since one container (mp4, ogg, matroska) can hold either.
_IMAGE_MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"\xff\xd8\xff"),  # JPEG
    (0, b"GIF87a"),
    (0, b"GIF89a"),
    (0, b"II*\x00"),  # TIFF little-endian
    (0, b"MM\x00*"),  # TIFF big-endian
    (8, b"WEBP"),
)


def _av() -> Any:
    try:
        import av
    except ImportError as e:
        raise missing_extra("av", "media") from e
    return av


def _check_file(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{path} does not exist or is not a file; check the path")
    if path.stat().st_size == 0:
        raise CorruptInput(f"{path} is empty (0 bytes); re-copy or re-download it")
    return path


def detect_kind(path: str | os.PathLike[str]) -> str | None:
    """``"image"`` | ``"audio"`` | ``"video"`` from the file's content, or None when it is not media.

    Image magic numbers first (PIL), then a PyAV probe of the container: any real video stream (not a
    cover picture, not a still-image pipe) makes it a video, an audio stream alone an audio file.
    """
    path = _check_file(path)
    with path.open("rb") as f:
        head = f.read(32)
    if any(head[at : at + len(magic)] == magic for at, magic in _IMAGE_MAGIC):
        return "image"
    av = _av()
    try:  # a file object, not a name: FFmpeg would otherwise guess from the extension
        with path.open("rb") as f, av.open(f) as container:
            if not _is_still_image(container.format.name):
                if any(not (s.disposition & av.stream.Disposition.attached_pic) for s in container.streams.video):
                    return "video"
                if container.streams.audio:
                    return "audio"
    except av.FFmpegError:
        pass
    try:  # image formats without a magic number in the table above
        from PIL import Image, UnidentifiedImageError

        with Image.open(path) as image:
            image.verify()
        return "image"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def named_kind(path: str | os.PathLike[str]) -> str | None:
    """``"image"`` | ``"audio"`` | ``"video"`` that the file's extension claims, or None (not a media name)."""
    suffix = Path(path).suffix.lower()
    return next((kind for kind, suffixes in _NAMED_KINDS.items() if suffix in suffixes), None)


def read_text(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(text, encoding)`` of a text file: UTF-8 (a byte-order mark is dropped), BOM-marked UTF-16, else
    :data:`FALLBACK_ENCODING` (logged: the caller records it).

    Content that decodes mostly to control characters (NUL, escape codes) is binary, not text, and
    raises :class:`CorruptInput` naming the file.
    """
    path = _check_file(path)
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as e:
            raise CorruptInput(f"{path} starts like UTF-16 text but is not ({e}); convert it to UTF-8") from e
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text, encoding = data.decode(FALLBACK_ENCODING), FALLBACK_ENCODING
    except UnicodeDecodeError:  # the five bytes Windows-1252 leaves undefined: Latin-1 reads any byte
        text, encoding = data.decode("latin-1"), "latin-1"
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if controls > len(text) // 100:
        raise CorruptInput(
            f"{path} holds binary data, not text ({controls} control bytes); if it is text in another encoding"
            " (UTF-16 without a byte-order mark, UTF-32), convert it to UTF-8: iconv -f <its encoding> -t UTF-8"
        )
    log.warning("%s is not UTF-8; read it as %s", path, encoding)
    return text, encoding


def open_container(path: str | os.PathLike[str]) -> Any:
    """``av.open(path)`` that turns FFmpeg's failures into :class:`CorruptInput` naming the file."""
    path = _check_file(path)
    av = _av()
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise CorruptInput(
            f"{path} cannot be read as audio or video ({e}); it is truncated, corrupt or not a media file"
            " (re-download it, or re-encode it with ffmpeg)"
        ) from e
    if _is_still_image(container.format.name):
        container.close()
        raise CorruptInput(f"{path} is not an audio or video file (FFmpeg reads it as {container.format.name!r})")
    if not container.streams.audio and not container.streams.video:
        container.close()
        raise CorruptInput(f"{path} has no audio or video stream; pass an audio or video file")
    return container


def _is_still_image(format_name: str) -> bool:
    """FFmpeg's image demuxers (picked by extension or content) and its text-as-video demuxer."""
    return format_name in ("image2", "tty") or format_name.endswith("_pipe")


def has_audio(path: str | os.PathLike[str]) -> bool:
    """Whether the file holds at least one audio stream."""
    with open_container(path) as container:
        return bool(container.streams.audio)


def iter_audio(
    path: str | os.PathLike[str], *, sample_rate: int = SAMPLE_RATE, chunk_s: float = 30.0
) -> Iterator[np.ndarray]:
    """Decode the first audio stream as float32 mono at ``sample_rate``, in chunks of ``chunk_s`` seconds.

    Yields float32 ``(n,)`` arrays, each ``round(chunk_s * sample_rate)`` samples except the last.
    A video with no audio track yields nothing; an audio file that holds no samples raises
    :class:`CorruptInput`. Memory is bounded by one chunk plus one decoded frame.
    """
    if chunk_s <= 0 or sample_rate <= 0:
        raise ValueError(f"chunk_s and sample_rate must be positive, got {chunk_s}, {sample_rate}")
    av = _av()
    chunk = max(1, round(chunk_s * sample_rate))
    with open_container(path) as container:
        if not container.streams.audio:
            log.info("%s has no audio track; nothing to transcribe", path)
            return
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        parts: list[np.ndarray] = []
        held = 0
        total = 0
        try:
            for frame in _decode_with_flush(container, stream, resampler):
                samples = frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                parts.append(samples)
                held += samples.size
                while held >= chunk:
                    buffer = np.concatenate(parts)
                    yield buffer[:chunk]
                    total += chunk
                    parts, held = [buffer[chunk:]], buffer.size - chunk
        except av.FFmpegError as e:
            raise CorruptInput(
                f"{path}: audio decoding failed after {total / sample_rate:.1f} s ({e}); the file is"
                " corrupt or its codec is unsupported (re-encode it with ffmpeg)"
            ) from e
        if held:
            total += held
            yield np.concatenate(parts)
        if total == 0 and not container.streams.video:
            raise CorruptInput(f"{path} holds no audio samples (zero-length audio); pass a non-empty recording")


def _decode_with_flush(container: Any, stream: Any, resampler: Any) -> Iterator[Any]:
    for frame in container.decode(stream):
        yield from resampler.resample(frame)
    yield from resampler.resample(None)  # flush the resampler's tail


def load_audio(path: str | os.PathLike[str], *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The whole audio track as float32 ``(n,)`` at ``sample_rate`` (short clips; prefer :func:`iter_audio`)."""
    parts = list(iter_audio(path, sample_rate=sample_rate))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def load_image(image: Any) -> Any:
    """An RGB ``PIL.Image`` from a PIL image, a path or an ``(h, w, 3)`` uint8 array.

    A path that is not a readable image, or one larger than ``MAX_IMAGE_PIXELS``, raises
    :class:`CorruptInput` naming the file.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise CorruptInput(f"image arrays must be (h, w, 3) RGB, got shape {image.shape}")
        return Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB")
    if isinstance(image, (str, os.PathLike)):
        path = _check_file(image)
        try:
            with Image.open(path) as opened:
                if opened.width * opened.height > MAX_IMAGE_PIXELS:
                    raise CorruptInput(
                        f"{path} is {opened.width}x{opened.height} pixels, over the {MAX_IMAGE_PIXELS:,} limit;"
                        " downscale it first"
                    )
                return opened.convert("RGB")
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as e:
            raise CorruptInput(f"{path} cannot be read as an image ({e}); it is truncated or not an image") from e
    raise CorruptInput(f"expected a PIL image, a path or an (h, w, 3) array, got {type(image).__name__}")
