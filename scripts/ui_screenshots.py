"""Screenshots of each view of the web UI for the README: ``docs/ui/*.png``.

    .venv/bin/python scripts/ui_screenshots.py [--out docs/ui] [--no-llm]

Builds memories in a temporary folder from the shared data (``../shared/data`` or ``$OMNIMEM_DATA``:
two LoCoMo sessions, jfk.flac, chaplin.mp4 and a generated video with titles on screen), serves them
on 127.0.0.1 with a scoped key and the packaged SmolLM2 (``--no-llm``: no model, the UI says so),
and drives headless Chromium (Playwright with Debian's ``/usr/bin/chromium``) through each view.
Each PNG is 1000 px wide (the narrow-window one 390 px), at most 1400 px tall, reduced to 256
colours.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "server"), str(ROOT / "tests")]  # uikit, serverkit: the UI tests' helpers

WIDTH, MAX_HEIGHT = 1000, 1400


def save(page, path: Path, *, full: bool = True) -> None:
    """A screenshot of ``page``, cut to MAX_HEIGHT and reduced to a 256-colour palette."""
    from PIL import Image

    image = Image.open(io.BytesIO(page.screenshot(full_page=full)))
    if image.height > MAX_HEIGHT:
        image = image.crop((0, 0, image.width, MAX_HEIGHT))
    image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path}  {image.width}x{image.height}  {path.stat().st_size // 1024} KiB")


def shoot(url: str, key: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright
    from uikit import launch

    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": WIDTH, "height": 760})

        page.goto(f"{url}/signin")
        save(page, out / "signin.png", full=False)
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{url}/")
        save(page, out / "picker.png", full=False)

        page.goto(f"{url}/m/demo/search")
        page.get_by_label("Question or keywords").fill("support group")
        page.locator("#results .count").wait_for()
        page.locator(".hit").nth(2).wait_for()
        save(page, out / "search.png")

        page.goto(f"{url}/m/demo/search?view=context&budget=512")
        page.get_by_label("Question or keywords").fill("What did Caroline do at the support group?")
        page.locator("#ctx-tokens").wait_for()
        save(page, out / "context.png")

        page.goto(f"{url}/m/demo/search")
        page.get_by_label("Question for the model").fill("What did Melanie paint last year?")
        page.get_by_role("button", name="Ask").click()
        for _ in range(600):
            status = page.inner_text("#ask-status")
            if status.startswith(("Answered", "No model", "Could not", "the model")):
                break
            page.wait_for_timeout(100)
        page.locator("#ask-h").scroll_into_view_if_needed()
        save(page, out / "ask.png")

        page.goto(f"{url}/m/demo/timeline")
        page.locator("details summary", has_text="Turns of session_1").click()
        page.locator(".turn").nth(3).wait_for()
        save(page, out / "timeline.png")

        page.goto(f"{url}/m/demo/timeline")
        episode = page.locator("section.episode", has_text="titles.mp4")
        page.goto(url + episode.locator("details").get_attribute("data-src").replace("&partial=1", ""))
        page.locator(".segment .play").nth(1).click()
        page.wait_for_timeout(1500)
        save(page, out / "video.png")

        page.goto(f"{url}/m/demo/graph?entity=Caroline")
        page.locator("#graph svg .node").first.wait_for()
        page.locator("#graph .edge").first.click()
        page.locator("#edge-sources .turn").first.wait_for()
        save(page, out / "graph.png")

        with tempfile.TemporaryDirectory() as tmp:
            good, bad = Path(tmp) / "groceries.txt", Path(tmp) / "holiday.mp4"
            good.write_text("Buy oat milk, lemons and basil for Saturday's dinner with Melanie.")
            bad.write_bytes(b"this is not a video" * 20)
            page.goto(f"{url}/m/scratch/change")
            page.get_by_label("Files", exact=True).set_input_files([str(good), str(bad)])
            page.get_by_role("button", name="Upload and ingest").click()
            for _ in range(300):
                if page.inner_text("#upload-status") == "Done.":
                    break
                page.wait_for_timeout(100)
        save(page, out / "change.png")

        page.get_by_label("Forget by").select_option("speaker")
        page.get_by_label("Speaker, session, episode or item id").fill("Eve")
        page.get_by_role("button", name="Count what would go").click()
        save(page, out / "forget.png", full=False)

        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{url}/m/demo/search?q=painting")
        save(page, out / "narrow.png", full=False)
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui", help="folder of the PNGs")
    parser.add_argument("--no-llm", action="store_true", help="serve without a model (ask shows the evidence only)")
    args = parser.parse_args(argv)
    from uikit import build_memories, serving

    from omnimem.data import data_dir
    from omnimem.server.keys import KeyStore

    data = data_dir()
    if data is None:
        print("the shared data folder is absent (set OMNIMEM_DATA)", file=sys.stderr)
        return 2
    generator = None
    if not args.no_llm:
        from omnimem.vlm import create_generator

        generator = create_generator("smollm2")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "memories"
        build_memories(root, data, chaplin=True, forged=False)
        key = KeyStore(root).create("readme", memories=["*"], rights="read-write")
        with serving(root, generator=generator) as url:
            shoot(url, key, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
