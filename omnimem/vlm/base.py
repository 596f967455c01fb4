"""The Generator protocol: chat messages (+ images) in, a :class:`Generation` out.

A generator knows models, never storage or retrieval. ``generate`` returns the whole answer with its
token counts and latency; ``stream`` yields text pieces as they are decoded; ``count_tokens`` measures
text with the backend's own tokenizer, which is what context compression budgets against.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from omnimem.errors import ConfigError, CorruptInput

__all__ = [
    "ROLES",
    "Message",
    "Generation",
    "Generator",
    "MessagesLike",
    "as_messages",
    "check_generation_args",
    "load_image",
    "image_data_uri",
    "estimate_tokens",
]

ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    """One chat turn."""

    role: str  # one of ROLES: "system", "user", "assistant"
    content: str  # the turn's text (images travel separately, attached to the last user turn)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"unknown message role {self.role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(self.content, str):
            raise ConfigError(f"message content must be a str, got {type(self.content).__name__}")

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Generation:
    """What a generator returns."""

    text: str  # the decoded answer (special tokens removed)
    tokens_in: int  # prompt tokens, images included where the backend reports them
    tokens_out: int  # generated tokens
    latency_s: float  # wall-clock seconds of the whole call
    parsed: object | None = None  # the JSON value when a json_schema was given and the answer parsed, else None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_out / self.latency_s if self.latency_s > 0 else 0.0


MessagesLike = str | Message | Mapping[str, Any] | Sequence[Message | Mapping[str, Any]]


@runtime_checkable
class Generator(Protocol):
    name: str  # a name or path that reopens the same model through the generator registry

    def generate(
        self,
        messages: MessagesLike,
        *,
        images: Sequence[Any] = (),
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: Mapping[str, Any] | None = None,
    ) -> Generation:
        """Answer the chat ``messages``; ``images`` (paths, PIL images, ``uint8 (h, w, 3)`` arrays)
        belong to the last user turn. With ``json_schema`` the backend constrains or at least parses
        the answer and sets ``Generation.parsed`` (``None`` when it did not parse)."""

    def stream(
        self,
        messages: MessagesLike,
        *,
        images: Sequence[Any] = (),
        max_new_tokens: int = 256,
        temperature: float = 0.0,
    ) -> Iterator[str]:
        """Yield the answer's text pieces as they are decoded."""

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this backend's tokenizer (no special tokens added)."""


def as_messages(messages: MessagesLike) -> list[Message]:
    """Normalise a str (one user turn), a :class:`Message`, a ``{"role", "content"}`` dict or a list of
    those to ``list[Message]``; raises :class:`ConfigError` naming the bad entry."""
    if isinstance(messages, (str, Message, Mapping)):
        messages = [messages]  # type: ignore[list-item]
    out: list[Message] = []
    for n, message in enumerate(messages):  # type: ignore[arg-type]
        if isinstance(message, str):
            out.append(Message("user", message))
        elif isinstance(message, Message):
            out.append(message)
        elif isinstance(message, Mapping) and "role" in message and "content" in message:
            out.append(Message(str(message["role"]), message["content"]))
        else:
            raise ConfigError(f"message {n} must be a Message or a {{'role', 'content'}} dict, got {message!r}")
    if not out:
        raise ConfigError("messages is empty; pass at least one user turn")
    return out


def check_generation_args(max_new_tokens: int, temperature: float) -> None:
    """Validate the sampling arguments every backend shares."""
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0 (0 is greedy), got {temperature!r}")


def load_image(image: Any) -> Any:
    """An RGB ``PIL.Image`` from a path, bytes, a PIL image or a ``uint8 (h, w, 3)`` array."""
    from PIL import Image

    try:
        if isinstance(image, Image.Image):
            return image.convert("RGB")
        if isinstance(image, (str, Path)):
            with Image.open(image) as img:
                return img.convert("RGB")
        if isinstance(image, (bytes, bytearray)):
            with Image.open(io.BytesIO(image)) as img:
                return img.convert("RGB")
        if hasattr(image, "shape") and hasattr(image, "dtype"):
            return Image.fromarray(image).convert("RGB")
    except (OSError, ValueError, TypeError) as e:
        raise CorruptInput(f"cannot read image {str(image)[:80]!r} ({e}); pass a path, PIL image or uint8 array") from e
    raise ConfigError(f"unsupported image type {type(image).__name__}; pass a path, PIL image or uint8 array")


def image_data_uri(image: Any) -> str:
    """A ``data:image/png;base64,...`` URI for OpenAI-style ``image_url`` content parts."""
    buffer = io.BytesIO()
    load_image(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free over-estimate: UTF-8 bytes / 2, rounded up (byte-level BPEs average ~4).

    Used only where a backend cannot count (an HTTP server without a tokenize endpoint); erring high
    keeps a budgeted prompt under the model's real limit.
    """
    return math.ceil(len(text.encode("utf-8")) / 2)
