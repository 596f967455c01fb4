"""Media adapter speed: faster-whisper real-time factor, video segmentation speed, memory vs video length.

Run: .venv/bin/python benchmarks/media_speed.py [--long]
Prints one JSON line per figure. Reads ``../shared/data`` (or ``$OMNIMEM_DATA``); ``--long`` also
segments generated 5- and 20-minute videos in subprocesses and reports their peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omnimem.data import data_dir


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def whisper_rtf(audio: Path, name: str, runs: int = 3) -> None:
    from omnimem.encoders.media import load_audio
    from omnimem.encoders.transcribe import FasterWhisperTranscriber

    seconds = load_audio(audio).size / 16_000
    t0 = time.perf_counter()
    transcriber = FasterWhisperTranscriber.from_pretrained(name)
    load_s = time.perf_counter() - t0
    list(transcriber.transcribe(audio))  # warm-up
    t0 = time.perf_counter()
    for _ in range(runs):
        list(transcriber.transcribe(audio))
    wall = (time.perf_counter() - t0) / runs
    emit(figure="asr_real_time_factor", model=f"faster-whisper {name} int8", file=audio.name,
         audio_s=round(seconds, 2), wall_s=round(wall, 3), rtf=round(wall / seconds, 4), load_s=round(load_s, 2))  # fmt: skip


def video_speed(path: Path) -> None:
    from omnimem.encoders.video import VideoConfig, probe, segment_video

    info = probe(path)
    t0 = time.perf_counter()
    segments = list(segment_video(path, VideoConfig()))
    wall = time.perf_counter() - t0
    emit(figure="video_segment_speed", file=path.name, size=f"{info.width}x{info.height}", video_s=round(info.duration, 2),
         wall_s=round(wall, 3), video_s_per_wall_s=round(info.duration / wall, 1), segments=len(segments),
         keyframes=sum(len(s.keyframes) for s in segments))  # fmt: skip


def long_video_memory(minutes: float) -> None:
    """Segment a generated ``minutes``-long 320x180 video in a child process; report its peak RSS (VmHWM;
    ru_maxrss would carry the parent's peak across fork + exec)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from mediagen import write_video

    with tempfile.TemporaryDirectory() as tmp:
        duration = minutes * 60
        scenes = [(float(t), ((t * 37) % 255, (t * 91) % 255, (t * 53) % 255)) for t in range(0, int(duration), 7)]
        path = write_video(Path(tmp) / "long.mp4", scenes=scenes, duration=duration, fps=10, size=(320, 180))
        code = (
            "import re, sys, time; from omnimem.encoders.video import segment_video;"
            "t=time.perf_counter(); n=sum(1 for _ in segment_video(sys.argv[1]));"
            "hwm=re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1);"
            "print(n, time.perf_counter()-t, hwm)"
        )
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
        segments, wall, rss_kb = out.stdout.split()
        emit(figure="long_video_peak_memory", minutes=minutes, segments=int(segments), wall_s=round(float(wall), 2),
             peak_rss_mb=round(int(rss_kb) / 1024, 1))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="also measure peak memory on 5 vs 20 minute videos")
    args = parser.parse_args()
    root = data_dir()
    if root is None:
        sys.exit("shared data folder absent: set OMNIMEM_DATA or place it at ../shared/data")
    whisper_rtf(root / "audio" / "whisper" / "jfk.flac", "tiny.en")
    whisper_rtf(root / "audio" / "whisper" / "jfk.flac", "base")
    for clip in ("big_buck_bunny_0_30.webm", "chaplin.mp4"):
        video_speed(root / "video" / "moviepy" / clip)
    if args.long:
        for minutes in (5, 20):
            long_video_memory(minutes)
    emit(figure="bench_process_peak_rss_mb", value=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))


if __name__ == "__main__":
    main()
