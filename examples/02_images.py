"""Images: remember photos with captions and a sign whose text is read by OCR, then search them.

    .venv/bin/python examples/02_images.py [MEMORY_DIR]

Uses a COCO image from the shared data folder when present (``$OMNIMEM_DATA`` or ../shared/data),
else a picture it draws. Offline: all-MiniLM-L6-v2 for text, RapidOCR (PP-OCRv4) for text in images.
"""

import json
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

import omnimem
from omnimem.data import data_dir

path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "images"
work = Path(tempfile.mkdtemp())

# 1. a photo with a caption: a COCO image when the shared data is here, else a drawn sunset
coco = data_dir() and data_dir() / "coco_mini"
if coco and (coco / "captions_train2017.json").is_file():
    meta = json.loads((coco / "captions_train2017.json").read_text())
    image = meta["images"][0]
    photo = coco / "images" / image["file_name"]
    caption = next(a["caption"] for a in meta["annotations"] if a["image_id"] == image["id"])
else:
    photo = work / "sunset.png"
    picture = Image.new("RGB", (320, 200), (250, 140, 40))
    ImageDraw.Draw(picture).ellipse((120, 60, 200, 140), fill=(255, 230, 80))
    picture.save(photo)
    caption = "An orange sunset with a yellow sun over the sea."

# 2. a sign: no caption, its text is read by OCR
sign = work / "sign.png"
board = Image.new("RGB", (360, 120), "white")
ImageDraw.Draw(board).text((12, 35), "OPEN 24 HOURS", fill="black", font=ImageFont.load_default(size=40))
board.save(sign)

with omnimem.Memory.open(path) as mem:
    (photo_id,) = mem.add_image(photo, caption=caption)
    (sign_id,) = mem.add_image(sign)
    mem.add("A note about tax forms, unrelated to any picture.")
    print(f"photo: {caption}")
    print(f"sign, text read by OCR: {mem.get(sign_id).text}")
    for query in [caption, "a shop that is open all day and night, 24 hours"]:
        hit = mem.search(query, k=1, modalities=["image"])[0]
        which = "photo" if hit.id == photo_id else "sign" if hit.id == sign_id else hit.id
        print(f"{query!r} -> {which} (score {hit.score:.3f})")
