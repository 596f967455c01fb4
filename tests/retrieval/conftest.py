"""Doubles for the GRASP tests: a CLIP-like hash encoder and a scripted generator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from omnimem.encoders.hashing import HashEncoder
from omnimem.vlm.base import Generation


class FakeClip:
    """Text and "images" in one hashed space. An image is a list of the object names it shows."""

    modalities = ("text", "image")
    name = "fake-clip"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self._text = HashEncoder(dim)

    def encode(self, inputs: Sequence[Any], *, modality: str = "text") -> np.ndarray:
        if modality == "image":
            return self._text.encode([" ".join(objects) for objects in inputs])
        return self._text.encode([t.removeprefix("a photo of ") for t in inputs])


class ScriptedGenerator:
    """Answers each generate() call with the next scripted text; records the prompts."""

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.prompts: list[Any] = []

    def generate(self, messages: Any, **options: Any) -> Generation:
        self.prompts.append(messages)
        return Generation(self.answers.pop(0), tokens_in=10, tokens_out=5, latency_s=0.01)

    def count_tokens(self, text: str) -> int:
        return len(text.split())


@pytest.fixture
def fake_clip() -> FakeClip:
    return FakeClip()


@pytest.fixture
def scripted():
    """``scripted([answers...])`` -> a ScriptedGenerator."""
    return ScriptedGenerator
