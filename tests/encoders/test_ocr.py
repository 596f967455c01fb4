"""OCR: reading order on a scripted engine, then the packaged RapidOCR on rendered text and a COCO photo."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageDraw, ImageFont

from omnimem.encoders.ocr import OcrLine, OcrReader, reading_order
from omnimem.errors import ConfigError, CorruptInput


def _box(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


class ScriptedEngine:
    """Returns fixed RapidOCR-shaped results: ``([[box, text, score], ...], elapsed)``."""

    def __init__(self, result):
        self.result = result

    def __call__(self, image, **_):
        return self.result, [0.0]


def test_lines_come_back_in_reading_order_and_low_scores_are_dropped():
    engine = ScriptedEngine(
        [
            [_box(300, 12, 400, 40), "right", 0.9],
            [_box(10, 100, 200, 130), "second row", 0.95],
            [_box(10, 10, 200, 42), "left", 0.99],
            [_box(10, 200, 200, 230), "noise", 0.2],
        ]
    )
    reader = OcrReader(engine, min_score=0.5)
    lines = reader.read(Image.new("RGB", (10, 10)))
    assert [line.text for line in lines] == ["left", "right", "second row"]
    assert isinstance(lines[0], OcrLine) and lines[0].box[0] == (10.0, 10.0)
    assert reader.text(Image.new("RGB", (10, 10))) == "left right\nsecond row"


def test_no_text_is_an_empty_list_and_bad_input_is_refused(tmp_path):
    reader = OcrReader(ScriptedEngine(None))
    assert reader.read(Image.new("RGB", (10, 10))) == []
    assert reader.text(Image.new("RGB", (10, 10))) == ""
    fake = tmp_path / "scan.png"
    fake.write_text("not an image")
    with pytest.raises(CorruptInput, match="scan.png"):
        reader.read(fake)
    with pytest.raises(ConfigError):
        OcrReader(ScriptedEngine(None), min_score=2.0)
    assert reading_order([]) == []


@pytest.fixture(scope="module")
def reader():
    return OcrReader()


def _render(lines):
    image = Image.new("RGB", (720, 240), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)
    for (x, y), text in lines:
        draw.text((x, y), text, fill="black", font=font)
    return image


@pytest.mark.slow
def test_packaged_rapidocr_reads_rendered_text_in_order(reader):
    image = _render([((20, 30), "OMNIMEM"), ((420, 30), "MEMORY"), ((20, 140), "invoice 2024")])
    lines = reader.read(image)
    assert all(0.5 <= line.score <= 1.0 and len(line.box) == 4 for line in lines)
    # PP-OCR's recogniser often drops spaces between Latin words: compare without them
    text = "\n".join(" ".join(ln.text for ln in row) for row in reading_order(lines)).replace(" ", "").lower()
    assert text.index("omnimem") < text.index("memory") < text.index("invoice2024")
    assert text.count("\n") == 1


@pytest.mark.slow
def test_packaged_rapidocr_on_a_coco_photo(data_dir, reader):
    captions = json.loads((data_dir / "coco_mini" / "captions_train2017.json").read_text())
    stop = next(im for im in captions["images"] if im["file_name"] == "000000525891.jpg")  # a stop sign
    path = data_dir / "coco_mini" / "images" / stop["file_name"]
    lines = reader.read(path)
    assert isinstance(lines, list)
    assert "STOP" in " ".join(line.text for line in lines).upper()
