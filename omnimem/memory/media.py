"""Media ingestion: images, audio and video become time-aligned, searchable items.

One file is one episode (``"<kind>:<sha256 prefix>"``), so ingesting the same bytes twice is a no-op
before any model runs. A file's items are written in one transaction after all of its work is done:
a failure half-way leaves nothing of that file visible. Models (OCR, speech, image encoder) load on
first use and are shared by every file of a session.

- image: the caption the caller gives, plus the text read in it (RapidOCR), and its vector in the
  image space when the memory has an image encoder; the image bytes go to the blob store.
- audio: transcript segments from the streaming transcriber grouped into windows of at most
  ``media.segment_s`` seconds (a phrase is too small a unit to retrieve); each window keeps its
  ``t_start``/``t_end`` and the phrase-level transcript with timestamps in its metadata. Only speech
  is transcribed (``media.vad`` and Whisper's confidence thresholds): music and noise give no items.
- video: segments of ~``media.segment_s`` seconds snapped to scene cuts; each segment's text is the
  transcript spoken in its span plus the text read on its keyframes; keyframes are stored as JPEG
  blobs, listed in the segment's metadata, and become image items of their own (OCR text, image
  vector) so visual search lands on a frame and its second.
- folders (:meth:`MediaIngestor.ingest`): a file's kind comes from its content; a file named as media
  whose content is not, an empty file, a broken or looping link, an unreadable file is a failure in
  the report and the batch goes on. Text that is not UTF-8 is read as Windows-1252 (a superset of
  Latin-1's printable characters), recorded in the item's metadata and in the report's notes; text
  holding binary control bytes is refused.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnimem.errors import ConfigError, CorruptInput, NotFound, OmnimemError, StorageError
from omnimem.types import Item

if TYPE_CHECKING:  # pragma: no cover
    from omnimem.config import MediaConfig
    from omnimem.encoders.transcribe import TranscribeConfig
    from omnimem.memory.core import Memory

__all__ = ["MediaIngestor", "IngestReport", "Progress", "file_digest"]

log = logging.getLogger(__name__)

Progress = Callable[[float, float], None]  # (seconds of media done, seconds in all)
TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}


def file_digest(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks (bounded memory for any size)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class IngestReport:
    """What :meth:`MediaIngestor.ingest` did, file by file."""

    added: dict[str, int] = field(default_factory=dict)  # path -> items written
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why (already there, not media, no speech ...)
    failed: dict[str, str] = field(default_factory=dict)  # path -> the error message (names the file and the fix)
    notes: dict[str, str] = field(default_factory=dict)  # path -> what to know about an added file (its encoding)

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        lines = [f"added {len(self.added)} file(s), skipped {len(self.skipped)}, failed {len(self.failed)}"]
        lines += [f"  failed {path}: {why}" for path, why in self.failed.items()]
        lines += [f"  note {path}: {why}" for path, why in self.notes.items()]
        return "\n".join(lines)


class _Bar:
    """Reports progress to a callback, or draws a bar on a terminal, or stays quiet."""

    def __init__(self, progress: Progress | bool | None, total: float, label: str) -> None:
        self.callback = progress if callable(progress) else None
        self.total = max(total, 0.0)
        self.bar = None
        draw = progress is True or (progress is None and sys.stderr.isatty())
        if draw and self.callback is None:
            from tqdm import tqdm

            self.bar = tqdm(total=round(self.total, 1), unit="s", desc=label, leave=False)

    def update(self, done: float) -> None:
        done = min(done, self.total) if self.total else done
        if self.callback is not None:
            self.callback(done, self.total)
        if self.bar is not None:
            self.bar.update(round(done, 1) - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class MediaIngestor:
    """Turns media files into items of one :class:`~omnimem.memory.core.Memory`."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self.config = memory.config.media
        self._ocr: Any = None
        self._transcriber: Any = None

    # -- models, loaded once -----------------------------------------------------------------
    @property
    def ocr(self) -> Any:
        if self._ocr is None and self.config.ocr:
            from omnimem.encoders.ocr import OcrReader

            self._ocr = OcrReader(min_score=self.config.ocr_min_score)
        return self._ocr

    @property
    def transcriber(self) -> Any:
        if self._transcriber is None:
            from omnimem.encoders import create_transcriber

            self._transcriber = create_transcriber(self.config.transcriber, config=transcribe_config(self.config))
        return self._transcriber

    @transcriber.setter
    def transcriber(self, value: Any) -> None:
        self._transcriber = value

    def _read_text(self, image: Any) -> str:
        return self.ocr.text(image).strip() if self.ocr is not None else ""

    # -- images ------------------------------------------------------------------------------
    def add_image(
        self, image: Any, *, caption: str | None = None, session: str | None = None, episode: str | None = None,
        timestamp: Any = None, metadata: dict[str, Any] | None = None, source: str | None = None,
    ) -> list[str]:  # fmt: skip
        """Remember one image; returns ``[item id]`` (the same id when the same bytes come again)."""
        from omnimem.encoders.media import load_image

        if caption is not None and not isinstance(caption, str):
            raise ConfigError(f"caption must be a str, got {type(caption).__name__}")
        if isinstance(image, (str, os.PathLike)):
            source = source or str(image)
        picture = load_image(image)
        data, suffix = _image_bytes(image, picture)
        blob = self.memory.blobs.put(data, suffix=suffix)
        text = _join(caption, _labelled("text in image", self._read_text(picture)))
        item = Item.make(
            modality="image", text=text, blob=blob, source=source, session=session, episode=episode,
            event_time=timestamp, metadata={**(metadata or {}), **({"caption": caption} if caption else {})},
        )  # fmt: skip
        return self.memory._add([item], self._image_vectors([item.id], [picture]))

    def _image_vectors(self, ids: list[str], pictures: list[Any]) -> dict[str, tuple[list[str], Any]]:
        """``{image space: (ids, vectors)}`` for these pictures, or {} when there is no image encoder."""
        encoder = self.memory.image_encoder
        if encoder is None or not ids:
            return {}
        from omnimem.memory.core import IMAGE_SPACE

        return {IMAGE_SPACE: (ids, encoder.encode(pictures, modality="image"))}

    def _embed_frames(self, frames: list[Item], pictures: list[Any], into: list[Any]) -> None:
        """Append the image vectors of one segment's keyframes to ``into`` (pixels are not kept)."""
        for _, array in self._image_vectors([f.id for f in frames], pictures).values():
            into.append(array)

    # -- audio -------------------------------------------------------------------------------
    def add_audio(
        self, path: str | os.PathLike[str], *, session: str | None = None, timestamp: Any = None,
        language: str | None = None, metadata: dict[str, Any] | None = None, progress: Progress | bool | None = None,
    ) -> list[str]:  # fmt: skip
        """Remember a speech recording as transcript segments; returns their ids in time order.

        Audio with no speech in it (music, noise, silence) is not an error: it returns ``[]`` and
        writes nothing.
        """
        from omnimem.encoders.media import detect_kind

        path, episode = self._identify(path)
        if self.memory.store.has_episode(episode):
            return self._episode_ids(episode)
        if detect_kind(path) not in ("audio", "video"):
            raise CorruptInput(f"{path} is not an audio file (its content is not a known audio format)")
        window = self.config.segment_s
        items = [
            Item.make(
                modality="audio",
                text=" ".join(s.text.strip() for s in group),
                source=str(path),
                session=session or episode,
                episode=episode,
                event_time=timestamp,
                t_start=group[0].t_start,
                t_end=group[-1].t_end,
                metadata={
                    **(metadata or {}),
                    "transcript": [{"t_start": s.t_start, "t_end": s.t_end, "text": s.text.strip()} for s in group],
                },
            )  # fmt: skip
            for group in _windows(self._transcribe(path, language, progress, label=path.name), window)
        ]
        if not items:
            log.info("%s: no speech heard (music, noise or silence); nothing to remember", path)
            return []
        return self.memory._add(items)

    def _transcribe(self, path: Path, language: str | None, progress: Progress | bool | None, label: str) -> list[Any]:
        bar = _Bar(progress, _duration(path), label)
        segments = []
        try:
            for seg in self.transcriber.transcribe(str(path), language=language or self.config.language):
                if seg.text.strip():
                    segments.append(seg)
                bar.update(seg.t_end)
        finally:
            bar.close()
        return segments

    # -- video -------------------------------------------------------------------------------
    def add_video(
        self, path: str | os.PathLike[str], *, session: str | None = None, timestamp: Any = None,
        language: str | None = None, metadata: dict[str, Any] | None = None, progress: Progress | bool | None = None,
    ) -> list[str]:  # fmt: skip
        """Remember a video as segments (and keyframe images); returns the segment ids in time order."""
        from omnimem.encoders.media import has_audio
        from omnimem.encoders.video import VideoConfig, probe, segment_video

        path, episode = self._identify(path)
        if self.memory.store.has_episode(episode):
            return [i for i in self._episode_ids(episode) if self.memory.get(i).modality == "video"]
        info = probe(path)
        # Two passes over the file (speech, then frames), reported on one scale: each is half of it.
        speech, frames_phase = _phase(progress, 0.0, 0.5), _phase(progress, 0.5, 0.5)
        transcript = self._transcribe(path, language, speech, f"{path.name} (speech)") if has_audio(path) else []
        video_config = VideoConfig(
            sample_fps=self.config.sample_fps, segment_s=self.config.segment_s, max_keyframes=self.config.max_keyframes
        )
        bar = _Bar(frames_phase, info.duration, f"{path.name} (frames)")
        # Only text, blob addresses and vectors accumulate; the pixels of a segment are dropped with it,
        # so memory does not grow with the length of the video.
        segments, frames, frame_vectors = [], [], []
        try:
            for segment in segment_video(path, video_config):
                spoken = " ".join(s.text.strip() for s in transcript if segment.t_start <= _mid(s) < segment.t_end)
                keyframes, seen_text, segment_frames = [], [], []
                for kf in segment.keyframes:
                    data = _jpeg(kf.image)
                    blob = self.memory.blobs.put(data, suffix=".jpg")
                    on_screen = self._read_text(kf.image)
                    if on_screen and on_screen not in seen_text:
                        seen_text.append(on_screen)
                    keyframes.append({"t": round(kf.t, 3), "blob": blob, "scene_cut": kf.scene_cut})
                    segment_frames.append(
                        Item.make(
                            modality="image",
                            text=_labelled("text on screen", on_screen),
                            blob=blob,
                            source=str(path),
                            session=f"{episode}#{segment.index}",
                            episode=episode,
                            event_time=timestamp,
                            t_start=kf.t,
                            t_end=kf.t,
                            metadata={"keyframe": True},
                        )  # fmt: skip
                    )
                segments.append(
                    Item.make(
                        modality="video",
                        text=_join(spoken, _labelled("text on screen", " / ".join(seen_text))),
                        source=str(path),
                        session=f"{episode}#{segment.index}",
                        episode=episode,
                        event_time=timestamp,
                        t_start=segment.t_start,
                        t_end=segment.t_end,
                        metadata={
                            **(metadata or {}),
                            "segment": segment.index,
                            "keyframes": keyframes,
                            "scene_cuts": [round(t, 3) for t in segment.scene_cuts],
                            "transcript": spoken,
                        },
                    )  # fmt: skip
                )
                self._embed_frames(segment_frames, [kf.image for kf in segment.keyframes], frame_vectors)
                frames += segment_frames
                bar.update(segment.t_end)
        finally:
            bar.close()
        if not segments:
            raise CorruptInput(f"{path} decoded to no video frames; it is empty or unreadable")
        vectors = {}
        if frame_vectors:
            import numpy as np

            from omnimem.memory.core import IMAGE_SPACE

            vectors = {IMAGE_SPACE: ([f.id for f in frames], np.concatenate(frame_vectors))}
        ids = self.memory._add(segments + frames, vectors)
        return ids[: len(segments)]

    # -- text files and folders --------------------------------------------------------------
    def add_text_file(self, path: str | os.PathLike[str], *, session: str | None = None) -> list[str]:
        """Remember a text document as paragraphs of at most ``media.text_chunk_chars``.

        UTF-8 (with or without a byte-order mark) and BOM-marked UTF-16 are read as such; other bytes
        as Windows-1252, noted in each item's ``metadata["encoding"]``. Binary content raises
        :class:`CorruptInput`.
        """
        from omnimem.encoders.media import read_text

        path, episode = self._identify(path)
        text, encoding = read_text(path)
        chunks = list(_paragraphs(text, self.config.text_chunk_chars))
        if not chunks:
            raise CorruptInput(f"{path} holds no text (only blank lines); add text to it or leave it out")
        extra = {} if encoding == "utf-8" else {"encoding": encoding}
        items = [
            Item.make(
                text=chunk,
                source=str(path),
                session=session or episode,
                episode=episode,
                metadata={"title": path.stem, "chunk": n, **extra},
            )  # fmt: skip
            for n, chunk in enumerate(chunks)
        ]
        return self.memory._add(items)

    def ingest(
        self, path: str | os.PathLike[str], *, recursive: bool = True, progress: Progress | bool | None = None
    ) -> IngestReport:
        """Remember a file, or every file under a folder, dispatching on content (not the file name).

        A bad file (corrupt, mislabelled, empty, unreadable, a broken link) is reported in ``failed``
        and the others go on; each file is all-or-nothing. Files that are not media or text, hidden
        files and folders, links to folders (not followed: they can loop) and media without speech
        or frames are ``skipped``. A file named on its own that is not supported is a failure.
        Storage errors (disk full, a locked memory) stop the batch: no later file could be written.
        """
        root = Path(path)
        if not root.exists() and not root.is_symlink():
            raise NotFound(f"{root} does not exist; check the path")
        report = IngestReport()
        single = not root.is_dir()
        for file in [root] if single else _files(root, recursive, report):
            key = str(file)
            if file.name.startswith(".") and not single:
                report.skipped[key] = "hidden file"
                continue
            self._attempt(file, report, progress, named=single)
        return report

    def _attempt(self, file: Path, report: IngestReport, progress: Progress | bool | None, *, named: bool) -> None:
        """:meth:`_ingest_one`, with what makes the file a failure written to ``report.failed``."""
        key = str(file)
        try:
            self._ingest_one(file, report, progress, named=named)
        except StorageError:
            raise
        except OmnimemError as e:
            log.warning("ingest: %s failed: %s", file, e)
            report.failed[key] = str(e)
        except OSError as e:  # permissions, I/O errors, a link that loops
            why = f"{file} cannot be read ({e.strerror or e}); check that it exists and is readable"
            log.warning("ingest: %s", why)
            report.failed[key] = why
        except Exception as e:  # a dependency's error on odd content: report it, go on with the batch
            log.warning("ingest: %s failed unexpectedly", file, exc_info=True)
            report.failed[key] = f"{file}: unexpected {type(e).__name__}: {e} (please report it with the file)"

    def _ingest_one(self, file: Path, report: IngestReport, progress: Progress | bool | None, *, named: bool) -> None:
        """Ingest one file into ``report``; raises what makes it a failure."""
        from omnimem.encoders.media import detect_kind, named_kind

        key = str(file)
        if file.is_symlink() and not file.exists():
            raise CorruptInput(f"{file} is a broken symbolic link (it loops or its target is gone); fix or remove it")
        if not file.is_file():
            if named:
                raise CorruptInput(f"{file} is not a regular file (a device, socket or pipe); pass a file")
            report.skipped[key] = "not a regular file (a device, socket or pipe)"
            return
        kind = "text" if file.suffix.lower() in TEXT_SUFFIXES else detect_kind(file)
        if kind is None:
            claimed = named_kind(file)
            if claimed is not None:  # named as media, content is not: corrupt or mislabelled, not "other"
                raise CorruptInput(
                    f"{file} is named like {'a' if claimed == 'video' else 'an'} {claimed} file but its content is"
                    f" not a known {claimed} format; it is corrupt, truncated or mislabelled (re-download or"
                    " re-export it)"
                )
            if named:
                raise CorruptInput(
                    f"{file} is not a supported media or text file; pass an image, audio, video or text"
                    f" ({', '.join(sorted(TEXT_SUFFIXES))}) file"
                )
            report.skipped[key] = "not a supported media or text file"
            return
        before, encoding = len(self.memory), None
        if kind == "text":
            ids = self.add_text_file(file)
            encoding = self.memory.get(ids[0]).metadata.get("encoding")
        elif kind == "image":
            self.add_image(file)
        elif kind == "audio":
            if not self.add_audio(file, progress=progress):
                report.skipped[key] = "no speech heard (music, noise or silence)"
                return
        else:
            self.add_video(file, progress=progress)
        written = len(self.memory) - before
        if not written:
            report.skipped[key] = "already in memory"
            return
        report.added[key] = written
        if encoding:
            report.notes[key] = (
                f"not UTF-8: read as {encoding}; if its accents look wrong, convert it to UTF-8"
                " (iconv -f <its encoding> -t UTF-8) and ingest it again"
            )

    # -- helpers -----------------------------------------------------------------------------
    def _identify(self, path: str | os.PathLike[str]) -> tuple[Path, str]:
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"expected a file path, got {type(path).__name__}")
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"{path} does not exist or is not a file; check the path")
        if path.stat().st_size == 0:
            raise CorruptInput(f"{path} is empty (0 bytes); re-copy it")
        return path, f"file:{file_digest(path)[:24]}"

    def _episode_ids(self, episode: str) -> list[str]:
        return self.memory.store.timeline(episode=episode)


