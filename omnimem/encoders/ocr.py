"""Text in images with the packaged RapidOCR (PP-OCRv4 detection + recognition, ONNX, CPU).

PP-OCR (Du et al. 2020) detects text boxes with DB (differentiable binarisation), classifies their
orientation, and recognises each with a CRNN/SVTR model. ``OcrReader.read`` returns the lines with
their scores and quadrilateral boxes; ``OcrReader.text`` joins them in reading order (rows by
vertical overlap, top to bottom; boxes left to right within a row).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from omnimem.encoders.media import load_image
from omnimem.errors import BackendUnavailable, ConfigError

__all__ = ["OcrLine", "OcrReader", "reading_order"]

log = logging.getLogger(__name__)

Box = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class OcrLine:
    """One recognised text line."""

    text: str  # the recognised text
    score: float  # recognition confidence, 0..1
    box: Box  # corners (x, y) in pixels: top-left, top-right, bottom-right, bottom-left


class OcrReader:
    """Reads text lines from images with a ``rapidocr_onnxruntime.RapidOCR`` engine."""

    def __init__(self, engine: Any = None, *, min_score: float = 0.5) -> None:
        if not 0 <= min_score <= 1:
            raise ConfigError(f"min_score must be in [0, 1], got {min_score}")
        if engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as e:
                raise BackendUnavailable(
                    "the packaged OCR model is missing; install it with: pip install rapidocr-onnxruntime==1.4.4"
                ) from e
            engine = RapidOCR()
        self.engine = engine
        self.min_score = min_score

    def read(self, image: Any) -> list[OcrLine]:
        """Lines found in ``image`` (PIL image, path or ``(h, w, 3)`` RGB uint8 array), in reading order."""
        result, _elapsed = self.engine(load_image(image), text_score=self.min_score)
        lines = [
            OcrLine(str(text).strip(), float(score), tuple((float(x), float(y)) for x, y in box))  # type: ignore[arg-type]
            for box, text, score in result or ()
            if str(text).strip() and float(score) >= self.min_score
        ]
        return [line for row in reading_order(lines) for line in row]

    def text(self, image: Any) -> str:
        """The text of ``image``: rows top to bottom joined by newlines, boxes in a row by spaces."""
        return "\n".join(" ".join(line.text for line in row) for row in reading_order(self.read(image)))


def reading_order(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """Group lines into rows (vertical centre inside a row's span) top to bottom, each left to right."""
    rows: list[tuple[float, float, list[OcrLine]]] = []  # (top, bottom, lines)
    for line in sorted(lines, key=lambda ln: _span(ln)[0]):
        top, bottom = _span(line)
        centre = (top + bottom) / 2
        for n, (row_top, row_bottom, members) in enumerate(rows):
            if row_top <= centre <= row_bottom:
                members.append(line)
                rows[n] = (min(row_top, top), max(row_bottom, bottom), members)
                break
        else:
            rows.append((top, bottom, [line]))
    rows.sort(key=lambda r: (r[0] + r[1]) / 2)
    return [sorted(members, key=lambda ln: min(x for x, _ in ln.box)) for _, _, members in rows]


def _span(line: OcrLine) -> tuple[float, float]:
    ys = [y for _, y in line.box]
    return min(ys), max(ys)
