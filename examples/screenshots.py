"""Screenshots of the three demo reports: the first viewport (1440x900) and one full page each, and the docs' pictures.

    python examples/screenshots.py                 # runs `explain demo` into explain-demo/ first
    python examples/screenshots.py --demo DIR      # uses the reports already in DIR
    python examples/screenshots.py --out shots/    # where the PNGs go (default: DIR/screenshots)
    python examples/screenshots.py --docs docs/images   # also the small pictures docs/report.md and the README show

Needs Playwright (pip install playwright) and Debian's chromium at /usr/bin/chromium
(apt-get install chromium); nothing is downloaded. Look at the PNGs as a practitioner would:
is the answer on the first screen, is anything painted that is only noise?
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
VIEWPORT = {"width": 1440, "height": 900}


def reports_in(folder: Path) -> list[Path]:
    """Return the report pages of a demo folder (every *.html except the index)."""
    return sorted(p for p in folder.rglob("*.html") if p.name != "index.html" and "screenshots" not in p.parts)


def shoot(pages: list[Path], out: Path, *, wait_ms: int = 60_000) -> list[Path]:
    """Write <name>-first.png (the first viewport) and <name>-full.png (the whole page) per report; return the paths."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for page_path in pages:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(page_path.resolve().as_uri(), wait_until="domcontentloaded")
            page.wait_for_function("() => window.__explainReady", timeout=wait_ms)
            page.evaluate("window.__explain.settled()")
            stem = page_path.stem if page_path.stem != "report" else f"{page_path.parent.name}-report"
            first, full = out / f"{stem}-first.png", out / f"{stem}-full.png"
            page.screenshot(path=str(first))
            # Draw every lazy section before the full-page shot.
            page.evaluate("window.__explain.printReady()")  # every section, figure and class drawn, as for printing
            page.evaluate("window.__explain.settled()")
            page.screenshot(path=str(full), full_page=True)
            written += [first, full]
            page.close()
        browser.close()
    return written


# The docs' pictures: (file, demo report, what to show). Each is a 1440-px-wide page cut to what it shows.
DOCS = (
    ("report-first-screen.png", "sentiment-bert", None),  # the first viewport: the answers
    ("report-gpt-grid.png", "planted-gpt2", "#input-0 .body"),  # a GPT prompt's grid of context x generated tokens
    ("report-image-cards.png", "digits-cnn", "top"),  # image answers: each map over its faded picture
)
DOCS_HEIGHT = 760  # px of a cut-out at most: a picture per point, small in the repository


def docs_pictures(folder: Path, out: Path, *, wait_ms: int = 60_000) -> list[Path]:
    """Write the docs' pictures (DOCS) from the demo reports in `folder` into `out`, as small palette PNGs; return them."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name, demo, selector in DOCS:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto((folder / demo / "report.html").resolve().as_uri(), wait_until="domcontentloaded")
            page.wait_for_function("() => window.__explainReady", timeout=wait_ms)
            page.evaluate("window.__explain.settled()")
            path = out / name
            if selector is None:
                page.screenshot(path=str(path))
            elif selector == "top":  # the page's top, cut where the first row of answer cards ends
                cards = page.locator("#answers article.answer").first.bounding_box()
                assert cards is not None, f"no answer card on {demo}'s report"
                page.set_viewport_size({"width": VIEWPORT["width"], "height": int(min(cards["y"] + cards["height"] + 16, DOCS_HEIGHT))})
                page.screenshot(path=str(path))
            else:
                page.evaluate(f"document.querySelector({selector!r}).scrollIntoView()")
                page.evaluate("window.__explain.printReady()")  # this section and its figures drawn
                box = page.locator(selector).first.bounding_box()
                assert box is not None, f"{selector} is not on {demo}'s report"
                page.set_viewport_size({"width": VIEWPORT["width"], "height": int(min(box["height"], DOCS_HEIGHT)) + 40})
                page.evaluate(f"document.querySelector({selector!r}).scrollIntoView()")
                page.screenshot(path=str(path))
            with Image.open(path) as im:  # 128 colours: the report's flat colours survive, the file stays small
                im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
            written.append(path)
            page.close()
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    """Run the demo (unless --demo is given) and write the screenshots."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, help="folder with the demo reports (default: run `explain demo` into explain-demo/)")
    ap.add_argument("--out", type=Path, help="folder for the PNGs (default: <demo>/screenshots)")
    ap.add_argument("--docs", type=Path, help="also write the docs' pictures (report-*.png) into this folder, e.g. docs/images")
    a = ap.parse_args(argv)
    folder = a.demo
    if folder is None:
        folder = Path("explain-demo")
        subprocess.run([sys.executable, "-m", "explain.cli.main", "demo", "--out", str(folder)], check=True)
    pages = reports_in(folder)
    if not pages:
        print(f"no reports in {folder}", file=sys.stderr)
        return 1
    for path in shoot(pages, a.out or folder / "screenshots"):
        print(path)
    if a.docs is not None:
        for path in docs_pictures(folder, a.docs):
            print(f"{path} ({path.stat().st_size / 1000:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
