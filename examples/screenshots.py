"""Screenshots of the three demo reports: the first viewport (1440x900) and one full page each.

    python examples/screenshots.py                 # runs `explain demo` into explain-demo/ first
    python examples/screenshots.py --demo DIR      # uses the reports already in DIR
    python examples/screenshots.py --out shots/    # where the PNGs go (default: DIR/screenshots)

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
            page.evaluate("document.querySelectorAll('section.input[data-i]').forEach((s) => document.getElementById('d' + s.dataset.i) && window.__explain.enqueue(s))")
            page.evaluate("window.__explain.settled()")
            page.screenshot(path=str(full), full_page=True)
            written += [first, full]
            page.close()
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    """Run the demo (unless --demo is given) and write the screenshots."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, help="folder with the demo reports (default: run `explain demo` into explain-demo/)")
    ap.add_argument("--out", type=Path, help="folder for the PNGs (default: <demo>/screenshots)")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
