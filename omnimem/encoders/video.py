"""Long video -> time-aligned segments with keyframes, decoded with PyAV in a streaming way.

Pipeline (one stage per function, each a generator so memory does not grow with video length):
``probe`` -> ``iter_frames`` (uniform sampling at ``sample_fps``) -> scene-change detection on colour
histograms and keyframe selection with near-duplicate removal by perceptual hash (dHash, Krawetz 2013;
histogram shot-boundary detection as in Zhang et al. 1993) -> ``segment_video`` (fixed windows of
``segment_s`` snapped to the nearest scene cut within ``snap_s``, as in long-video QA pipelines such as
WorldMM's multi-scale episodic segments). The audio track goes to a transcriber via :func:`extract_audio`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omnimem.encoders.media import SAMPLE_RATE, _av, iter_audio, open_container
from omnimem.errors import ConfigError, CorruptInput

__all__ = [
    "VideoConfig",
    "VideoInfo",
    "Frame",
    "Keyframe",
    "VideoSegment",
    "probe",
    "iter_frames",
    "segment_video",
    "extract_audio",
    "colour_histogram",
    "histogram_distance",
    "dhash",
    "hamming",
]

log = logging.getLogger(__name__)


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class VideoConfig:
    """How a video is sampled, cut into scenes and segments, and summarised by keyframes."""

    sample_fps: float = 1.0  # frames analysed per second of video (scene-cut time resolution = 1 / this)
    segment_s: float = 30.0  # target segment length, seconds
    snap_s: float = 5.0  # a segment end moves to a scene cut at most this many seconds away
    scene_threshold: float = 0.4  # histogram distance (0..1) between consecutive samples that makes a cut
    keyframe_threshold: float = 0.2  # histogram distance (0..1) to the last keyframe that makes a new one
    dedupe_bits: int = 6  # dHash Hamming distance (0..64) at or below which a frame is a near-duplicate
    max_keyframes: int = 8  # keyframes kept per segment (the first plus the most novel)
    max_side: int = 512  # longest side of keyframe images, pixels (0 keeps the decoded size)
    hist_bins: int = 8  # histogram bins per RGB channel (bins**3 in all)
    strict: bool = True  # raise CorruptInput when a file decodes to much less than its declared duration

    def __post_init__(self) -> None:
        _check(self.sample_fps > 0, f"sample_fps must be positive, got {self.sample_fps}")
        _check(self.segment_s > 0, f"segment_s must be positive, got {self.segment_s}")
        _check(0 <= self.snap_s < self.segment_s, f"snap_s must be in [0, segment_s), got {self.snap_s}")
        _check(0 < self.scene_threshold <= 1, f"scene_threshold must be in (0, 1], got {self.scene_threshold}")
        _check(
            0 <= self.keyframe_threshold <= 1, f"keyframe_threshold must be in [0, 1], got {self.keyframe_threshold}"
        )
        _check(0 <= self.dedupe_bits <= 64, f"dedupe_bits must be in [0, 64], got {self.dedupe_bits}")
        _check(self.max_keyframes >= 1, f"max_keyframes must be >= 1, got {self.max_keyframes}")
        _check(self.max_side >= 0, f"max_side must be >= 0, got {self.max_side}")
        _check(2 <= self.hist_bins <= 64, f"hist_bins must be in [2, 64], got {self.hist_bins}")


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns from the container and the first decoded frame."""

    path: str  # the file
    duration: float  # seconds (container header, or the last packet when the header has none)
    fps: float  # average frame rate, frames per second
    width: int  # pixels
    height: int  # pixels
    codec: str  # video codec name, e.g. "h264", "vp8"
    has_audio: bool  # whether an audio track exists
    audio_codec: str | None = None  # audio codec name, when there is one


@dataclass(frozen=True)
class Frame:
    """One sampled frame: its time and an RGB image (longest side <= ``max_side``)."""

    t: float  # seconds from the start of the video
    image: Any  # PIL.Image.Image, RGB


@dataclass(frozen=True)
class Keyframe:
    """A frame kept to represent a segment."""

    t: float  # seconds from the start of the video
    image: Any  # PIL.Image.Image, RGB
    scene_cut: bool  # True when it is the first frame of a new scene
    novelty: float  # distance to the previous keyframe, 0..1 (1.0 for scene cuts and segment starts)


