"""Long-video ingest speed, audio real-time factor and peak memory vs video length, on the real sample clips.

    .venv/bin/python benchmarks/media_ingest.py [--minutes 10] [--quick]

Builds one long H.264 + AAC mp4 (640x360, 24 fps) by decoding the clips of ``video/moviepy/`` in the
shared data folder (``$OMNIMEM_DATA`` or ``../shared/data``) and re-encoding them back to back with
PyAV, with real speech laid under it (``jfk.flac`` and ``english.wav`` repeated). The build streams:
one decoded frame and one audio block at a time. The longest video is built once; shorter ones are
its prefixes, cut by stream copy at a keyframe (same content, no second encode).

Prints one JSON line per figure, each with a baseline measured in the same run and their ratio:

- ``audio_rtf``: ``Memory.add_audio`` wall seconds / audio seconds on ``jfk.flac`` and on the long
  video's audio track (extracted to wav); baseline = ``create_transcriber("tiny.en")`` alone on the same
  file (the same model object, timed before and after ``add_audio``), so the ratio is omnimem's overhead.
- ``video_ingest``: ``Memory.add_video`` into a fresh memory (packaged MiniLM) without and with a tiny
  random-initialised open_clip image encoder: seconds of video per wall second, CPU seconds, segments,
  keyframes. Baselines: for the first, ``segment_video`` alone + the transcriber alone (the pipeline's
  stages without OCR, blobs, embedding, graph and store); for the second, the first.
- ``video_peak_memory``: ``add_video`` of a 5- and a 20-minute version (2 and 5 with ``--quick``), each
  in its own process after a warm-up ingest of a short clip; peak RSS (VmHWM read in the child) of the
  whole process and of the long ingest alone (VmHWM reset via ``/proc/self/clear_refs``); ratio =
  long / short, the target is ~1 (flat).

Models load before the clock starts (``model_load_s``); the memories use the default config, so the
knowledge graph is extracted on every add. The machine is shared: read wall figures with ``cpu_s``.
Without the shared data it prints ``{"benchmark": "media_ingest", "skipped": "no shared data"}``.
Needs the ``audio`` and ``clip`` extras (PyAV, faster-whisper, open_clip) and the packaged RapidOCR.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from omnimem import Memory  # noqa: E402
from omnimem.config import MemoryConfig  # noqa: E402
from omnimem.data import data_dir  # noqa: E402

log = logging.getLogger("media_ingest")

NAME = "media_ingest"
SIZE = (640, 360)  # width, height of the built video, pixels
FPS = 24  # frames per second of the built video
RATE = 16_000  # Hz of the built video's mono AAC track
GOP = 2 * FPS  # keyframe interval, frames (a prefix cut lands within 2 s of its target)
CLIP_SUFFIXES = (".webm", ".mp4")
SPEECH = ("whisper/jfk.flac", "speech_recognition/english.wav")  # under data/audio/, laid end to end
WARM_CLIP = "chaplin.mp4"  # a short real clip each memory child ingests first, so model buffers exist
GAP_S = 2.0  # silence after each speech clip, seconds


def emit(**fields: Any) -> None:
    print(json.dumps({"benchmark": NAME, **fields}), flush=True)


# --- building the long video ---------------------------------------------------------------------


def speech_track(root: Path) -> np.ndarray:
    """The speech clips at 16 kHz with a gap after each: float32 ``(n,)``, ~28 s; the build loops it."""
    from omnimem.encoders.media import load_audio

    gap = np.zeros(round(GAP_S * RATE), dtype=np.float32)
    return np.concatenate([part for name in SPEECH for part in (load_audio(root / "audio" / name), gap)])


def clip_frames(clip: Path) -> Iterator[Any]:
    """One clip's frames resampled to ``FPS`` and scaled to ``SIZE`` (yuv420p), one at a time."""
    import av

    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        end = container.duration / 1_000_000 if container.duration else None
        n, held = 0, None
        for frame in container.decode(stream):
            t = float(frame.time) - origin if frame.time is not None else n / FPS
            while held is not None and n / FPS < t:  # repeat the held frame until this one's time
                yield held
                n += 1
            held = frame.reformat(width=SIZE[0], height=SIZE[1], format="yuv420p")
        while held is not None and (n == 0 or (end is not None and n / FPS < end - 1e-6)):
            yield held
            n += 1


