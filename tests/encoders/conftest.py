"""Fixtures for the encoder tests: a generated video with known scene cuts, speech from espeak-ng."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mediagen import write_video


@pytest.fixture(scope="session")
def scene_video(tmp_path_factory) -> Path:
    """A 24 s, 10 fps H.264 video with cuts at 5.0, 11.0, 16.5 and 21.0 s and no audio track."""
    return write_video(tmp_path_factory.mktemp("video") / "scenes.mp4")


@pytest.fixture(scope="session")
def speak() -> Callable[[str, Path], np.ndarray]:
    """``speak(sentence, wav_path) -> float32 16 kHz mono`` with espeak-ng; skips when it is absent."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")

    def _speak(sentence: str, path: Path) -> np.ndarray:
        subprocess.run(["espeak-ng", "-s", "140", "-w", str(path), sentence], check=True, capture_output=True)
        from omnimem.encoders.media import load_audio

        return load_audio(path)

    return _speak
