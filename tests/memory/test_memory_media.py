"""Media in memory: images, audio, video and folders become searchable items with spans and sources."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from mediagen import tone, write_audio, write_tiny_open_clip, write_video
from PIL import Image, ImageDraw, ImageFont

import omnimem
from omnimem.errors import CorruptInput, NotFound

# jfk.flac in memory (tiny.en, measured before the speech guards): one item, two transcript phrases
JFK_ITEM_SPAN = (0.0, 10.74)
JFK_PHRASE_SPANS = [(0.0, 7.54), (7.54, 10.74)]
SPAN_TOLERANCE_S = 0.3
# no speech in any: music (Big Buck Bunny), a fire crackling, a silent film's score
NO_SPEECH_CLIPS = ["big_buck_bunny_0_30.webm", "big_buck_bunny_432_433.webm", "fire2.mp4", "chaplin.mp4"]


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
    assert len(items) == 1 and _near((first.t_start, first.t_end), JFK_ITEM_SPAN)
    phrases = [(p["t_start"], p["t_end"]) for p in first.metadata["transcript"]]
    assert len(phrases) == len(JFK_PHRASE_SPANS) and all(map(_near, phrases, JFK_PHRASE_SPANS)), phrases
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
    if name in NO_SPEECH_CLIPS:
        assert all(s.metadata["transcript"] == "" for s in segments), [s.metadata["transcript"] for s in segments]


@pytest.mark.slow
@pytest.mark.data
def test_music_and_noise_become_no_transcript(tmp_path, hash_encoder, data_dir):
    """Whisper writes "I'm going to go to the next one." over the bunny's music; none of it is remembered."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in NO_SPEECH_CLIPS:
        if (data_dir / "video" / "moviepy" / name).exists():
            os.symlink(data_dir / "video" / "moviepy" / name, folder / name)
    bunny = data_dir / "video" / "moviepy" / "big_buck_bunny_0_30.webm"
    config = omnimem.MemoryConfig(media=omnimem.config.MediaConfig(ocr=False))
    with omnimem.Memory.open(tmp_path / "m", encoder=hash_encoder, config=config) as mem:
        assert mem.add_audio(bunny) == [] and len(mem) == 0  # its soundtrack as audio: nothing to remember
        report = mem.ingest(folder)
        assert report.ok and set(report.added) == {str(p) for p in folder.iterdir()}
        items = [mem.get(i) for (i,) in mem.store.read("SELECT id FROM items", ())]
        assert items and not [i for i in items if i.modality == "audio"]
        assert [i.metadata["transcript"] for i in items if i.modality == "video"] == [""] * sum(
            i.modality == "video" for i in items
        )


def _near(span, expected, tolerance=SPAN_TOLERANCE_S):
    return abs(span[0] - expected[0]) <= tolerance and abs(span[1] - expected[1]) <= tolerance


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


def _bad_inbox(folder):
    """One good note and every kind of bad input a batch meets."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    (folder / "note.md").write_text("# Ferry\n\nThe ferry to the lighthouse was late on Tuesday.")
    (folder / "garbage.mp3").write_bytes(rng.bytes(2_000))  # no format at all
    (folder / "noise.mp3").write_bytes(rng.bytes(200_000))  # FFmpeg probes it as MP3, then cannot decode it
    (folder / "garbage.jpg").write_bytes(rng.bytes(3_000))
    (folder / "garbage.mp4").write_bytes(rng.bytes(5_000))
    (folder / "empty.wav").write_bytes(b"")
    (folder / "cafe.txt").write_bytes("Le café crème de la façade, à Noël.".encode("latin-1"))
    (folder / "blob.txt").write_bytes(rng.bytes(1_000).replace(b"\x00", b"\x01") + b"\x00" * 50)
    (folder / "loop_a").symlink_to(folder / "loop_b")
    (folder / "loop_b").symlink_to(folder / "loop_a")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)  # a folder link that loops
    return folder


BAD = {"garbage.mp3", "noise.mp3", "garbage.jpg", "garbage.mp4", "empty.wav", "blob.txt", "loop_a", "loop_b"}


def test_ingest_goes_past_bad_input_reports_it_and_keeps_the_rest(tmp_path, mem):
    folder = _bad_inbox(tmp_path / "inbox")
    report = mem.ingest(folder)
    assert set(report.added) == {str(folder / "note.md"), str(folder / "cafe.txt")}
    assert set(report.failed) == {str(folder / name) for name in BAD} and not report.ok
    for path, why in report.failed.items():
        assert path in why and "\n" not in why  # one line naming the file ...
    assert "named like an audio file" in report.failed[str(folder / "garbage.mp3")]  # ... and what is wrong
    assert "named like an image file" in report.failed[str(folder / "garbage.jpg")]
    assert "re-encode" in report.failed[str(folder / "noise.mp3")]
    assert "empty (0 bytes)" in report.failed[str(folder / "empty.wav")]
    assert "binary" in report.failed[str(folder / "blob.txt")] and "UTF-8" in report.failed[str(folder / "blob.txt")]
    assert "symbolic link" in report.failed[str(folder / "loop_a")]
    assert "not followed" in report.skipped[str(folder / "sub" / "up")]
    assert "cp1252" in report.notes[str(folder / "cafe.txt")]
    # the rest of the memory is intact: the good files are searchable, nothing half-written
    assert len(mem) == 2 and mem.check()["ok"]
    cafe = mem.search("café crème façade", k=1)[0]
    assert "Le café crème de la façade, à Noël." in cafe.text and cafe.metadata["encoding"] == "cp1252"
    assert mem.search("ferry lighthouse", k=1)[0].metadata["title"] == "note"
    again = mem.ingest(folder)
    assert set(again.failed) == set(report.failed) and len(mem) == 2


def test_text_encodings(tmp_path, mem):
    utf8 = tmp_path / "utf8.txt"
    utf8.write_bytes("\ufeffNaïve café, ünïcode.".encode())  # with a byte-order mark
    utf16 = tmp_path / "utf16.txt"
    utf16.write_text("Grüße aus Köln.", encoding="utf-16")
    (first,) = mem.media.add_text_file(utf8)
    (second,) = mem.media.add_text_file(utf16)
    assert mem.get(first).text == "Naïve café, ünïcode." and "encoding" not in mem.get(first).metadata
    assert mem.get(second).text == "Grüße aus Köln." and mem.get(second).metadata["encoding"] == "utf-16"
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n   \n")
    with pytest.raises(CorruptInput, match="blank.txt holds no text"):
        mem.media.add_text_file(blank)


def test_audio_without_speech_is_not_an_error_and_writes_nothing(tmp_path, mem):
    path = write_audio(tmp_path / "hum.flac", tone(4.0, level=0.5), codec="flac")
    assert mem.add_audio(path) == [] and len(mem) == 0
    report = mem.ingest(path)
    assert report.ok and "no speech" in report.skipped[str(path)]


def test_a_file_named_on_its_own_that_is_not_supported_fails(tmp_path, mem):
    data = tmp_path / "data.bin"
    data.write_bytes(bytes(range(256)))
    report = mem.ingest(data)
    assert not report.ok and "not a supported media or text file" in report.failed[str(data)]