@dataclass(frozen=True)
class VideoSegment:
    """A span of the video: ``[t_start, t_end)`` seconds, its keyframes and the scene cuts inside it."""

    index: int  # 0-based position in the video
    t_start: float  # seconds
    t_end: float  # seconds
    keyframes: tuple[Keyframe, ...]  # in time order, at most max_keyframes, never empty
    scene_cuts: tuple[float, ...]  # times of scene starts in [t_start, t_end), seconds
    source: str  # the video file


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Duration, frame rate, size, codecs and audio presence; decodes one frame to prove the codec works.

    Raises :class:`CorruptInput` naming the file for truncated, corrupt or non-media files, files with no
    video stream, and codecs this FFmpeg build cannot decode.
    """
    with open_container(path) as container:
        if not container.streams.video:
            raise CorruptInput(f"{path} has no video stream; pass it as audio instead")
        stream = container.streams.video[0]
        codec = _codec_name(stream, path)
        duration = _declared_duration(container, stream)
        first = next(_decode_frames(container, stream, path), None)
        if first is None:
            raise CorruptInput(f"{path}: no video frame could be decoded; the file is truncated or corrupt")
        if duration is None:
            duration = _duration_from_packets(path)
        rate = stream.average_rate or stream.guessed_rate
        audio = container.streams.audio[0] if container.streams.audio else None
        return VideoInfo(
            path=str(path),
            duration=float(duration),
            fps=float(rate) if rate else 0.0,
            width=int(first.width),
            height=int(first.height),
            codec=codec,
            has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None and audio.codec_context else None,
        )


def _codec_name(stream: Any, path: Any) -> str:
    context = stream.codec_context
    if context is None or context.codec is None:
        raise CorruptInput(f"{path}: its video codec is not supported by this FFmpeg build; re-encode it to H.264")
    return str(context.name)


def _declared_duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _duration_from_packets(path: Any) -> float:
    """Last packet end time of the video stream (demux only, no decoding)."""
    end = 0.0
    with open_container(path) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.pts is not None and packet.time_base is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    return end


def _decode_frames(container: Any, stream: Any, path: Any) -> Iterator[Any]:
    av = _av()
    try:
        yield from container.decode(stream)
    except av.FFmpegError as e:
        raise CorruptInput(
            f"{path}: video decoding failed ({e}); the file is corrupt or its codec is unsupported"
            " (re-encode it with ffmpeg)"
        ) from e


def _scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    if max_side <= 0 or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2)


def iter_frames(
    path: str | os.PathLike[str], *, fps: float = 1.0, max_side: int = 512, strict: bool = True
) -> Iterator[Frame]:
    """Sample frames uniformly at ``fps`` (the first decoded frame at or after each ``k / fps``).

    Every frame is decoded (inter-frame codecs need it) but only sampled ones are converted to RGB,
    scaled by FFmpeg so the longest side is ``max_side``. Holds one frame at a time. With ``strict``, a
    file whose frames stop well before its declared duration raises :class:`CorruptInput` (truncated).
    """
    _check(fps > 0, f"fps must be positive, got {fps}")
    with open_container(path) as container:
        if not container.streams.video:
            raise CorruptInput(f"{path} has no video stream; pass it as audio instead")
        stream = container.streams.video[0]
        _codec_name(stream, path)
        stream.thread_type = "AUTO"
        declared = _declared_duration(container, stream)
        origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        step, next_t, last_t = 1.0 / fps, 0.0, None
        for index, frame in enumerate(_decode_frames(container, stream, path)):
            t = float(frame.time) - origin if frame.time is not None else index / rate
            last_t = t
            if t + 1e-6 < next_t:
                continue
            size = _scaled_size(frame.width, frame.height, max_side)
            yield Frame(t=max(t, 0.0), image=frame.to_image(width=size[0], height=size[1]))
            next_t = (math.floor(t / step + 1e-6) + 1) * step
        if last_t is None:
            raise CorruptInput(f"{path}: no video frame could be decoded; the file is truncated or corrupt")
        if strict and declared and last_t + 1.0 / rate < 0.9 * declared - 1.0:
            raise CorruptInput(
                f"{path} is truncated: it declares {declared:.1f} s but its frames end at {last_t:.1f} s;"
                " re-download it, or pass strict=False to keep what decodes"
            )


def colour_histogram(image: Any, bins: int = 8) -> np.ndarray:
    """Joint RGB histogram of a 64x64 thumbnail -> float32 ``(bins**3,)`` summing to 1."""
    pixels = np.asarray(image.convert("RGB").resize((64, 64)), dtype=np.uint16).reshape(-1, 3)
    q = (pixels * bins) // 256
    codes = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    hist = np.bincount(codes, minlength=bins**3).astype(np.float32)
    return hist / hist.sum()


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance between two normalised histograms, in [0, 1]."""
    return float(0.5 * np.abs(a - b).sum())