def transcribe_config(media: MediaConfig) -> TranscribeConfig:
    """The transcriber options that ``config.media`` sets (voice activity, Whisper's thresholds)."""
    from omnimem.encoders.transcribe import TranscribeConfig

    return TranscribeConfig(
        vad_filter=media.vad, vad_threshold=media.vad_threshold, no_speech_threshold=media.no_speech_threshold,
        logprob_threshold=media.logprob_threshold, compression_ratio_threshold=media.compression_ratio_threshold,
    )  # fmt: skip


def _files(root: Path, recursive: bool, report: IngestReport) -> list[Path]:
    """The files under ``root`` in path order, links to files included. Hidden folders and links to
    folders are not entered (links can loop) and go to ``report.skipped``; folders that cannot be
    listed go to ``report.failed``."""
    found: list[Path] = []
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as e:
            report.failed[str(folder)] = f"{folder} cannot be listed ({e.strerror or e}); check its permissions"
            continue
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # follows links: a link to a folder is a folder here
            except OSError:  # a link that loops: reported by the file step
                is_dir = False
            if not is_dir:
                found.append(path)
            elif not recursive:
                continue
            elif entry.is_symlink():
                report.skipped[str(path)] = "a link to a folder (not followed: links can loop); ingest its target"
            elif entry.name.startswith("."):
                report.skipped[str(path)] = "hidden folder"
            else:
                folders.append(path)
    return sorted(found)