def looped_frames(clips: list[Path]) -> Iterator[Any]:
    while True:
        for clip in clips:
            yield from clip_frames(clip)


def build_video(path: Path, clips: list[Path], speech: np.ndarray, seconds: float) -> Path:
    """Re-encode ``clips`` back to back (looped) for ``seconds`` into an H.264 + AAC mp4, speech looped under it."""
    import av

    total, block = round(seconds * FPS), 1024
    t0 = time.perf_counter()
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "28"})
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p"
        video.codec_context.gop_size = GOP
        audio = out.add_stream("aac", rate=RATE, layout="mono")
        done = 0  # audio samples encoded so far
        for n, frame in enumerate(looped_frames(clips)):
            if n == total:
                break
            frame.pts, frame.time_base = n, Fraction(1, FPS)
            out.mux(video.encode(frame))
            while done + block <= (n + 1) * RATE // FPS:  # keep the audio level with the video
                samples = speech.take(np.arange(done, done + block), mode="wrap")
                chunk = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = RATE, done, Fraction(1, RATE)
                out.mux(audio.encode(chunk))
                done += block
            if n % (60 * FPS) == 0:
                log.info("building %s: %d s of %.0f s", path.name, n // FPS, seconds)
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    log.info("built %s (%.0f s of video) in %.1f s", path.name, seconds, time.perf_counter() - t0)
    return path


def cut_prefix(source: Path, target: Path, seconds: float) -> Path:
    """The first ``seconds`` of ``source`` (up to the next video keyframe) by stream copy, no re-encoding."""
    import av

    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")}
        video_end = None  # pts (seconds) of the first keyframe at or after the cut
        for packet in src.demux(*src.streams):
            if packet.dts is None or packet.stream.index not in streams:
                continue
            t = float(packet.pts * packet.time_base)
            if packet.stream.type == "video":
                if video_end is None and packet.is_keyframe and t >= seconds:
                    video_end = t
                if video_end is not None and t >= video_end:
                    continue
            elif t >= (video_end if video_end is not None else seconds + GOP / FPS):
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return target


def extract_wav(video: Path, target: Path) -> float:
    """The video's audio track as 16 kHz mono 16-bit wav, streamed; returns its length in seconds."""
    import av

    from omnimem.encoders.video import extract_audio

    done = 0
    with av.open(str(target), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=RATE, layout="mono")
        for chunk in extract_audio(video, sample_rate=RATE):
            pcm = (np.clip(chunk, -1, 1) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE, done, Fraction(1, RATE)
            out.mux(stream.encode(frame))
            done += pcm.size
        out.mux(stream.encode(None))
    return done / RATE


# --- measuring ---------------------------------------------------------------------------------


def open_memory(path: Path, encoder: Any, image_encoder: Any = None) -> tuple[Memory, float]:
    """A fresh memory with its speech, OCR (and graph extractor) models loaded; returns it and their load time."""
    mem = Memory.open(path, encoder=encoder, image_encoder=image_encoder)
    t0 = time.perf_counter()
    _ = mem.media.transcriber, mem.media.ocr  # load now, so the clock times ingestion only
    if mem.config.graph.extract_on_add:
        _ = mem.builder  # spaCy, for the knowledge graph built on every add (default config)
    return mem, time.perf_counter() - t0


def ingest_video(
    video: Path, workdir: Path, encoder: Any, image_encoder: Any = None, before: Callable[[Memory], None] | None = None
) -> dict[str, Any]:
    """``add_video`` into a fresh memory; ``before(mem)`` runs first, off the clock."""
    from omnimem.encoders.video import probe

    duration = probe(video).duration
    mem, load_s = open_memory(workdir, encoder, image_encoder)
    if before is not None:
        before(mem)
    marks = [0.0]

    def progress(done: float, total: float) -> None:
        if total and done - marks[0] >= total / 5:
            marks[0] = done
            log.info("add_video %s: %.0f / %.0f s", video.name, done, total)

    with mem:
        t0, c0 = time.perf_counter(), time.process_time()
        ids = mem.add_video(video, progress=progress)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        keyframes = sum(len(mem.get(i).metadata["keyframes"]) for i in ids)
    return {
        "video_s": round(duration, 1), "wall_s": round(wall, 2), "video_s_per_wall_s": round(duration / wall, 2),
        "cpu_s": round(cpu, 2), "segments": len(ids), "keyframes": keyframes, "model_load_s": round(load_s, 2),
    }  # fmt: skip


def video_figures(video: Path, tmp: Path, encoder: Any, transcriber_s: float) -> None:
    """Ingest without and with an image encoder; the first against its stages run alone (the floor)."""
    from mediagen import write_tiny_open_clip

    from omnimem.encoders.clip import OpenClipEncoder
    from omnimem.encoders.video import VideoConfig, segment_video

    media = MemoryConfig().media  # what add_video hands segment_video
    config = VideoConfig(sample_fps=media.sample_fps, segment_s=media.segment_s, max_keyframes=media.max_keyframes)
    t0 = time.perf_counter()
    for _ in segment_video(video, config):
        pass
    floor = time.perf_counter() - t0 + transcriber_s
    plain = ingest_video(video, tmp / "mem_plain", encoder)
    clip = OpenClipEncoder.from_pretrained(str(write_tiny_open_clip(tmp / "tiny_open_clip")))
    with_clip = ingest_video(video, tmp / "mem_clip", encoder, clip)
    speed = plain["video_s_per_wall_s"]
    emit(figure="video_ingest", image_encoder=None, **plain,
         baseline="segment_video alone + transcriber alone on the same audio (no OCR, blobs, embedding, graph, store)",
         baseline_wall_s=round(floor, 2), baseline_video_s_per_wall_s=round(plain["video_s"] / floor, 2),
         ratio=round(speed / (plain["video_s"] / floor), 3))  # fmt: skip
    emit(figure="video_ingest", image_encoder="tiny random open_clip (16-d, 32 px)", **with_clip,
         baseline="same video, no image encoder", baseline_video_s_per_wall_s=speed,
         baseline_cpu_s=plain["cpu_s"], ratio=round(with_clip["video_s_per_wall_s"] / speed, 3),
         cpu_ratio=round(with_clip["cpu_s"] / plain["cpu_s"], 3))  # fmt: skip


def audio_figure(audio: Path, seconds: float, tmp: Path, encoder: Any, label: str, warm: Path) -> float:
    """``add_audio`` vs the transcriber alone on one file; returns the transcriber-alone wall seconds."""
    from omnimem.encoders import create_transcriber

    transcriber = create_transcriber("tiny.en")
    mem, _ = open_memory(tmp / f"mem_audio_{audio.stem}", encoder)
    mem.media.transcriber = transcriber  # one model for both, so the ratio is omnimem's overhead alone
    with mem:
        list(transcriber.transcribe(str(warm)))  # warm-up on a short clip, not timed
        t0 = time.perf_counter()
        alone = list(transcriber.transcribe(str(audio)))
        t1 = time.perf_counter()
        ids = mem.add_audio(audio)
        t2 = time.perf_counter()
        list(transcriber.transcribe(str(audio)))  # the baseline again after, against drift in machine load
        t3 = time.perf_counter()
    base, wall = (t1 - t0 + t3 - t2) / 2, t2 - t1
    emit(figure="audio_rtf", file=label, audio_s=round(seconds, 1), transcriber=transcriber.name,
         wall_s=round(wall, 2), rtf=round(wall / seconds, 4), items=len(ids),
         baseline="create_transcriber('tiny.en').transcribe alone, mean of a run before and after", baseline_wall_s=round(base, 2),
         baseline_rtf=round(base / seconds, 4), baseline_segments=len(alone), ratio=round(wall / base, 3))  # fmt: skip
    return base


def child_peak(video: Path, workdir: Path, warm_clip: Path) -> dict[str, Any]:
    """Run ``add_video`` in a fresh interpreter; its own peak RSS (VmHWM) so peaks of runs don't mix."""
    command = [sys.executable, __file__, "--child", str(video), str(workdir), str(warm_clip)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"child ingest of {video.name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _status_mb(field: str) -> float:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


def child_main(video: Path, workdir: Path, warm_clip: Path) -> None:
    """Ingest ``video`` into a fresh memory after a warm-up ingest of a short real clip (so the models'
    one-time buffers are allocated); print the process peak and the peak during the long ingest alone."""
    from omnimem.encoders import create_encoder

    start: dict[str, float] = {}

    def warm_up(mem: Memory) -> None:
        mem.add_video(warm_clip)  # first inference of each model allocates its buffers
        start.update(rss=_status_mb("VmRSS"), peak=_status_mb("VmHWM"))
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: the next read is the peak of the ingest alone

    result = ingest_video(video, workdir, create_encoder("minilm"), before=warm_up)
    peak = _status_mb("VmHWM")
    result.update(
        process_peak_mb=round(max(peak, start["peak"]), 1),
        ingest_peak_mb=round(peak, 1),
        rss_before_mb=round(start["rss"], 1),
    )
    print(json.dumps(result), flush=True)


def memory_figure(short: Path, long: Path, warm_clip: Path, tmp: Path, built_from: str) -> None:
    a = child_peak(short, tmp / "mem_short", warm_clip)
    b = child_peak(long, tmp / "mem_long", warm_clip)
    emit(figure="video_peak_memory", video=built_from, video_s=b["video_s"], segments=b["segments"],
         keyframes=b["keyframes"], wall_s=b["wall_s"], process_peak_mb=b["process_peak_mb"],
         ingest_peak_mb=b["ingest_peak_mb"], ingest_growth_mb=round(b["ingest_peak_mb"] - b["rss_before_mb"], 1),
         baseline=f"same build, {a['video_s']:.0f} s prefix, in its own process", baseline_video_s=a["video_s"],
         baseline_segments=a["segments"], baseline_process_peak_mb=a["process_peak_mb"],
         baseline_ingest_peak_mb=a["ingest_peak_mb"],
         baseline_ingest_growth_mb=round(a["ingest_peak_mb"] - a["rss_before_mb"], 1),
         ratio=round(b["process_peak_mb"] / a["process_peak_mb"], 3),
         ingest_peak_ratio=round(b["ingest_peak_mb"] / a["ingest_peak_mb"], 3), target="ratios ~1 (flat)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes", type=float, default=None, help="length of the long video (default 10, 2 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="2-minute video; 2 vs 5 minutes for peak memory")
    parser.add_argument("--child", nargs=3, metavar=("VIDEO", "MEMORY_DIR", "WARM_CLIP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("omnimem").setLevel(logging.WARNING)
    if args.child:
        child_main(*map(Path, args.child))
        return
    root = data_dir()
    if root is None:
        emit(skipped="no shared data")
        return
    clips = sorted(p for p in (root / "video" / "moviepy").iterdir() if p.suffix in CLIP_SUFFIXES)
    minutes = args.minutes if args.minutes is not None else (2.0 if args.quick else 10.0)
    short_min, long_min = (2.0, 5.0) if args.quick else (5.0, 20.0)
    built_from = f"{len(clips)} moviepy clips re-encoded {SIZE[0]}x{SIZE[1]} {FPS} fps H.264 + AAC, speech looped"

    from omnimem.encoders import create_encoder
    from omnimem.encoders.media import load_audio

    with tempfile.TemporaryDirectory(prefix="omnimem-media-ingest-") as name:
        tmp = Path(name)
        longest = max(minutes, long_min)
        full = build_video(tmp / f"long_{longest:g}min.mp4", clips, speech_track(root), longest * 60)

        def prefix(m: float) -> Path:
            return full if m == longest else cut_prefix(full, tmp / f"long_{m:g}min.mp4", m * 60)

        video, short, long = prefix(minutes), prefix(short_min), prefix(long_min)
        encoder = create_encoder("minilm")
        encoder.encode(["warm-up"], modality="text")  # the first forward pass pays one-time set-up costs
        jfk = root / "audio" / "whisper" / "jfk.flac"
        audio_figure(jfk, load_audio(jfk).size / RATE, tmp, encoder, "audio/whisper/jfk.flac", jfk)
        track = tmp / f"{video.stem}_track.wav"
        seconds = extract_wav(video, track)
        transcriber_s = audio_figure(track, seconds, tmp, encoder, f"{video.name} audio track (wav)", jfk)
        video_figures(video, tmp, encoder, transcriber_s)
        memory_figure(short, long, root / "video" / "moviepy" / WARM_CLIP, tmp, built_from)


if __name__ == "__main__":
    main()
