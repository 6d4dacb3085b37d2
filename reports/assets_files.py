"""The page's JavaScript and CSS: plain files under reports/assets/, read once and inlined by the page builder.

Each language lives in its own file, where an editor, a linter and `node --check` can read it
(tests/test_report_assets.py runs the check); the page still inlines every file, so a report
stays one self-contained file under the same security policy (scripts and styles inline only).
"""

from __future__ import annotations

import functools
from pathlib import Path

FOLDER = Path(__file__).parent / "assets"
# The page's scripts, in the order they run: core.js first (DOM helpers, data decoding, colours,
# lazy drawing), app.js last (it starts the page). A view kept in a file of its own goes before app.js.
SCRIPTS = ("core.js", "views.js", "vit.js", "trust.js", "dataset.js", "app.js")
REPORT_CSS = "report.css"
INDEX_CSS = "index.css"  # the index of several reports: report.css plus its cards


@functools.lru_cache(maxsize=None)
def asset(name: str) -> str:
    """Return the text of reports/assets/`name`, checked to be safe inside its <script> or <style> element."""
    text = (FOLDER / name).read_text(encoding="utf-8")
    closing = "</script" if name.endswith(".js") else "</style"
    if closing in text.lower() or "<!--" in text:
        raise ValueError(f"reports/assets/{name} holds '{closing}' or '<!--', which would end or confuse its inline element")
    return text


def scripts_html() -> str:
    """Return the page's <script> elements, one per file of SCRIPTS, in order."""
    return "".join(f"<script>{asset(name)}</script>\n" for name in SCRIPTS)


def report_css() -> str:
    """Return the report page's CSS."""
    return asset(REPORT_CSS)


def index_css() -> str:
    """Return the CSS of the index of several reports (the report's, plus its cards)."""
    return asset(REPORT_CSS) + asset(INDEX_CSS)
