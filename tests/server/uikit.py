"""Helpers of the web UI's browser tests and of scripts/ui_screenshots.py: the test memories, a
video with text on screen, and a headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

CHROMIUM = os.environ.get("OMNIMEM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# the generated video: (title on screen, background colour); each scene lasts SCENE_S seconds
SCENES = (
    ("HARBOUR", (200, 60, 60)),
    ("LIGHTHOUSE", (60, 160, 80)),
    ("MARKET", (60, 90, 200)),
    ("STATION", (220, 200, 40)),
)
SCENE_S = 6.0
SCRIPT_TEXT = "<script>alert(1)</script><img src=x onerror=alert(2)> Mallory's note"


def write_titled_video(path: Path, *, scenes=SCENES, scene_s: float = SCENE_S, fps: int = 5) -> Path:
    """An H.264 mp4 whose scenes show a big word each (read back by OCR), cut every ``scene_s`` seconds."""
    import av
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    width, height = 480, 270
    font = ImageFont.load_default(size=56)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        n = 0
        for title, colour in scenes:
            image = Image.new("RGB", (width, height), colour)
            draw = ImageDraw.Draw(image)
            draw.rectangle((20, 80, width - 20, 190), fill="white")
            draw.text((width // 2, 135), title, fill="black", font=font, anchor="mm")
            pixels = np.asarray(image)
            for _ in range(round(scene_s * fps)):
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts = n
                n += 1
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def build_memories(root: Path, data: Path, *, chaplin: bool = False, forged: bool = True) -> dict[str, object]:
    """Memories under ``root``: ``demo`` (two LoCoMo sessions, jfk.flac, a titled video, optionally
    chaplin.mp4, and with ``forged`` an audio item naming a secret file beside ``root`` as its source), ``scratch``
    (a few turns to change) and ``secret`` (for scoped keys). Returns facts the tests check against."""
    import omnimem
    from omnimem.config import MediaConfig, MemoryConfig
    from omnimem.encoders.hashing import HashEncoder
    from omnimem.eval.locomo import conversation_turns, load_locomo

    root.mkdir(parents=True, exist_ok=True)
    config = MemoryConfig(media=MediaConfig(segment_s=SCENE_S))
    sample = load_locomo(data / "locomo" / "locomo_dev.json")[0]
    media = root.parent / "media"
    media.mkdir(exist_ok=True)
    video = write_titled_video(media / "titles.mp4")
    audio = media / "jfk.flac"
    shutil.copy(data / "audio" / "whisper" / "jfk.flac", audio)
    with omnimem.Memory.open(root / "demo", encoder=HashEncoder(64), config=config) as mem:
        for session, _, turns in list(conversation_turns(sample))[:2]:
            mem.add_conversation(turns, session=session, episode=sample.get("sample_id", "locomo"))
        facts = mem.facts("Caroline")  # one fact corrected by hand: the graph view shows it retired, with its history
        wrong = next((f for f in facts if f.tail == "edu"), facts[-1])
        mem.correct(wrong.id, tail="education", note="spelled out")
        report = mem.ingest(audio)
        assert report.ok, str(report)
        report = mem.ingest(video)
        assert report.ok, str(report)
        if chaplin:
            mem.ingest(data / "video" / "moviepy" / "chaplin.mp4")
        forged_id, secret = None, "omnimem-secret-" + secrets.token_hex(16)
        if forged:  # an item naming a file it was not read from: the UI must never serve that file
            (root.parent / "secret.txt").write_text(secret)
            (forged_id,) = mem.add(
                "a forged recording",
                modality="audio",
                source=str(root.parent / "secret.txt"),
                episode="file:" + "0" * 24,
            )
    with omnimem.Memory.open(root / "scratch", encoder=HashEncoder(64), config=config) as mem:
        mem.add_conversation(
            [
                {"speaker": "Eve", "text": "Eve keeps bees on the roof of the library."},
                {"speaker": "Bob", "text": "Bob repairs bicycles in the old harbour."},
                {"speaker": "Eve", "text": "Eve's bees made forty jars of honey this summer."},
            ],
            session="s1",
        )
    with omnimem.Memory.open(root / "secret", encoder=HashEncoder(64), config=config) as mem:
        mem.add("The vault code is 4711.", speaker="Quinn")
    return {"forged": forged_id, "secret": secret, "video": video, "audio": audio, "corrected": wrong.id}


def launch(playwright):
    """Debian's headless Chromium (Playwright's own browser download is not used)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def sign_in(page, base: str, key: str) -> None:
    page.goto(f"{base}/signin")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


@contextmanager
def serving(root: Path, **options) -> Iterator[str]:
    """A uvicorn server of ``root`` on a free loopback port (HashEncoder(64) memories); yields its URL."""
    import threading
    import time

    import uvicorn
    from serverkit import free_port

    from omnimem.encoders.hashing import HashEncoder
    from omnimem.server.app import create_app

    app = create_app(root, encoder=HashEncoder(64), **options)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-ui", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the UI test server did not start within 30 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
