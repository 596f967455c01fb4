"""Media kind detection by content, image loading and streaming audio decoding."""

from __future__ import annotations

import numpy as np
import pytest
from mediagen import tone, write_audio, write_video
from PIL import Image

from omnimem.encoders.media import detect_kind, iter_audio, load_audio, load_image
from omnimem.errors import CorruptInput, NotFound


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "pic.png"
    Image.new("RGB", (20, 10), (10, 200, 30)).save(path)
    return path


def test_kind_comes_from_content_not_extension(tmp_path, png):
    renamed = tmp_path / "holiday.mp4"
    renamed.write_bytes(png.read_bytes())
    assert detect_kind(png) == "image"
    assert detect_kind(renamed) == "image"
    jpeg = tmp_path / "photo.bin"
    Image.new("RGB", (8, 8)).save(jpeg, format="JPEG")
    assert detect_kind(jpeg) == "image"
    assert detect_kind(write_audio(tmp_path / "a.wav", tone(0.5))) == "audio"
    assert detect_kind(write_audio(tmp_path / "a.m4a", tone(0.5), codec="aac")) == "audio"
    video = write_video(tmp_path / "clip.mkv", duration=1.0)
    disguised = tmp_path / "clip.jpg"
    disguised.write_bytes(video.read_bytes())
    assert detect_kind(disguised) == "video"


def test_non_media_is_none_and_missing_or_empty_files_are_clear(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("just some notes\n" * 30)
    assert detect_kind(text) is None
    with pytest.raises(NotFound, match="nope.wav"):
        detect_kind(tmp_path / "nope.wav")
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    with pytest.raises(CorruptInput, match="empty.mp3"):
        detect_kind(empty)


def test_load_image_accepts_pil_paths_and_arrays(png):
    assert load_image(png).size == (20, 10)
    assert load_image(Image.new("L", (4, 4))).mode == "RGB"
    assert load_image(np.zeros((3, 5, 3), np.uint8)).size == (5, 3)
    with pytest.raises(CorruptInput, match="shape"):
        load_image(np.zeros((3, 5), np.uint8))


def test_truncated_or_fake_images_raise_corrupt_input_naming_the_file(tmp_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(big)
    cut = tmp_path / "cut.png"
    cut.write_bytes(big.read_bytes()[:2000])
    with pytest.raises(CorruptInput, match="cut.png"):
        load_image(cut)
    fake = tmp_path / "fake.jpg"
    fake.write_text("not an image")
    with pytest.raises(CorruptInput, match="fake.jpg"):
        load_image(fake)


def test_iter_audio_resamples_to_16k_mono_in_bounded_chunks(tmp_path):
    path = write_audio(tmp_path / "a.flac", tone(5.0, rate=44_100), codec="flac", rate=44_100)
    chunks = list(iter_audio(path, chunk_s=2.0))
    assert [c.size for c in chunks[:-1]] == [32_000, 32_000]
    assert sum(c.size for c in chunks) == pytest.approx(80_000, abs=200)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert np.abs(audio).max() == pytest.approx(0.3, abs=0.02)


@pytest.mark.slow
def test_shared_media_kinds(data_dir):
    assert detect_kind(data_dir / "audio" / "whisper" / "jfk.flac") == "audio"
    assert detect_kind(data_dir / "audio" / "speech_recognition" / "french.aiff") == "audio"
    assert detect_kind(data_dir / "video" / "moviepy" / "chaplin.mp4") == "video"
    assert detect_kind(data_dir / "video" / "moviepy" / "big_buck_bunny_432_433.webm") == "video"
    image = next((data_dir / "coco_mini" / "images").iterdir())
    assert detect_kind(image) == "image"
    assert detect_kind(data_dir / "coco_mini" / "captions_train2017.json") is None
