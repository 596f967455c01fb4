"""Video: probe, uniform sampling, scene cuts, segments aligned to cuts, audio track, bad files."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from mediagen import CUTS, DURATION, tone, write_audio, write_video

from omnimem.encoders.video import (
    VideoConfig,
    colour_histogram,
    dhash,
    extract_audio,
    hamming,
    histogram_distance,
    iter_frames,
    probe,
    segment_video,
)
from omnimem.errors import ConfigError, CorruptInput

CONFIG = VideoConfig(sample_fps=2.0, segment_s=10.0, snap_s=2.5, max_keyframes=4)


def test_probe_reports_duration_fps_size_and_no_audio(scene_video):
    info = probe(scene_video)
    assert info.duration == pytest.approx(DURATION, abs=0.2)
    assert info.fps == pytest.approx(10.0)
    assert (info.width, info.height) == (96, 64)
    assert info.codec == "h264"
    assert info.has_audio is False


def test_frames_are_sampled_uniformly_and_scaled(scene_video):
    frames = list(iter_frames(scene_video, fps=2.0, max_side=48))
    times = [f.t for f in frames]
    assert times == pytest.approx([n / 2 for n in range(48)], abs=1e-6)
    assert frames[0].image.size == (48, 32)
    assert frames[0].image.mode == "RGB"


def test_scene_cuts_and_segment_spans_land_where_the_video_switches(scene_video):
    segments = list(segment_video(scene_video, CONFIG))
    cuts = [c for s in segments for c in s.scene_cuts]
    assert cuts == pytest.approx(list(CUTS), abs=1 / CONFIG.sample_fps)
    # windows of ~10 s snapped to the cuts at 11.0 and 21.0; the 3 s tail stays its own segment
    bounds = [b for s in segments for b in (s.t_start, s.t_end)]
    assert bounds == pytest.approx([0.0, 11.0, 11.0, 21.0, 21.0, DURATION], abs=0.11)
    for n, seg in enumerate(segments):
        assert seg.index == n
        assert 1 <= len(seg.keyframes) <= CONFIG.max_keyframes
        assert all(seg.t_start <= k.t < seg.t_end for k in seg.keyframes)
        assert [k.t for k in seg.keyframes] == sorted(k.t for k in seg.keyframes)
    # every scene start is a keyframe flagged as a cut
    flagged = [k.t for s in segments for k in s.keyframes if k.scene_cut]
    assert flagged == pytest.approx(list(CUTS), abs=1 / CONFIG.sample_fps)


def test_near_duplicate_frames_are_dropped(scene_video):
    # inside a solid scene only a small bar moves: keyframes are the cuts and segment starts, not every sample
    segments = list(segment_video(scene_video, dataclasses.replace(CONFIG, max_keyframes=50)))
    total = sum(len(s.keyframes) for s in segments)
    assert total <= 8  # 48 samples -> 5 scenes (+ segment starts)


def test_keyframes_are_capped_per_segment(scene_video):
    config = dataclasses.replace(CONFIG, keyframe_threshold=0.0, dedupe_bits=0, max_keyframes=2)
    for seg in segment_video(scene_video, config):
        assert 1 <= len(seg.keyframes) <= 2
        assert seg.keyframes[0].t == pytest.approx(seg.t_start, abs=0.5)


def test_histogram_and_hash_distances():
    from PIL import Image

    red, blue = Image.new("RGB", (32, 32), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))
    assert histogram_distance(colour_histogram(red), colour_histogram(red)) == 0.0
    assert histogram_distance(colour_histogram(red), colour_histogram(blue)) == pytest.approx(1.0)
    assert hamming(dhash(red), dhash(red)) == 0


def test_config_is_validated():
    with pytest.raises(ConfigError, match="sample_fps"):
        VideoConfig(sample_fps=0)
    with pytest.raises(ConfigError, match="snap_s"):
        VideoConfig(segment_s=10, snap_s=10)


def test_video_without_audio_yields_no_audio(scene_video):
    assert list(extract_audio(scene_video)) == []


def test_audio_track_is_extracted_as_16k_mono_chunks(tmp_path):
    path = write_video(tmp_path / "tone.mp4", duration=6.0, audio=tone(6.0))
    chunks = list(extract_audio(path, chunk_s=2.0))
    assert all(c.dtype == np.float32 and c.ndim == 1 for c in chunks)
    assert all(c.size == 32_000 for c in chunks[:-1])
    assert sum(c.size for c in chunks) / 16_000 == pytest.approx(6.0, abs=0.1)
    assert probe(path).has_audio


def test_non_media_file_renamed_mp4_is_refused_naming_it(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("meeting notes, not a video\n" * 20)
    with pytest.raises(CorruptInput, match="notes.mp4"):
        probe(path)
    with pytest.raises(CorruptInput, match="notes.mp4"):
        list(segment_video(path))


def test_empty_and_truncated_files_raise_corrupt_input(tmp_path, scene_video):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(CorruptInput, match="empty.mp4"):
        probe(empty)
    cut = tmp_path / "cut.mp4"  # the mp4 index (moov) is written last: half a file cannot be opened
    cut.write_bytes(scene_video.read_bytes()[: scene_video.stat().st_size // 2])
    with pytest.raises(CorruptInput, match="cut.mp4"):
        list(segment_video(cut, CONFIG))


def test_truncated_streamable_file_is_detected(tmp_path):
    full = write_video(tmp_path / "full.mkv", duration=12.0)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    with pytest.raises(CorruptInput, match="cut.mkv.*truncated"):
        list(segment_video(cut, CONFIG))
    lenient = list(segment_video(cut, dataclasses.replace(CONFIG, strict=False)))
    assert lenient and lenient[0].keyframes


def test_audio_only_file_is_not_a_video(tmp_path):
    path = write_audio(tmp_path / "a.wav", tone(1.0))
    with pytest.raises(CorruptInput, match="no video stream"):
        probe(path)


@pytest.mark.slow
def test_real_clips_segment_with_keyframes_and_ordered_spans(data_dir):
    clips = sorted(p for p in (data_dir / "video" / "moviepy").iterdir() if p.suffix in (".mp4", ".webm"))
    assert clips
    config = VideoConfig(segment_s=10.0, snap_s=3.0)
    for clip in clips:
        info = probe(clip)
        segments = list(segment_video(clip, config))
        assert segments, clip.name
        assert segments[0].t_start == 0.0
        assert segments[-1].t_end == pytest.approx(info.duration, abs=0.5)
        for a, b in zip(segments, segments[1:]):
            assert a.t_end == b.t_start  # contiguous, non-overlapping
        for seg in segments:
            assert seg.t_start < seg.t_end
            assert seg.keyframes and all(k.image.size[0] <= config.max_side for k in seg.keyframes)


@pytest.mark.slow
def test_spoken_sentence_in_a_generated_video_is_transcribed(tmp_path, speak):
    from omnimem.encoders.transcribe import FasterWhisperTranscriber, TranscribeConfig

    speech = speak("Hello world. The meeting starts at nine in the morning.", tmp_path / "speech.wav")
    audio = np.concatenate([np.zeros(16_000, np.float32), speech, np.zeros(16_000, np.float32)])
    path = write_video(tmp_path / "talk.mp4", duration=audio.size / 16_000, audio=audio)
    config = TranscribeConfig(word_timestamps=True)
    segments = list(FasterWhisperTranscriber.from_pretrained("tiny.en", config=config).transcribe(path))
    text = " ".join(s.text for s in segments).lower()
    # espeak-ng's robotic voice costs tiny.en a word now and then: require most of the content stems
    found = [stem for stem in ("hello", "world", "meeting", "start", "nine", "morning") if stem in text]
    assert len(found) >= 4, text
    words = [w for s in segments for w in s.words]
    speech_end = 1.0 + speech.size / 16_000  # one second of silence before and after the speech
    assert words[0].t_end > 1.0  # the first word overlaps the speech onset (Whisper often starts it at 0)
    assert speech_end - 1.0 <= words[-1].t_end <= speech_end + 0.5