def _phase(progress: Progress | bool | None, start: float, share: float) -> Progress | bool | None:
    """A callback reporting one phase of a job as the ``[start, start + share]`` part of the whole."""
    if not callable(progress):
        return progress
    return lambda done, total: progress(total * start + done * share, total)


def _duration(path: Path) -> float:
    """A media file's declared duration in seconds (0.0 when the container does not say)."""
    from omnimem.encoders.media import open_container

    try:
        with open_container(path) as container:
            if container.duration:
                return container.duration / 1_000_000  # FFmpeg's AV_TIME_BASE
            stream = (container.streams.audio or container.streams.video or [None])[0]
            if stream is not None and stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except OmnimemError:
        pass
    return 0.0


def _windows(segments: list[Any], seconds: float) -> Iterator[list[Any]]:
    """Consecutive transcript segments grouped so each group spans at most ``seconds`` (one at least)."""
    group: list[Any] = []
    for segment in segments:
        if group and segment.t_end - group[0].t_start > seconds:
            yield group
            group = []
        group.append(segment)
    if group:
        yield group


def _mid(segment: Any) -> float:
    return (segment.t_start + segment.t_end) / 2


def _join(*parts: str | None) -> str:
    return "\n".join(p.strip() for p in parts if p and p.strip())


def _labelled(label: str, text: str) -> str:
    return f"[{label}: {text}]" if text.strip() else ""


def _jpeg(picture: Any, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _image_bytes(original: Any, picture: Any) -> tuple[bytes, str]:
    """The bytes to keep for an image: the file itself when given a path, else a PNG of the pixels."""
    if isinstance(original, (str, os.PathLike)):
        path = Path(original)
        return path.read_bytes(), image_suffix(path)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue(), ".png"


def image_suffix(path: Path) -> str:
    """The suffix an image file's blob keeps (its address is the file's sha256 + this)."""
    return path.suffix.lower() if 1 < len(path.suffix) <= 6 and path.suffix[1:].isalnum() else ""


def _paragraphs(text: str, limit: int) -> Iterator[str]:
    """Blank-line separated paragraphs, merged up to ``limit`` characters, long ones split on sentences."""
    current = ""
    for para in (p.strip() for p in text.replace("\r\n", "\n").split("\n\n")):
        if not para:
            continue
        while len(para) > limit:
            cut = para.rfind(". ", 0, limit)
            cut = cut + 1 if cut > limit // 2 else limit
            yield para[:cut].strip()
            para = para[cut:].strip()
        if current and len(current) + len(para) + 2 > limit:
            yield current
            current = ""
        current = f"{current}\n\n{para}" if current else para
    if current:
        yield current
