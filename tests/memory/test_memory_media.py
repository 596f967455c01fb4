"""Media in memory: images, audio, video and folders become searchable items with spans and sources."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from mediagen import write_tiny_open_clip, write_video
from PIL import Image, ImageDraw, ImageFont

import omnimem
from omnimem.errors import CorruptInput, NotFound


@pytest.fixture(scope="module")
def media_mem(tmp_path_factory, minilm):
    with omnimem.Memory.open(tmp_path_factory.mktemp("media") / "m", encoder=minilm) as mem:
        yield mem


def _sign(path, text="OPEN 24 HOURS"):
    image = Image.new("RGB", (360, 120), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)
    draw.text((12, 35), text, fill="black", font=font)
    image.save(path)
    return path


@pytest.mark.slow
@pytest.mark.data
def test_jfk_speech_becomes_a_searchable_segment(media_mem, data_dir):
    path = data_dir / "audio" / "whisper" / "jfk.flac"
    ids = media_mem.add_audio(path)
    items = [media_mem.get(i) for i in ids]
    first = next(it for it in items if "ask not what your country can do for you" in it.text.lower())
    assert 0.0 <= first.t_start < first.t_end <= 11.5 and first.modality == "audio"
    assert first.source == str(path)
    hit = media_mem.search("what your country can do", k=1)[0]
    assert hit.id == first.id and hit.t_start == first.t_start and hit.t_end == first.t_end
    before = len(media_mem)
    assert media_mem.add_audio(path) == ids and len(media_mem) == before  # same bytes: a no-op


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize(
    "name", ["big_buck_bunny_0_30.webm", "big_buck_bunny_432_433.webm", "chaplin.mp4", "fire2.mp4"]
)
def test_sample_clips_become_segments_with_keyframes(media_mem, data_dir, name):
    path = data_dir / "video" / "moviepy" / name
    if not path.exists():
        pytest.skip(f"{name} not in the shared data")
    ids = media_mem.add_video(path)
    segments = [media_mem.get(i) for i in ids]
    assert segments and all(s.modality == "video" and s.source == str(path) for s in segments)
    spans = [(s.t_start, s.t_end) for s in segments]
    assert spans == sorted(spans) and all(a < b for a, b in spans)
    assert all(prev[1] <= nxt[0] + 1e-6 for prev, nxt in zip(spans, spans[1:]))  # no overlap
    for segment in segments:
        keyframes = segment.metadata["keyframes"]
        assert keyframes and all(segment.t_start <= k["t"] <= segment.t_end for k in keyframes)
        assert all(k["blob"] in media_mem.blobs for k in keyframes)
        with Image.open(media_mem.blobs.path(keyframes[0]["blob"])) as frame:
            assert frame.width > 0


@pytest.mark.slow
def test_generated_video_cuts_and_narration_land_where_expected(tmp_path, minilm, speak):
    speech = speak("The red balloon floats over the harbour at noon.", tmp_path / "s.wav")
    audio = np.concatenate([np.zeros(16000 * 2, np.float32), speech, np.zeros(16000 * 24, np.float32)])[: 16000 * 24]
    path = write_video(tmp_path / "v.mp4", audio=audio)  # cuts at 5.0, 11.0, 16.5, 21.0 s
    config = omnimem.MemoryConfig(media=omnimem.config.MediaConfig(segment_s=6.0))
    with omnimem.Memory.open(tmp_path / "m", encoder=minilm, config=config) as mem:
        ids = mem.add_video(path)
        segments = [mem.get(i) for i in ids]
        cuts = sorted(t for s in segments for t in s.metadata["scene_cuts"])
        for expected in (5.0, 11.0, 16.5, 21.0):
            assert any(abs(t - expected) <= 1.0 for t in cuts), (expected, cuts)
        boundaries = [s.t_end for s in segments[:-1]]
        assert all(any(abs(b - c) <= 1.0 for c in cuts) or abs(b % 6.0) < 1.0 for b in boundaries)
        spoken = [s for s in segments if "balloon" in s.text.lower() or "harbour" in s.text.lower()]
        assert spoken and spoken[0].t_start < 8.0  # the narration is in the first seconds
        hit = mem.search("red balloon over the harbour", k=1)[0]
        assert hit.id == spoken[0].id and hit.t_start == spoken[0].t_start


@pytest.mark.slow
@pytest.mark.data
def test_coco_image_caption_and_text_in_image_are_searchable(tmp_path, minilm, data_dir):
    import json

    coco = json.loads((data_dir / "coco_mini" / "captions_train2017.json").read_text())
    image = coco["images"][0]
    captions = [a["caption"] for a in coco["annotations"] if a["image_id"] == image["id"]]
    with omnimem.Memory.open(tmp_path / "m", encoder=minilm) as mem:
        (image_id,) = mem.add_image(data_dir / "coco_mini" / "images" / image["file_name"], caption=captions[0])
        (sign_id,) = mem.add_image(_sign(tmp_path / "sign.png"))
        mem.add("An unrelated note about tax forms.")
        assert mem.search(captions[1], k=1)[0].id == image_id
        sign = mem.get(sign_id)
        assert "24" in sign.text and "HOURS" in sign.text.replace(" ", "").upper()
        hit = mem.search("open 24 hours", k=1, modalities=["image"])[0]
        assert hit.id == sign_id and hit.modality == "image"
        assert mem.blobs.get(sign.blob)[:4] == b"\x89PNG"


@pytest.mark.slow
def test_image_space_with_a_clip_encoder(tmp_path, hash_encoder):
    from omnimem.encoders.clip import OpenClipEncoder

    clip = OpenClipEncoder.from_pretrained(str(write_tiny_open_clip(tmp_path / "clip")))
    config = omnimem.MemoryConfig(media=omnimem.config.MediaConfig(ocr=False))
    path = tmp_path / "m"
    with omnimem.Memory.open(path, encoder=hash_encoder, image_encoder=clip, config=config) as mem:
        red = Image.new("RGB", (64, 64), (220, 20, 20))
        (image_id,) = mem.add_image(red)
        assert mem.get(image_id).text == ""  # no caption, OCR off: only the image vector finds it
        assert len(mem.indexes["image"]) == 1
        hits = mem.search("a red square", k=1, retrievers=("image",))
        assert hits[0].id == image_id and hits[0].retrievers == ("image",)
    with omnimem.Memory.open(path) as mem:  # config.json names the image encoder and its directory
        assert mem.image_encoder is not None and mem.image_encoder.dim == clip.dim
        assert len(mem.indexes["image"]) == 1


def test_bad_media_gets_a_clear_error_and_leaves_nothing(tmp_path, mem):
    truncated = tmp_path / "broken.png"
    _sign(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    fake_video = tmp_path / "notes.mp4"
    fake_video.write_text("this is plain text pretending to be a video")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(CorruptInput, match="broken.png"):
        mem.add_image(truncated)
    with pytest.raises(CorruptInput, match="notes.mp4"):
        mem.add_video(fake_video)
    with pytest.raises(CorruptInput, match="empty.wav"):
        mem.add_audio(empty)
    with pytest.raises(NotFound):
        mem.add_audio(tmp_path / "missing.flac")
    with pytest.raises(omnimem.ConfigError):
        mem.add_image(Image.new("RGB", (8, 8)), caption=42)
    assert len(mem) == 0


@pytest.mark.slow
@pytest.mark.data
def test_ingest_folder_goes_on_past_bad_files_and_reports(tmp_path, minilm, data_dir):
    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(data_dir / "audio" / "whisper" / "jfk.flac", folder / "speech.flac")
    _sign(folder / "sub" / "sign.png")
    (folder / "notes.md").write_text("# Trip\n\nWe visited the lighthouse on Tuesday.\n\nThe ferry was late.")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    (folder / "data.bin").write_bytes(bytes(range(256)))
    seen = []
    with omnimem.Memory.open(tmp_path / "m", encoder=minilm) as mem:
        report = mem.ingest(folder, progress=lambda done, total: seen.append((done, total)))
        assert set(report.added) == {
            str(folder / "speech.flac"),
            str(folder / "sub" / "sign.png"),
            str(folder / "notes.md"),
        }
        assert (
            set(report.failed) == {str(folder / "broken.jpg")}
            and "broken.jpg" in report.failed[str(folder / "broken.jpg")]
        )
        assert str(folder / "data.bin") in report.skipped
        assert seen and seen[-1][0] <= seen[-1][1] + 1e-6 and 10 < seen[-1][1] < 12  # seconds of jfk.flac
        assert mem.search("lighthouse", k=1)[0].metadata["title"] == "notes"
        again = mem.ingest(folder)
        assert not again.added and again.skipped[str(folder / "speech.flac")] == "already in memory"


@pytest.mark.slow
def test_video_keyframes_land_in_the_image_space(tmp_path, hash_encoder):
    from omnimem.encoders.clip import OpenClipEncoder

    clip = OpenClipEncoder.from_pretrained(str(write_tiny_open_clip(tmp_path / "clip")))
    path = write_video(tmp_path / "v.mp4")
    config = omnimem.MemoryConfig(media=omnimem.config.MediaConfig(ocr=False, segment_s=8.0))
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, image_encoder=clip, config=config) as mem:
        ids = mem.add_video(path)
        frames = sum(len(mem.get(i).metadata["keyframes"]) for i in ids)
        assert frames >= len(ids) and len(mem.indexes["image"]) == frames
        hit = mem.search("a frame", k=1, retrievers=("image",))[0]
        assert hit.modality == "image" and hit.t_start is not None and hit.source == str(path)


@pytest.mark.slow
def test_video_progress_covers_both_passes_and_is_monotonic(tmp_path, hash_encoder, speak):
    speech = speak("Progress is reported while the speech is transcribed.", tmp_path / "s.wav")
    audio = np.concatenate([speech, np.zeros(16000 * 24, np.float32)])[: 16000 * 24]
    path = write_video(tmp_path / "v.mp4", audio=audio)
    seen = []
    config = omnimem.MemoryConfig(media=omnimem.config.MediaConfig(ocr=False))
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, config=config) as mem:
        mem.add_video(path, progress=lambda done, total: seen.append((done, total)))
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and seen[0][0] < seen[-1][1] / 2  # the speech pass reported too
    assert abs(seen[-1][0] - seen[-1][1]) < 1.0 and 23 < seen[-1][1] < 25
