"""An attribution map over its picture, drawn in Python for the first screen: the method panels' recipe, as one PNG.

The picture is faded (shown at 45% over white, as under the method panels), the map is drawn on
the report's diverging scale with opacity rising with |score|, its colours end at the
(100 - CLIP_PERCENT)th percentile of |score| (brighter pixels are clipped, and the colour bar
says so), and the result is big enough to read. A pale overlay on a full-colour thumbnail, the
old recipe, could not be seen on a real photo.
"""

from __future__ import annotations

import base64
import io

import numpy as np

from .constants import CLIP_PERCENT
from .encode import block_mean, esc, fmt, is_base64
from .inline import diverging_rgb, png_base64

FADE = 0.45  # the picture's opacity over white (the method panels' image trace)
OPACITY = 0.85  # the overlay's opacity at the scale's ends (the method panels' default)
SIDE = 320  # pixels of the drawn PNG's longer side at most (the page shows it at CARD_PX)
CARD_PX = 240  # CSS pixels of the card's overlay: big enough to read on a photo


def picture(png: str | None) -> np.ndarray | None:
    """Return an input's picture (base64 PNG) as (H, W, 3) uint8 RGB, or None when there is none or it cannot be read."""
    if not is_base64(png):
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(base64.b64decode("".join(str(png).split())))) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError):
        return None


def clip_value(v: np.ndarray) -> tuple[float, float]:
    """Return (the colour scale's end: the (100 - CLIP_PERCENT)th percentile of |v|, the largest |v|)."""
    a = np.abs(np.nan_to_num(np.asarray(v, dtype=np.float64)))
    top = float(a.max()) if a.size else 0.0
    clip = float(np.percentile(a, 100 - CLIP_PERCENT)) if a.size else 0.0
    return (clip or top), top


def _fit(v: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Return map `v` resampled to `shape` (block means, then nearest: the map's cells stay visible)."""
    v = np.asarray(v, dtype=np.float64)
    if v.shape == shape:
        return v
    ys = np.minimum((np.arange(shape[0]) + 0.5) * v.shape[0] / shape[0], v.shape[0] - 1).astype(int)
    xs = np.minimum((np.arange(shape[1]) + 0.5) * v.shape[1] / shape[1], v.shape[1] - 1).astype(int)
    return v[np.ix_(ys, xs)]


def composite(img: np.ndarray | None, v: np.ndarray, clip: float) -> np.ndarray:
    """Return (H, W, 3) uint8: map `v` (colours end at ±clip) over the faded picture, or over white without one."""
    v = block_mean(np.nan_to_num(np.asarray(v, dtype=np.float64)), SIDE)
    if img is not None:
        f = max(1, -(-max(img.shape[:2]) // SIDE))
        base = img[::f, ::f].astype(np.float64) if f > 1 else img.astype(np.float64)
        v = _fit(v, base.shape[:2])
    else:
        base = np.full((*v.shape, 3), 255.0)
    faded = 255.0 - FADE * (255.0 - base)
    t = np.clip(v / (clip or 1.0), -1, 1)
    alpha = (OPACITY * np.abs(t))[..., None]
    out = faded * (1 - alpha) + diverging_rgb(t).astype(np.float64) * alpha
    return np.rint(out).astype(np.uint8)


def overlay_html(png: str | None, v: np.ndarray, units: str, index: int, *, tiny: bool = False) -> str:
    """Return the card's map over its picture as plain HTML: the PNG and, unless `tiny`, its colour bar with numbers."""
    clip, top = clip_value(v)
    img = picture(png)
    rgb = composite(img, v, clip)
    alt = f"input {index}: attribution map over the picture, red supports, blue opposes (±{fmt(clip, 3)} {units})"
    src = f"data:image/png;base64,{png_base64(np.ascontiguousarray(rgb))}"
    if tiny:
        return f'<img alt="{esc(alt)}" src="{src}" class="ov-tiny">'
    clipped = f" · the top {fmt(CLIP_PERCENT, 2)}% of |score| (up to {fmt(top, 3)}) clipped to the ends" if clip < top else ""
    return (
        f'<figure class="ov-card"><img alt="{esc(alt)}" src="{src}" width="{CARD_PX}">'
        f'<figcaption class="scale"><span>−{fmt(clip, 3)}</span><span class="sb rdbu"></span>'
        f'<span>+{fmt(clip, 3)}</span><span>{esc(units)}{clipped} · the picture faded beneath</span></figcaption></figure>'
    )