def dhash(image: Any, size: int = 8) -> int:
    """Difference hash: ``size * size`` bits, one per horizontally adjacent gray-level comparison."""
    gray = np.asarray(image.convert("L").resize((size + 1, size)), dtype=np.int16)
    bits = (gray[:, 1:] > gray[:, :-1]).reshape(-1)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    """Number of differing bits."""
    return (a ^ b).bit_count()


@dataclass
class _Open:
    """The segment being built: its start, its keyframes and cuts (mutable, internal)."""

    start: float
    keyframes: list[Keyframe]
    cuts: list[float]


def segment_video(path: str | os.PathLike[str], config: VideoConfig | None = None) -> Iterator[VideoSegment]:
    """Cut a video into ``VideoSegment`` s: contiguous ``[t_start, t_end)`` spans covering ``[0, duration]``.

    A segment ends at ``t_start + segment_s`` moved to the nearest scene cut within ``snap_s``; the tail
    shorter than ``snap_s`` joins the last segment. Scene cuts: consecutive samples whose colour
    histograms differ by more than ``scene_threshold``. Keyframes: each segment's first sample, each
    scene's first sample, and samples that differ from the last keyframe (histogram distance above
    ``keyframe_threshold`` and dHash distance above ``dedupe_bits``); at most ``max_keyframes`` per
    segment, the most novel kept. Memory holds at most ``(segment_s + snap_s) * sample_fps`` frames.
    """
    config = config or VideoConfig()
    info = probe(path)
    duration = info.duration
    current = _Open(start=0.0, keyframes=[], cuts=[])
    prev_hist: np.ndarray | None = None
    last_key: tuple[np.ndarray, int] | None = None
    index, end_seen = 0, 0.0
    frame_step = 1.0 / info.fps if info.fps else 0.0
    for frame in iter_frames(path, fps=config.sample_fps, max_side=config.max_side, strict=config.strict):
        end_seen = frame.t + frame_step
        hist, hashed = colour_histogram(frame.image, config.hist_bins), dhash(frame.image)
        is_cut = prev_hist is not None and histogram_distance(prev_hist, hist) > config.scene_threshold
        prev_hist = hist
        if is_cut:
            current.cuts.append(frame.t)
        if last_key is None or is_cut:
            novelty = 1.0
        else:
            distance = histogram_distance(last_key[0], hist)
            bits = hamming(last_key[1], hashed)
            novelty = (
                max(distance, bits / 64)
                if (distance > config.keyframe_threshold or bits > config.dedupe_bits)
                else -1.0
            )
        if not current.keyframes:
            novelty = 1.0  # a segment always starts with a keyframe
        if novelty >= 0:
            current.keyframes.append(Keyframe(frame.t, frame.image, is_cut, novelty))
            last_key = (hist, hashed)
        target = current.start + config.segment_s
        if frame.t >= target + config.snap_s and duration - target >= config.snap_s:
            boundary = _boundary(current.cuts, target, config.snap_s)
            yield _close(current, index, boundary, config, str(path))
            index += 1
            current = _carry(current, boundary)
            if not current.keyframes:  # everything after the boundary was a near-duplicate
                current.keyframes.append(Keyframe(frame.t, frame.image, is_cut, 1.0))
                last_key = (hist, hashed)
    end = max(duration, end_seen, current.start)
    if current.keyframes:
        yield _close(current, index, end, config, str(path))


def _boundary(cuts: list[float], target: float, snap: float) -> float:
    near = [c for c in cuts if abs(c - target) <= snap]
    return min(near, key=lambda c: (abs(c - target), c)) if near else target


def _close(current: _Open, index: int, end: float, config: VideoConfig, source: str) -> VideoSegment:
    inside = [k for k in current.keyframes if k.t < end] or current.keyframes[:1]
    if len(inside) > config.max_keyframes:  # keep the first, then the most novel
        best = sorted(inside[1:], key=lambda k: -k.novelty)[: config.max_keyframes - 1]
        inside = [inside[0], *sorted(best, key=lambda k: k.t)]
    cuts = tuple(c for c in current.cuts if current.start <= c < end)
    return VideoSegment(index, current.start, end, tuple(inside), cuts, source)


def _carry(current: _Open, boundary: float) -> _Open:
    return _Open(
        start=boundary,
        keyframes=[k for k in current.keyframes if k.t >= boundary],
        cuts=[c for c in current.cuts if c >= boundary],
    )


def extract_audio(
    path: str | os.PathLike[str], *, sample_rate: int = SAMPLE_RATE, chunk_s: float = 30.0
) -> Iterator[np.ndarray]:
    """The audio track as float32 mono ``(n,)`` chunks at ``sample_rate``; nothing when there is none."""
    log.debug("extracting audio of %s at %d Hz", Path(path).name, sample_rate)
    yield from iter_audio(path, sample_rate=sample_rate, chunk_s=chunk_s)
