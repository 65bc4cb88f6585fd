"""Makes docs/report.png, the README's picture of `mdr report`: the funnel and the sample browser of a report,
rendered by headless Chromium (Debian's `chromium`, driven by Playwright) and stacked into one small PNG.

    .venv/bin/python docs/screenshot.py REPORT.html [--stage repetition] [--out docs/report.png]
"""

import argparse
import io
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTH = 1280


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--stage", default="repetition", help="stage shown in the sample browser")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "report.png")
    args = parser.parse_args()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(), executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS,
            viewport={"width": WIDTH, "height": 900})
        page = context.new_page()
        page.goto(args.report.resolve().as_uri())
        page.select_option("#sample-stage", args.stage)
        parts = [page.locator("header").screenshot(), page.locator("#funnel").screenshot(),
                 page.locator("#samples").screenshot()]
        context.close()
    images = [Image.open(io.BytesIO(part)).convert("RGB") for part in parts]
    sample_height = min(images[2].height, 900)  # the browser's first documents are enough
    images[2] = images[2].crop((0, 0, images[2].width, sample_height))
    images[0] = images[0].crop((0, 0, images[1].width, images[0].height))  # the header spans the window
    canvas = Image.new("RGB", (max(i.width for i in images), sum(i.height + 8 for i in images)), "#f6f7f9")
    y = 0
    for image in images:
        canvas.paste(image, (0, y))
        y += image.height + 8
    canvas.quantize(colors=128).save(args.out, optimize=True)
    print(f"{args.out}: {canvas.width}x{canvas.height}, {args.out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
