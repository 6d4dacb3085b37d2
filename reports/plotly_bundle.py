"""The plotly.js the reports embed: a partial build with only the trace types they draw.

`vendor/plotly-explain.min.js` is plotly.js 4.1.1 built from its module entry points with
scatter, bar, heatmap and image only (`vendor/build-plotly.sh` rebuilds it; MIT licence beside
it): 1.2 MB instead of the 4.8 MB full bundle, and about 0.57 MB once gzipped and base64-coded
for a self-contained page.

A page embeds it one of two ways:
- self-contained (the default): `embedded_script()` - the gzipped bundle as base64 text in a
  `<script type="text/plain" id="plotly-js" data-encoding="gzip-base64">` element, which the
  page's loader (`plotlySource` in assets/core.js) decodes with the browser's DecompressionStream
  and starts from a blob: URL;
- shared: `write_asset(folder)` writes the bundle once beside several reports and returns its
  file name, which each page then loads with `<script src=NAME>`.
"""

from __future__ import annotations

import base64
import functools
import gzip
from pathlib import Path

VERSION = "4.1.1"
TRACES = ("scatter", "bar", "heatmap", "image")
ASSET_NAME = f"plotly-explain-{VERSION}.min.js"
_BUNDLE = Path(__file__).parent / "vendor" / "plotly-explain.min.js"


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    """Return the partial plotly.js bundle, safe inside a <script> element."""
    text = _BUNDLE.read_text(encoding="utf-8")
    # Neither sequence occurs in the bundle today; inside its string literals both rewrites are no-ops.
    return text.replace("</script", "<\\/script").replace("<!--", "<\\!--")


@functools.lru_cache(maxsize=1)
def gzip_base64() -> str:
    """Return the bundle gzipped (deterministically: no timestamp) and base64-coded."""
    raw = _BUNDLE.read_bytes()
    return base64.b64encode(gzip.compress(raw, compresslevel=9, mtime=0)).decode("ascii")


def embedded_script() -> str:
    """Return the <script> element that carries the bundle inside a self-contained page."""
    return f'<script type="text/plain" id="plotly-js" data-encoding="gzip-base64">{gzip_base64()}</script>'


def write_asset(folder: str | Path) -> str:
    """Write the bundle into `folder` (once: an equal file is left alone); return its file name."""
    path = Path(folder) / ASSET_NAME
    data = _BUNDLE.read_bytes()
    if not (path.is_file() and path.read_bytes() == data):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{ASSET_NAME}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return ASSET_NAME

